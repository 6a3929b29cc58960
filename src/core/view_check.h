// Checks of one tensor view on its own (docs/contract.md §3): rank, extents, strides,
// byte size and data pointer, and the bytes it spans for the aliasing checks.
// Every failure names the tensor, the index and the value.
#pragma once

#include <cstdint>
#include <string_view>

#include "rpa/status.h"
#include "rpa/tensor.h"

namespace rpa {

// The bytes [begin, end) between a view's first and last element; empty for an
// empty view. Interleaved views of one buffer have overlapping spans even when
// no element is shared: the aliasing check is deliberately that conservative.
struct ByteSpan {
  uintptr_t begin = 0;
  uintptr_t end = 0;

  bool overlaps(const ByteSpan& other) const {
    return begin < end && other.begin < other.end && begin < other.end && other.begin < end;
  }
};

struct ViewRule {
  std::string_view name;  // as the message names it: "q", "block_table"
  int rank = 0;
  std::string_view dims;  // the shape in words: "[batch_capacity, max_pages_per_seq]"
};

// Checks `v` against `rule`: the rank; non-negative extents whose product
// (zeros counted as ones, so every sub-product fits too) fits int64; a
// contiguous last dimension; positive strides elsewhere; a byte size that fits
// int64 and the address space; non-null data unless the view is empty. Strides
// of dimensions with extent 0 or 1 are never used and never checked. On
// success stores the bytes the view spans.
Status check_view(const TensorView& v, const ViewRule& rule, ByteSpan* span);

// Checks that distinct elements of `v` (a checked view) never share memory, as
// an output must, since its rows are written concurrently. Sufficient, not
// necessary: sorted by stride, each dimension must step past the whole extent
// of the one inside it.
Status check_distinct_elements(const TensorView& v, std::string_view name);

}  // namespace rpa

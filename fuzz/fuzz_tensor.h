// What the fuzz targets share: a tensor with its own bytes, shaped and
// strided from the fuzz input, and the way a target reports a broken property.
#pragma once

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "rpa/tensor.h"

namespace rpa::fuzz {

struct Tensor {
  TensorView view;
  std::vector<uint8_t> bytes;
};

// `rank` extents from `shape`, dense strides plus 0 to 2 elements of padding
// between rows (the last dimension contiguous), so that the buffer holds every
// element; its bytes come from the input when `fill_from_input`, else zeros.
inline Tensor make_tensor(FuzzedDataProvider& in, DType dtype, const int64_t* shape, int rank,
                          bool fill_from_input) {
  Tensor t;
  t.view.dtype = dtype;
  t.view.rank = rank;
  int64_t stride = 1, elements = 1;
  for (int d = rank - 1; d >= 0; --d) {
    t.view.shape[d] = shape[d];
    t.view.strides[d] = stride + (d < rank - 1 ? in.ConsumeIntegralInRange<int64_t>(0, 2) : 0);
    stride = t.view.strides[d] * std::max<int64_t>(shape[d], 1);
    if (shape[d] <= 0) elements = 0;
  }
  for (int d = 0; d < rank && elements > 0; ++d) elements += (shape[d] - 1) * t.view.strides[d];
  t.bytes.assign(static_cast<size_t>(std::max<int64_t>(elements, 1) * dtype_size(dtype)), 0);
  if (fill_from_input) {
    for (uint8_t& b : t.bytes) b = in.ConsumeIntegral<uint8_t>();
  }
  t.view.data = t.bytes.data();
  return t;
}

// A broken property: the input that found it is what libFuzzer keeps.
[[noreturn]] inline void fail(const char* target, const char* what) {
  std::fprintf(stderr, "%s: property broken: %s\n", target, what);
  std::abort();
}

}  // namespace rpa::fuzz

#include "core/view_check.h"

#include <algorithm>
#include <array>
#include <string>

#include "core/message.h"

namespace rpa {
namespace {

// "[6, 8, 2, 64]": a view's shape as the messages print it.
std::string shape_text(const TensorView& v) {
  std::string text = "[";
  for (int d = 0; d < v.rank; ++d) text += cat(d == 0 ? "" : ", ", v.shape[d]);
  return text + "]";
}

Status check_extents(const TensorView& v, std::string_view name) {
  int64_t product = 1;
  for (int d = 0; d < v.rank; ++d) {
    const int64_t extent = v.shape[d];
    if (extent < 0) return Status::Invalid(cat(name, ".shape[", d, "] = ", extent, " is negative"));
    if (extent > 0 && __builtin_mul_overflow(product, extent, &product)) {
      return Status::Invalid(
          cat(name, ".shape = ", shape_text(v), ": the product of its extents overflows int64"));
    }
  }
  return Status::Ok();
}

Status check_strides(const TensorView& v, std::string_view name) {
  for (int d = 0; d < v.rank; ++d) {
    if (v.shape[d] <= 1) continue;
    const int64_t stride = v.strides[d];
    if (d == v.rank - 1 && stride != 1) {
      return Status::Invalid(cat(name, ".strides[", d, "] = ", stride, " must be 1: the last ",
                                 "dimension of ", name, " must be contiguous"));
    }
    if (stride <= 0) {
      return Status::Invalid(cat(name, ".strides[", d, "] = ", stride, " must be positive (", name,
                                 ".shape[", d, "] = ", v.shape[d], ")"));
    }
  }
  return Status::Ok();
}

// Computes the span of a non-empty view whose extents and strides are checked.
Status compute_span(const TensorView& v, std::string_view name, ByteSpan* span) {
  int64_t last = 0;  // element offset of the last element
  for (int d = 0; d < v.rank; ++d) {
    if (v.shape[d] <= 1) continue;
    int64_t reach = 0;
    if (__builtin_mul_overflow(v.shape[d] - 1, v.strides[d], &reach) ||
        __builtin_add_overflow(last, reach, &last)) {
      return Status::Invalid(cat(name, ".shape[", d, "] = ", v.shape[d], " with ", name,
                                 ".strides[", d, "] = ", v.strides[d], ": the offset of the last ",
                                 "element of ", name, " overflows int64"));
    }
  }
  int64_t bytes = 0;
  if (__builtin_add_overflow(last, 1, &bytes) ||
      __builtin_mul_overflow(bytes, dtype_size(v.dtype), &bytes)) {
    return Status::Invalid(cat("the byte size of ", name, " (", last, " + 1 elements of ",
                               dtype_size(v.dtype), " bytes) overflows int64"));
  }
  if (v.data == nullptr) {
    return Status::Invalid(cat(name, ".data is null but ", name, " has ", v.numel(), " elements"));
  }
  const uintptr_t begin = reinterpret_cast<uintptr_t>(v.data);
  uintptr_t end = 0;
  if (__builtin_add_overflow(begin, static_cast<uintptr_t>(bytes), &end)) {
    return Status::Invalid(cat(name, ".data = ", v.data, " plus its ", bytes,
                               " bytes runs past the end of the address space"));
  }
  *span = {begin, end};
  return Status::Ok();
}

}  // namespace

Status check_view(const TensorView& v, const ViewRule& rule, ByteSpan* span) {
  if (v.rank != rule.rank) {
    return Status::Invalid(cat(rule.name, ".rank = ", v.rank, " must be ", rule.rank, ": ",
                               rule.name, " is ", rule.dims));
  }
  RPA_RETURN_IF_ERROR(check_extents(v, rule.name));
  RPA_RETURN_IF_ERROR(check_strides(v, rule.name));
  *span = {};
  for (int d = 0; d < v.rank; ++d) {
    if (v.shape[d] == 0) return Status::Ok();  // empty: never addressed, data may be null
  }
  return compute_span(v, rule.name, span);
}

Status check_distinct_elements(const TensorView& v, std::string_view name) {
  std::array<int, kMaxRank> dims{};  // dimensions that address more than one element
  int n = 0;
  for (int d = v.rank - 1; d >= 0; --d) {
    if (v.shape[d] > 1) dims[n++] = d;
  }
  // Stable, so that of two equal strides the later dimension counts as the
  // inner one, as in row-major order, and the message names the outer one.
  // An insertion sort of at most kMaxRank: std::stable_sort would allocate a
  // buffer on every call (docs/robustness.md).
  for (int i = 1; i < n; ++i) {
    for (int j = i; j > 0 && v.strides[dims[j]] < v.strides[dims[j - 1]]; --j) {
      std::swap(dims[j], dims[j - 1]);
    }
  }
  for (int i = 1; i < n; ++i) {
    const int inner = dims[i - 1];
    const int outer = dims[i];
    int64_t inner_reach = 0;  // elements the inner dimension steps over
    if (__builtin_mul_overflow(v.shape[inner], v.strides[inner], &inner_reach) ||
        v.strides[outer] < inner_reach) {
      return Status::Invalid(
          cat(name, ".strides[", outer, "] = ", v.strides[outer], " is less than ", name, ".shape[",
              inner, "] * ", name, ".strides[", inner, "] = ", v.shape[inner], " * ",
              v.strides[inner], ": distinct elements of ", name, " would share memory"));
    }
  }
  return Status::Ok();
}

}  // namespace rpa

// TensorView: a non-owning view of a dense tensor (data, dtype, shape, strides).
// Strides are in elements. An absent optional tensor is a default-constructed
// view (rank 0, null data).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>

#include "rpa/dtype.h"

namespace rpa {

inline constexpr int kMaxRank = 4;

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::kF32;
  int rank = 0;
  std::array<int64_t, kMaxRank> shape{};
  std::array<int64_t, kMaxRank> strides{};

  // A row-major view: the last index is fastest and every stride is implied.
  static TensorView contiguous(const void* data, DType dtype, std::initializer_list<int64_t> shape) {
    TensorView v;
    v.data = const_cast<void*>(data);
    v.dtype = dtype;
    v.rank = static_cast<int>(shape.size());
    int i = 0;
    for (int64_t extent : shape) v.shape[i++] = extent;
    int64_t stride = 1;
    for (int d = v.rank - 1; d >= 0; --d) {
      v.strides[d] = stride;
      stride *= v.shape[d];
    }
    return v;
  }

  bool present() const { return rank > 0 || data != nullptr; }

  int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < rank; ++d) n *= shape[d];
    return n;
  }

  bool is_contiguous() const {
    int64_t stride = 1;
    for (int d = rank - 1; d >= 0; --d) {
      if (shape[d] != 1 && strides[d] != stride) return false;
      stride *= shape[d];
    }
    return true;
  }

  template <typename T>
  T* as() const { return static_cast<T*>(data); }
};

}  // namespace rpa

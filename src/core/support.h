// The one table of supported sizes and dtypes. It drives kernel instantiation
// and the text of the "unsupported" errors, so the two cannot disagree.
#pragma once

#include <array>
#include <cstdint>

#include "rpa/dtype.h"

namespace rpa {

inline constexpr std::array<int64_t, 5> kSupportedHeadDims = {64, 80, 96, 128, 256};
// Pages smaller than a vector are real (page_size 1 serves token-granular
// caches such as SGLang's) and keep every SIMD path honest about tails: on an
// 8-lane AVX2 machine, pages of 1, 2 and 4 tokens hit the same "page shorter
// than a vector" cases that 8-token pages hit on 16-lane AVX-512.
inline constexpr std::array<int64_t, 8> kSupportedPageSizes = {1, 2, 4, 8, 16, 32, 64, 128};
inline constexpr std::array<DType, 3> kSupportedDTypes = {DType::kF32, DType::kBF16, DType::kF16};
// K/V caches hold q's dtype, or one of these with a scale.
inline constexpr std::array<DType, 1> kQuantizedKvDTypes = {DType::kF8E4M3};

// The widest head_dim: CPU scratch rows and CUDA shared-memory rows are sized
// by it.
inline constexpr int64_t kMaxSupportedHeadDim = [] {
  int64_t most = 0;
  for (int64_t dim : kSupportedHeadDims) most = dim > most ? dim : most;
  return most;
}();

template <typename T, std::size_t N>
constexpr bool contains(const std::array<T, N>& values, T v) {
  for (const T& x : values) {
    if (x == v) return true;
  }
  return false;
}

}  // namespace rpa

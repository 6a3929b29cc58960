// The element type of fp8 e4m3 K/V caches inside the SIMD kernels: a byte
// with a type of its own, so that the kernels' loads overload on it (Highway
// 1.0.3 has no fp8 type).
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace rpa {

struct Fp8E4M3 {
  uint8_t bits;
};

template <typename T>
inline constexpr bool kQuantized = std::is_same_v<T, Fp8E4M3>;

// The fast SIMD decode (core/fp8_load-inl.h) yields the value times 2^-120.
// Kernels that use it undo the factor in two halves of 2^60, one on q and one
// on the probabilities: either half keeps realistic q and p far from f32's
// overflow, and neither product q . k nor p * v comes near its subnormals.
inline constexpr float kFp8RawHalfFactor = 0x1p60f;

// Whether any of the n bytes at p is an e4m3 NaN code (S.1111.111), eight
// bytes per step in general-purpose registers: masking the sign leaves 0x7f
// only for NaN, and 0x7f + 1 is the only sum that sets the byte's top bit
// (no carry crosses bytes). It checks the tails that the vector scan
// (Fp8FoldMagnitudes, fp8_load-inl.h) leaves, and finds the rows of a block
// that scan flagged.
inline bool fp8_e4m3_has_nan(const Fp8E4M3* p, int64_t n) {
  constexpr uint64_t kLow7 = 0x7f7f7f7f7f7f7f7full;
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kTops = 0x8080808080808080ull;
  uint64_t found = 0;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t word;
    std::memcpy(&word, p + i, sizeof(word));
    found |= (word & kLow7) + kOnes;
  }
  for (; i < n; ++i) found |= static_cast<uint64_t>((p[i].bits & 0x7fu) + 1u);
  return (found & kTops) != 0;
}

}  // namespace rpa

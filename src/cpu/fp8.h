// The element type of fp8 e4m3 K/V caches inside the CPU kernels: a byte with
// a type of its own, so that the kernels' loads overload on it (Highway 1.0.3
// has no fp8 type).
#pragma once

#include <cstdint>
#include <type_traits>

namespace rpa::cpu {

struct Fp8E4M3 {
  uint8_t bits;
};

template <typename T>
inline constexpr bool kQuantized = std::is_same_v<T, Fp8E4M3>;

// The SIMD loads decode e4m3 through f16 (load-inl.h), which yields the value
// times 2^-8; the kernels fold this factor into the per-head scales.
inline constexpr float kFp8LoadFactor = 256.0f;

}  // namespace rpa::cpu

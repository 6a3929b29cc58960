// Element types and their conversions to and from f32.
// bf16 and f16 are stored as raw uint16_t bit patterns, fp8 e4m3 as uint8_t;
// every narrowing conversion rounds to nearest, ties to even, and keeps NaN a
// (quiet) NaN.
#pragma once

#include <bit>
#include <cstdint>
#include <string_view>

namespace rpa {

enum class DType : int32_t {
  kF32 = 0,
  kBF16 = 1,
  kF16 = 2,
  kI32 = 3,  // metadata only: block_table, seq_lens, query_start_len
  // OCP fp8 E4M3 ("e4m3fn"): 1 sign, 4 exponent (bias 7), 3 mantissa bits; no
  // infinities, NaN = S.1111.111, largest finite 448. K/V caches only, with
  // an f32 scale: the value of a stored byte b is fp8_e4m3_to_f32(b) * scale.
  kF8E4M3 = 4,
};

constexpr int64_t dtype_size(DType t) {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kBF16: return 2;
    case DType::kF16: return 2;
    case DType::kI32: return 4;
    case DType::kF8E4M3: return 1;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kBF16: return "bf16";
    case DType::kF16: return "f16";
    case DType::kI32: return "i32";
    case DType::kF8E4M3: return "fp8_e4m3";
  }
  return "unknown";
}

// Parses "f32" / "bf16" / "f16" / "i32" / "fp8_e4m3" (also "fp8"); returns
// false for anything else.
bool parse_dtype(std::string_view name, DType* out);

constexpr float bf16_to_f32(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

constexpr uint16_t f32_to_bf16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  // Adding 0x7fff plus the lowest kept bit rounds to nearest, ties to even;
  // a carry out of the mantissa correctly rounds up into the exponent (to Inf).
  const uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  const uint32_t quiet_nan = (bits >> 16) | 0x0040u;  // keeps the sign
  // A select, not a branch, so that loops of conversions vectorize.
  return static_cast<uint16_t>((bits & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}

// value >> shift (1 <= shift <= 31), rounded to nearest, ties to even: the
// subnormal results of the narrowing conversions below.
constexpr uint32_t shift_right_round_even(uint32_t value, uint32_t shift) {
  const uint32_t halfway = 1u << (shift - 1);
  const uint32_t remainder = value & ((1u << shift) - 1u);
  uint32_t result = value >> shift;
  if (remainder > halfway || (remainder == halfway && (result & 1u))) ++result;
  return result;
}

constexpr float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) {  // Inf or NaN
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  }
  if (exponent != 0) {  // normal: rebias 15 -> 127
    return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
  }
  if (mantissa == 0) return std::bit_cast<float>(sign);
  // Subnormal: value = mantissa * 2^-24, exact in f32.
  const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
  return sign ? -magnitude : magnitude;
}

constexpr uint16_t f32_to_f16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));  // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to Inf (>= 65520)
  if (abs >= 0x38800000u) {  // normal f16 range (>= 2^-14)
    const uint32_t rounding = 0xfffu + ((abs >> 13) & 1u);
    return static_cast<uint16_t>(sign | ((abs - (112u << 23) + rounding) >> 13));
  }
  if (abs < 0x33000000u) return sign;  // below half the smallest subnormal (2^-25): zero
  // Subnormal f16: shift the full 24-bit significand into place, rounding to even.
  const uint32_t exponent = abs >> 23;
  const uint32_t significand = (abs & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126u - exponent;  // 14..24 for exponents 102..112
  return static_cast<uint16_t>(sign | shift_right_round_even(significand, shift));
}

constexpr float fp8_e4m3_to_f32(uint8_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x80u) << 24;
  const uint32_t exponent = (bits >> 3) & 0xfu;
  const uint32_t mantissa = bits & 0x7u;
  if (exponent == 0xf && mantissa == 0x7) return std::bit_cast<float>(sign | 0x7fc00000u);  // NaN
  if (exponent != 0) {  // normal: rebias 7 -> 127
    return std::bit_cast<float>(sign | ((exponent + 120u) << 23) | (mantissa << 20));
  }
  // Subnormal (or zero): value = mantissa * 2^-9, exact in f32.
  const float magnitude = static_cast<float>(mantissa) * 0x1p-9f;
  return sign ? -magnitude : magnitude;
}

// Rounds to nearest, ties to even, saturating: a finite value beyond the
// largest finite e4m3 (448) and an infinity become +-448, NaN stays NaN (the
// "satfinite" conversion of GPUs and of KV-cache quantizers).
constexpr uint8_t f32_to_fp8_e4m3(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint8_t>(sign | 0x7fu);  // NaN
  // 464 = 448 + half an ulp (32): it and everything above would round past 448.
  if (abs >= 0x43e80000u) return static_cast<uint8_t>(sign | 0x7eu);
  if (abs >= 0x3c800000u) {  // normal e4m3 range (>= 2^-6)
    const uint32_t rounding = 0x7ffffu + ((abs >> 20) & 1u);
    return static_cast<uint8_t>(sign | ((abs - (120u << 23) + rounding) >> 20));
  }
  if (abs <= 0x3a800000u) return sign;  // at most half the smallest subnormal (2^-10): zero
  // Subnormal e4m3 (multiples of 2^-9): shift the 24-bit significand into place.
  const uint32_t exponent = abs >> 23;
  const uint32_t significand = (abs & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 141u - exponent;  // 21..24 for exponents 117..120
  return static_cast<uint8_t>(sign | shift_right_round_even(significand, shift));
}

// Loads element `i` of a buffer of dtype `t` as f32 (slow path: reference, tools).
inline float load_as_f32(const void* data, DType t, int64_t i) {
  switch (t) {
    case DType::kF32: return static_cast<const float*>(data)[i];
    case DType::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::kF16: return f16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::kI32: return static_cast<float>(static_cast<const int32_t*>(data)[i]);
    case DType::kF8E4M3: return fp8_e4m3_to_f32(static_cast<const uint8_t*>(data)[i]);
  }
  return 0.0f;
}

// Stores f32 `value` into element `i` of a buffer of dtype `t`, rounding to nearest even.
inline void store_from_f32(void* data, DType t, int64_t i, float value) {
  switch (t) {
    case DType::kF32: static_cast<float*>(data)[i] = value; return;
    case DType::kBF16: static_cast<uint16_t*>(data)[i] = f32_to_bf16(value); return;
    case DType::kF16: static_cast<uint16_t*>(data)[i] = f32_to_f16(value); return;
    case DType::kI32: static_cast<int32_t*>(data)[i] = static_cast<int32_t>(value); return;
    case DType::kF8E4M3: static_cast<uint8_t*>(data)[i] = f32_to_fp8_e4m3(value); return;
  }
}

}  // namespace rpa

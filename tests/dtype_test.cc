// The f32 <-> bf16 / f16 conversions of rpa/dtype.h, checked against slow
// references written from the IEEE 754 definitions with long double arithmetic
// (no bit manipulation), plus the special values and edge cases by name.
#include "rpa/dtype.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace rpa {
namespace {

// A binary floating-point format narrower than f32.
struct Format {
  int exponent_bits;
  int mantissa_bits;
  int bias() const { return (1 << (exponent_bits - 1)) - 1; }
};
constexpr Format kF16 = {5, 10};
constexpr Format kBF16 = {8, 7};

// The value that `bits` encodes in `format`, by the definition:
// (-1)^sign * (1 + mantissa / 2^m) * 2^(exponent - bias), subnormals without the 1.
long double slow_decode(uint16_t bits, Format f) {
  const int sign = bits / (1 << (f.exponent_bits + f.mantissa_bits));
  const int exponent = (bits / (1 << f.mantissa_bits)) % (1 << f.exponent_bits);
  const int mantissa = bits % (1 << f.mantissa_bits);
  long double magnitude = 0.0L;
  if (exponent == (1 << f.exponent_bits) - 1) {
    magnitude = mantissa == 0 ? std::numeric_limits<long double>::infinity()
                              : std::numeric_limits<long double>::quiet_NaN();
  } else if (exponent == 0) {
    magnitude = std::ldexp(static_cast<long double>(mantissa), 1 - f.bias() - f.mantissa_bits);
  } else {
    magnitude = std::ldexp(1.0L + std::ldexp(static_cast<long double>(mantissa), -f.mantissa_bits),
                           exponent - f.bias());
  }
  return sign ? -magnitude : magnitude;
}

// The value of the nearest `format` number to the finite `x`, ties to even,
// or ±Inf past the overflow threshold (max finite plus half an ulp, inclusive).
long double slow_round(float x, Format f) {
  const long double a = std::fabs(static_cast<long double>(x));
  const int min_exponent = 1 - f.bias();
  int exponent = min_exponent;
  if (a != 0.0L) {
    int frexp_exponent = 0;
    std::frexp(a, &frexp_exponent);  // a = fraction * 2^frexp_exponent, fraction in [0.5, 1)
    exponent = std::max(frexp_exponent - 1, min_exponent);
  }
  const long double quantum = std::ldexp(1.0L, exponent - f.mantissa_bits);
  long double rounded = std::nearbyint(a / quantum) * quantum;  // default mode: ties to even
  const long double max_finite = std::ldexp(2.0L - std::ldexp(1.0L, -f.mantissa_bits), f.bias());
  if (rounded > max_finite) rounded = std::numeric_limits<long double>::infinity();
  return std::copysign(rounded, static_cast<long double>(x));
}

float from_bits(uint32_t bits) { return std::bit_cast<float>(bits); }
uint32_t bits_of(float x) { return std::bit_cast<uint32_t>(x); }

static_assert(f32_to_f16(1.0f) == 0x3c00 && f32_to_bf16(1.0f) == 0x3f80,
              "the conversions are usable at compile time");

TEST(DType, F16DecodesEveryPatternByDefinition) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float value = f16_to_f32(static_cast<uint16_t>(h));
    const long double expected = slow_decode(static_cast<uint16_t>(h), kF16);
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(value)) << std::hex << h;
    } else {
      EXPECT_EQ(static_cast<long double>(value), expected) << std::hex << h;
    }
    EXPECT_EQ(std::signbit(value), h >= 0x8000) << std::hex << h;
  }
}

TEST(DType, Bf16DecodesEveryPatternByDefinition) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const float value = bf16_to_f32(static_cast<uint16_t>(b));
    const long double expected = slow_decode(static_cast<uint16_t>(b), kBF16);
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(value)) << std::hex << b;
    } else {
      EXPECT_EQ(static_cast<long double>(value), expected) << std::hex << b;
    }
    EXPECT_EQ(std::signbit(value), b >= 0x8000) << std::hex << b;
  }
}

// Every pattern survives f16 -> f32 -> f16; a NaN keeps sign and payload and
// comes back quiet (the top mantissa bit set).
TEST(DType, EveryF16PatternRoundTrips) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float value = f16_to_f32(static_cast<uint16_t>(h));
    const uint16_t expected = std::isnan(value) ? static_cast<uint16_t>(h | 0x0200) : h;
    ASSERT_EQ(f32_to_f16(value), expected) << std::hex << h;
  }
}

TEST(DType, EveryBf16PatternRoundTrips) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const float value = bf16_to_f32(static_cast<uint16_t>(b));
    const uint16_t expected = std::isnan(value) ? static_cast<uint16_t>(b | 0x0040) : b;
    ASSERT_EQ(f32_to_bf16(value), expected) << std::hex << b;
  }
}

// Half of the floats have uniformly random bits (every exponent, NaN and Inf
// included); the other half have exponents around the f16 range, where f16
// rounding, subnormals and overflow happen.
std::vector<float> random_floats(int count) {
  std::mt19937 rng(20240611);
  std::uniform_int_distribution<uint32_t> any_bits;
  std::uniform_int_distribution<uint32_t> near_f16_exponent(127 - 26, 127 + 17);
  std::vector<float> values;
  values.reserve(count);
  for (int i = 0; i < count; ++i) {
    uint32_t bits = any_bits(rng);
    if (i % 2 == 1) bits = (bits & 0x807fffffu) | (near_f16_exponent(rng) << 23);
    values.push_back(from_bits(bits));
  }
  return values;
}

void expect_rounds_like_reference(float x, long double result, Format f) {
  if (std::isnan(x)) {
    EXPECT_TRUE(std::isnan(result)) << std::hex << bits_of(x);
    return;
  }
  const long double expected = std::isinf(x) ? static_cast<long double>(x) : slow_round(x, f);
  EXPECT_EQ(result, expected) << std::hex << bits_of(x);
  EXPECT_EQ(std::signbit(result), std::signbit(x)) << std::hex << bits_of(x);
}

TEST(DType, F32ToF16MatchesSlowReference) {
  for (float x : random_floats(400000)) {
    expect_rounds_like_reference(x, slow_decode(f32_to_f16(x), kF16), kF16);
  }
}

TEST(DType, F32ToBf16MatchesSlowReference) {
  for (float x : random_floats(400000)) {
    expect_rounds_like_reference(x, slow_decode(f32_to_bf16(x), kBF16), kBF16);
  }
}

TEST(DType, NanStaysNanWithItsSign) {
  const float quiet = std::numeric_limits<float>::quiet_NaN();
  // Payload only in the low bits, which narrowing drops: must not become Inf.
  const float low_payload = from_bits(0x7f800001u);
  for (float nan : {quiet, -quiet, low_payload, -low_payload}) {
    EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(nan)))) << std::hex << bits_of(nan);
    EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(nan)))) << std::hex << bits_of(nan);
    EXPECT_EQ(std::signbit(f16_to_f32(f32_to_f16(nan))), std::signbit(nan));
    EXPECT_EQ(std::signbit(bf16_to_f32(f32_to_bf16(nan))), std::signbit(nan));
  }
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7c01)));  // signaling f16 NaN
  EXPECT_TRUE(std::isnan(bf16_to_f32(0xff81)));
  EXPECT_TRUE(std::signbit(bf16_to_f32(0xff81)));
}

TEST(DType, InfinitiesAndZerosKeepTheirSign) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(f32_to_f16(inf), 0x7c00);
  EXPECT_EQ(f32_to_f16(-inf), 0xfc00);
  EXPECT_EQ(f32_to_bf16(inf), 0x7f80);
  EXPECT_EQ(f32_to_bf16(-inf), 0xff80);
  EXPECT_EQ(f16_to_f32(0x7c00), inf);
  EXPECT_EQ(f16_to_f32(0xfc00), -inf);
  EXPECT_EQ(bf16_to_f32(0x7f80), inf);
  EXPECT_EQ(bf16_to_f32(0xff80), -inf);

  EXPECT_EQ(f32_to_f16(0.0f), 0x0000);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_bf16(0.0f), 0x0000);
  EXPECT_EQ(f32_to_bf16(-0.0f), 0x8000);
  EXPECT_TRUE(std::signbit(f16_to_f32(0x8000)) && f16_to_f32(0x8000) == 0.0f);
  EXPECT_TRUE(std::signbit(bf16_to_f32(0x8000)) && bf16_to_f32(0x8000) == 0.0f);
}

TEST(DType, F16Subnormals) {
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));     // smallest subnormal
  EXPECT_EQ(f16_to_f32(0x03ff), std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(f16_to_f32(0x8200), -std::ldexp(1.0f, -15));
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(f32_to_f16(std::ldexp(1023.0f, -24)), 0x03ff);
  EXPECT_EQ(f32_to_f16(-std::ldexp(5.0f, -24)), 0x8005);
  // Ties between subnormals go to the even neighbour, down or up.
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // 0.5 ulp: to 0
  EXPECT_EQ(f32_to_f16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);     // 1.5 ulp: up to 2
  EXPECT_EQ(f32_to_f16(std::ldexp(5.0f, -25)), 0x0002);     // 2.5 ulp: down to 2
  EXPECT_EQ(f32_to_f16(std::ldexp(2047.0f, -25)), 0x0400);  // 1023.5 ulp: up into the normals
  // f32 subnormals are far below half the smallest f16 subnormal.
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(f32_to_f16(-std::numeric_limits<float>::denorm_min()), 0x8000);
}

TEST(DType, Bf16Subnormals) {
  EXPECT_EQ(bf16_to_f32(0x0001), std::ldexp(1.0f, -133));
  EXPECT_EQ(bf16_to_f32(0x807f), -std::ldexp(127.0f, -133));
  EXPECT_EQ(f32_to_bf16(std::ldexp(1.0f, -133)), 0x0001);
  EXPECT_EQ(f32_to_bf16(std::ldexp(1.0f, -134)), 0x0000);  // tie: down to even 0
  EXPECT_EQ(f32_to_bf16(std::nextafter(std::ldexp(1.0f, -134), 1.0f)), 0x0001);
  EXPECT_EQ(f32_to_bf16(std::ldexp(3.0f, -134)), 0x0002);    // tie: up to even 2
  EXPECT_EQ(f32_to_bf16(std::ldexp(255.0f, -134)), 0x0080);  // tie: up into the normals
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::denorm_min()), 0x0000);
}

TEST(DType, TiesRoundToEvenBothWays) {
  // f16 ulp at 1 is 2^-10.
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // down to even
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(3.0f, -11)), 0x3c02);  // up to even
  EXPECT_EQ(f32_to_f16(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)), 0x3c01);
  EXPECT_EQ(f32_to_f16(std::nextafter(1.0f + std::ldexp(3.0f, -11), 1.0f)), 0x3c01);
  EXPECT_EQ(f32_to_f16(-(1.0f + std::ldexp(1.0f, -11))), 0xbc00);
  EXPECT_EQ(f32_to_f16(-(1.0f + std::ldexp(3.0f, -11))), 0xbc02);
  // bf16 ulp at 1 is 2^-7.
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(3.0f, -8)), 0x3f82);
  EXPECT_EQ(f32_to_bf16(std::nextafter(1.0f + std::ldexp(1.0f, -8), 2.0f)), 0x3f81);
  EXPECT_EQ(f32_to_bf16(std::nextafter(1.0f + std::ldexp(3.0f, -8), 1.0f)), 0x3f81);
  EXPECT_EQ(f32_to_bf16(-(1.0f + std::ldexp(3.0f, -8))), 0xbf82);
  // A carry out of the mantissa moves to the next binade.
  EXPECT_EQ(f32_to_f16(std::nextafter(2.0f, 1.0f)), 0x4000);
  EXPECT_EQ(f32_to_bf16(std::nextafter(2.0f, 1.0f)), 0x4000);
}

TEST(DType, F16MaxFiniteAndOverflow) {
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(-65504.0f), 0xfbff);
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(std::nextafter(65520.0f, 0.0f)), 0x7bff);  // just below the threshold
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);                        // the tie rounds to even: Inf
  EXPECT_EQ(f32_to_f16(-65520.0f), 0xfc00);
  EXPECT_EQ(f32_to_f16(1e9f), 0x7c00);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::max()), 0x7c00);
}

TEST(DType, Bf16MaxFiniteAndOverflow) {
  const float max_bf16 = std::ldexp(255.0f, 120);   // (2 - 2^-7) * 2^127
  const float threshold = std::ldexp(511.0f, 119);  // max + half an ulp
  EXPECT_EQ(bf16_to_f32(0x7f7f), max_bf16);
  EXPECT_EQ(f32_to_bf16(max_bf16), 0x7f7f);
  EXPECT_EQ(f32_to_bf16(std::nextafter(threshold, 0.0f)), 0x7f7f);
  EXPECT_EQ(f32_to_bf16(threshold), 0x7f80);
  EXPECT_EQ(f32_to_bf16(-threshold), 0xff80);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);
}

TEST(DType, LoadAndStoreConvertByDType) {
  std::vector<uint32_t> buffer(2, 0);
  store_from_f32(buffer.data(), DType::kF16, 1, 1.5f);
  EXPECT_EQ(load_as_f32(buffer.data(), DType::kF16, 1), 1.5f);
  store_from_f32(buffer.data(), DType::kBF16, 0, -2.0f);
  EXPECT_EQ(load_as_f32(buffer.data(), DType::kBF16, 0), -2.0f);
  store_from_f32(buffer.data(), DType::kF32, 1, 0.1f);
  EXPECT_EQ(load_as_f32(buffer.data(), DType::kF32, 1), 0.1f);
  store_from_f32(buffer.data(), DType::kI32, 0, 42.0f);
  EXPECT_EQ(load_as_f32(buffer.data(), DType::kI32, 0), 42.0f);
}

TEST(DType, NamesSizesAndParsing) {
  for (DType t : {DType::kF32, DType::kBF16, DType::kF16, DType::kI32}) {
    DType parsed = DType::kF32;
    ASSERT_TRUE(parse_dtype(dtype_name(t), &parsed)) << dtype_name(t);
    EXPECT_EQ(parsed, t);
  }
  EXPECT_EQ(dtype_size(DType::kF32), 4);
  EXPECT_EQ(dtype_size(DType::kBF16), 2);
  EXPECT_EQ(dtype_size(DType::kF16), 2);
  EXPECT_EQ(dtype_size(DType::kI32), 4);
  for (const char* bad : {"", "F32", "fp16", "float16", "bf16 ", "f64", "unknown"}) {
    DType parsed = DType::kBF16;
    EXPECT_FALSE(parse_dtype(bad, &parsed)) << bad;
    EXPECT_EQ(parsed, DType::kBF16) << "a failed parse leaves the output alone: " << bad;
  }
}

}  // namespace
}  // namespace rpa

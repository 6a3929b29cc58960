// fp8 e4m3 conversions against references written from the OCP definition
// (bias 7, no infinities, S.1111.111 = NaN, largest finite 448): every byte is
// decoded, and f32 values are encoded by searching all finite codes for the
// nearest one (ties to the even code), then saturated.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "rpa/dtype.h"

namespace rpa {
namespace {

double decode_by_definition(uint8_t b) {
  const int exponent = (b >> 3) & 0xf;
  const int mantissa = b & 0x7;
  if (exponent == 0xf && mantissa == 0x7) return std::numeric_limits<double>::quiet_NaN();
  const double magnitude = exponent == 0 ? std::ldexp(mantissa, -9)
                                         : std::ldexp(1.0 + mantissa / 8.0, exponent - 7);
  return (b & 0x80) ? -magnitude : magnitude;
}

// The nearest finite code by exhaustive search; ties go to the even code.
// Values beyond the largest finite one saturate to +-448.
uint8_t encode_by_search(float x) {
  const uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  if (std::isnan(x)) return sign | 0x7f;
  const double a = std::fabs(static_cast<double>(x));
  if (a >= 448.0) return sign | 0x7e;
  uint8_t best = 0;
  double best_distance = std::numeric_limits<double>::infinity();
  for (int code = 0; code <= 0x7e; ++code) {
    const double distance = std::fabs(decode_by_definition(static_cast<uint8_t>(code)) - a);
    if (distance < best_distance || (distance == best_distance && (code & 1) == 0)) {
      best = static_cast<uint8_t>(code);
      best_distance = distance;
    }
  }
  return sign | best;
}

TEST(Fp8E4M3, DecodesEveryByteByDefinition) {
  for (int b = 0; b < 256; ++b) {
    const double expected = decode_by_definition(static_cast<uint8_t>(b));
    const float value = fp8_e4m3_to_f32(static_cast<uint8_t>(b));
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(value)) << b;
      EXPECT_EQ(std::signbit(value), (b & 0x80) != 0) << b;
    } else {
      EXPECT_EQ(static_cast<double>(value), expected) << b;
      EXPECT_EQ(std::signbit(value), (b & 0x80) != 0) << b;
    }
  }
  EXPECT_EQ(fp8_e4m3_to_f32(0x7e), 448.0f);
  EXPECT_EQ(fp8_e4m3_to_f32(0x01), 0x1p-9f);
  EXPECT_EQ(fp8_e4m3_to_f32(0x08), 0x1p-6f);
}

TEST(Fp8E4M3, EveryFiniteByteRoundTrips) {
  for (int b = 0; b < 256; ++b) {
    if ((b & 0x7f) == 0x7f) continue;  // NaN: checked below
    EXPECT_EQ(f32_to_fp8_e4m3(fp8_e4m3_to_f32(static_cast<uint8_t>(b))), b) << b;
  }
  EXPECT_EQ(f32_to_fp8_e4m3(fp8_e4m3_to_f32(0x7f)), 0x7f);
  EXPECT_EQ(f32_to_fp8_e4m3(fp8_e4m3_to_f32(0xff)), 0xff);
}

TEST(Fp8E4M3, EncodesLikeTheExhaustiveSearch) {
  // Every midpoint between neighbouring codes and its two float neighbours:
  // the places where rounding can go wrong.
  for (int b = 0; b < 0x7e; ++b) {
    const double lo = decode_by_definition(static_cast<uint8_t>(b));
    const double hi = decode_by_definition(static_cast<uint8_t>(b + 1));
    const float mid = static_cast<float>((lo + hi) / 2);
    for (float x : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1000.0f)}) {
      EXPECT_EQ(f32_to_fp8_e4m3(x), encode_by_search(x)) << x;
      EXPECT_EQ(f32_to_fp8_e4m3(-x), encode_by_search(-x)) << -x;
    }
  }
  // Random magnitudes across and beyond the whole range.
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> exponent(-14.0f, 12.0f);
  std::uniform_real_distribution<float> mantissa(1.0f, 2.0f);
  for (int i = 0; i < 100000; ++i) {
    const float x = std::ldexp(mantissa(rng), static_cast<int>(exponent(rng))) * (i % 2 ? -1 : 1);
    ASSERT_EQ(f32_to_fp8_e4m3(x), encode_by_search(x)) << x;
  }
}

TEST(Fp8E4M3, SaturatesAndKeepsNan) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(f32_to_fp8_e4m3(448.0f), 0x7e);
  EXPECT_EQ(f32_to_fp8_e4m3(463.99f), 0x7e);
  EXPECT_EQ(f32_to_fp8_e4m3(464.0f), 0x7e);  // the tie goes to the even code 448
  EXPECT_EQ(f32_to_fp8_e4m3(1e6f), 0x7e);
  EXPECT_EQ(f32_to_fp8_e4m3(inf), 0x7e);
  EXPECT_EQ(f32_to_fp8_e4m3(-inf), 0xfe);
  EXPECT_EQ(f32_to_fp8_e4m3(std::numeric_limits<float>::quiet_NaN()) & 0x7f, 0x7f);
  EXPECT_EQ(f32_to_fp8_e4m3(-std::numeric_limits<float>::quiet_NaN()), 0xff);
  EXPECT_EQ(f32_to_fp8_e4m3(-0.0f), 0x80);
  EXPECT_EQ(f32_to_fp8_e4m3(0x1p-10f), 0x00);   // half the smallest subnormal: tie to 0
  EXPECT_EQ(f32_to_fp8_e4m3(0x1.8p-10f), 0x01);  // three quarters of it: up
  EXPECT_EQ(f32_to_fp8_e4m3(std::numeric_limits<float>::denorm_min()), 0x00);
}

TEST(Fp8E4M3, LoadStoreNameAndParse) {
  uint8_t buffer[2] = {0, 0};
  store_from_f32(buffer, DType::kF8E4M3, 1, -1.5f);
  EXPECT_EQ(buffer[1], 0xbc);
  EXPECT_EQ(load_as_f32(buffer, DType::kF8E4M3, 1), -1.5f);
  EXPECT_EQ(dtype_size(DType::kF8E4M3), 1);
  EXPECT_EQ(dtype_name(DType::kF8E4M3), "fp8_e4m3");
  DType parsed = DType::kF32;
  EXPECT_TRUE(parse_dtype("fp8", &parsed));
  EXPECT_EQ(parsed, DType::kF8E4M3);
  parsed = DType::kF32;
  EXPECT_TRUE(parse_dtype("fp8_e4m3", &parsed));
  EXPECT_EQ(parsed, DType::kF8E4M3);
  EXPECT_FALSE(parse_dtype("fp8_e5m2", &parsed));
}

}  // namespace
}  // namespace rpa

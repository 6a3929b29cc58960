// The AMX tile kernels of bf16 prefill (src/cpu/amx_tiles.h) against plain
// loops: the tile layouts of q, K, V and P (tails of keys and of head_dim
// included) and both tile products; and the fp8 widening of the AMX decode
// (amx_decode_tiles.h) against the scalar decode, code by code. Skipped
// where AMX is not usable; the attention tests then cover the other paths.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <vector>

#include "core/support.h"
#include "cpu/amx_decode_tiles.h"
#include "cpu/amx_tiles.h"
#include "cpu/cpu_features.h"
#include "rpa/dtype.h"

namespace rpa::cpu {
namespace {

// n rows of `dim` bf16 values, distinct and exactly representable.
std::vector<uint16_t> rows_of(int64_t n, int64_t dim, float step) {
  std::vector<uint16_t> r(n * dim);
  for (int64_t i = 0; i < n * dim; ++i) {
    r[i] = f32_to_bf16(static_cast<float>((i * 7) % 23 - 11) * step);
  }
  return r;
}

std::vector<const uint16_t*> pointers(const std::vector<uint16_t>& rows, int64_t n, int64_t dim) {
  std::vector<const uint16_t*> p(kAmxKeys, nullptr);
  for (int64_t i = 0; i < n; ++i) p[i] = rows.data() + i * dim;
  return p;
}

class AmxTiles : public ::testing::TestWithParam<std::tuple<int64_t, int64_t>> {
 protected:
  void SetUp() override {
    if (!has_amx_bf16()) GTEST_SKIP() << "AMX-BF16 is not usable on this CPU";
  }
};

// A 32-lane m-block's q rows, zero-padded to padded_dim.
std::vector<uint16_t> padded_queries(int64_t dim, int64_t padded) {
  const std::vector<uint16_t> rows = rows_of(32, dim, 0.125f);
  std::vector<uint16_t> qa(32 * padded, 0);
  for (int64_t i = 0; i < 32; ++i) {
    for (int64_t d = 0; d < dim; ++d) qa[i * padded + d] = rows[i * dim + d];
  }
  return qa;
}

uint32_t pair_of(const uint16_t* row, int64_t d) { return row[d] | (uint32_t{row[d + 1]} << 16); }

TEST_P(AmxTiles, PackingFollowsTheTileLayouts) {
  const auto [dim, count] = GetParam();
  const int64_t padded = amx_padded_dim(dim);
  const std::vector<uint16_t> qa = padded_queries(dim, padded);
  std::vector<uint32_t> qv(32 * padded / 2, 0xDEADBEEF);
  amx_pack_queries(qa.data(), 32, padded, qv.data());
  for (int64_t lane = 0; lane < 32; ++lane) {
    for (int64_t pair = 0; pair < padded / 2; ++pair) {
      const int64_t g = lane / 16, b = pair / 16, r = pair % 16;
      ASSERT_EQ(qv[((g * padded / 32 + b) * 16 + r) * 16 + lane % 16],
                pair_of(qa.data() + lane * padded, 2 * pair))
          << "lane " << lane << " pair " << pair;
    }
  }
  const std::vector<uint16_t> k = rows_of(count, dim, 0.25f);
  std::vector<uint16_t> kc(kAmxKeys * padded, 0xBEEF);
  amx_copy_keys(pointers(k, count, dim).data(), count, dim, padded, kc.data());
  for (int64_t n = 0; n < kAmxKeys; ++n) {
    for (int64_t d = 0; d < padded; ++d) {
      const uint16_t want = n < count && d < dim ? k[n * dim + d] : 0;
      ASSERT_EQ(kc[n * padded + d], want) << "key " << n << " dim " << d;
    }
  }
  const std::vector<uint16_t> v = rows_of(count, dim, 0.5f);
  std::vector<uint32_t> vt(kAmxKeys / 2 * dim, 0xDEADBEEF);
  amx_pack_values(pointers(v, count, dim).data(), count, dim, vt.data());
  for (int64_t p = 0; p < kAmxKeys / 2; ++p) {
    for (int64_t d = 0; d < dim; ++d) {
      const uint32_t lo = 2 * p < count ? v[2 * p * dim + d] : 0;
      const uint32_t hi = 2 * p + 1 < count ? v[(2 * p + 1) * dim + d] : 0;
      ASSERT_EQ(vt[p * dim + d], lo | (hi << 16)) << "pair " << p << " dim " << d;
    }
  }
  // Probabilities: rounded to nearest even, keys outside [first, end) zero,
  // the 32-key groups past end's not written.
  std::vector<float> st(kAmxKeys * 32);
  for (size_t i = 0; i < st.size(); ++i) st[i] = 1.0f / static_cast<float>(3 + i);
  const int64_t first = count == 1 ? 0 : 5, end = count;
  for (int64_t half = 0; half < 2; ++half) {
    std::vector<uint16_t> p(kAmxLanes * kAmxKeys, 0xBEEF);
    amx_pack_probabilities(st.data(), first, end, half, p.data());
    for (int64_t i = 0; i < kAmxLanes; ++i) {
      for (int64_t n = 0; n < kAmxKeys; ++n) {
        const float x = st[n * 32 + half * 16 + i];
        const uint16_t want = n >= (end + 31) / 32 * 32 ? 0xBEEF
                              : n >= first && n < end   ? f32_to_bf16(x)
                                                        : 0;
        ASSERT_EQ(p[i * kAmxKeys + n], want) << "half " << half << " lane " << i << " key " << n;
      }
    }
  }
}

TEST_P(AmxTiles, ProductsMatchPlainLoops) {
  const auto [dim, count] = GetParam();
  const int64_t padded = amx_padded_dim(dim);
  const std::vector<uint16_t> qa = padded_queries(dim, padded);
  const std::vector<uint16_t> k = rows_of(count, dim, 0.25f);
  const std::vector<uint16_t> v = rows_of(count, dim, 0.5f);
  std::vector<uint32_t> qv(32 * padded / 2), vt(kAmxKeys / 2 * dim);
  std::vector<uint16_t> kc(kAmxKeys * padded);
  amx_pack_queries(qa.data(), 32, padded, qv.data());
  amx_copy_keys(pointers(k, count, dim).data(), count, dim, padded, kc.data());
  amx_pack_values(pointers(v, count, dim).data(), count, dim, vt.data());
  constexpr float kUntouched = -7.0f;
  std::vector<float> st(kAmxKeys * 32, kUntouched);
  std::vector<uint16_t> p(32 * kAmxKeys);
  for (int64_t i = 0; i < 32 * kAmxKeys; ++i) p[i] = f32_to_bf16(0.0625f * (i % 5));
  std::vector<float> o(32 * dim, 1.0f);
  amx_begin();
  amx_scores(kc.data(), qv.data(), padded, count, st.data());
  amx_accumulate(p.data(), vt.data(), dim, count, o.data());
  amx_end();
  // Every product and partial sum here is exact in f32; the 32-key groups
  // past count's are not computed.
  for (int64_t n = 0; n < kAmxKeys; ++n) {
    for (int64_t j = 0; j < 32; ++j) {
      if (n >= (count + 31) / 32 * 32) {
        ASSERT_EQ(st[n * 32 + j], kUntouched) << "key " << n << " lane " << j;
        continue;
      }
      float want = 0.0f;
      for (int64_t d = 0; n < count && d < dim; ++d) {
        want += bf16_to_f32(qa[j * padded + d]) * bf16_to_f32(k[n * dim + d]);
      }
      ASSERT_EQ(st[n * 32 + j], want) << "key " << n << " lane " << j;
    }
  }
  for (int64_t i = 0; i < 32; ++i) {
    for (int64_t d = 0; d < dim; ++d) {
      float want = 1.0f;
      for (int64_t n = 0; n < count; ++n) {
        want += bf16_to_f32(p[i * kAmxKeys + n]) * bf16_to_f32(v[n * dim + d]);
      }
      ASSERT_EQ(o[i * dim + d], want) << "lane " << i << " dim " << d;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(HeadDimsAndChunkTails, AmxTiles,
                         ::testing::Combine(::testing::ValuesIn(kSupportedHeadDims),
                                            ::testing::Values(128, 100, 64, 37, 1)));

// Every e4m3 code, at every position of a 64-byte vector and of the 32-byte
// tail that head_dims 96 and 160 leave, widens to the bf16 bits of its exact
// value (NaN codes to NaN); null rows give zeros, and the rows asked for
// ahead are only read, never written.
TEST(AmxDecodeTiles, Fp8WidensEveryCodeExactly) {
  if (!has_amx_bf16() || !has_avx512_vbmi()) GTEST_SKIP() << "AMX or AVX512_VBMI is not usable";
  for (const int64_t dim : kSupportedHeadDims) {
    if (dim % 32 != 0) continue;
    constexpr int64_t kRows = 16;
    std::vector<uint8_t> codes(kRows * dim);
    for (size_t i = 0; i < codes.size(); ++i)
      codes[i] = static_cast<uint8_t>((i * 37 + i / 256) % 256);
    std::vector<const uint8_t*> rows(kRows), ahead(kRows);
    for (int64_t n = 0; n < kRows; ++n) {
      rows[n] = n == 5 ? nullptr : codes.data() + n * dim;
      ahead[n] = n % 3 == 0 ? nullptr : codes.data() + (kRows - 1 - n) * dim;
    }
    const int64_t stride = dim + 32;  // past each row: a guard that must stay untouched
    std::vector<uint16_t> out(kRows * stride, 0xABCD);
    amx_decode_widen_fp8(rows.data(), kRows, dim, out.data(), stride, ahead.data());
    for (int64_t n = 0; n < kRows; ++n) {
      for (int64_t d = 0; d < stride; ++d) {
        const uint16_t got = out[n * stride + d];
        if (d >= dim) {
          ASSERT_EQ(got, 0xABCD) << "dim " << dim << " row " << n << " wrote past the row at " << d;
          continue;
        }
        const uint8_t code = codes[n * dim + d];
        const float value = n == 5 ? 0.0f : fp8_e4m3_to_f32(code);
        const uint16_t want = static_cast<uint16_t>(std::bit_cast<uint32_t>(value) >> 16);
        ASSERT_EQ(got, want) << "dim " << dim << " row " << n << " element " << d << " code "
                             << int{code};
      }
    }
  }
}

}  // namespace
}  // namespace rpa::cpu

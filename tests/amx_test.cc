// The AMX tile kernels of bf16 prefill (src/cpu/amx_tiles.h) against plain
// loops: the B-tile packing of K and V (tails of keys and of head_dim
// included) and both tile products. Skipped where AMX is not usable; the
// attention tests then cover the other paths.
#include "cpu/amx_tiles.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

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

TEST_P(AmxTiles, PackingFollowsTheBTileLayouts) {
  const auto [dim, count] = GetParam();
  const int64_t padded = amx_padded_dim(dim);
  const std::vector<uint16_t> k = rows_of(count, dim, 0.25f);
  std::vector<uint32_t> kt(padded / 2 * kAmxKeys, 0xDEADBEEF);
  amx_pack_keys(pointers(k, count, dim).data(), count, dim, padded, kt.data());
  for (int64_t n = 0; n < kAmxKeys; ++n) {
    for (int64_t pair = 0; pair < padded / 2; ++pair) {
      const int64_t b = pair / 16, r = pair % 16, j = n / 16, c = n % 16;
      const uint32_t got = kt[((b * 4 + j) * 16 + r) * 16 + c];
      uint32_t want = 0;
      if (n < count && 2 * pair < dim) {
        want = k[n * dim + 2 * pair] | (uint32_t{k[n * dim + 2 * pair + 1]} << 16);
      }
      ASSERT_EQ(got, want) << "key " << n << " pair " << pair;
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
}

TEST_P(AmxTiles, ProductsMatchPlainLoops) {
  const auto [dim, count] = GetParam();
  const int64_t padded = amx_padded_dim(dim);
  std::vector<uint16_t> q(kAmxLanes * padded, 0);
  const std::vector<uint16_t> q_rows = rows_of(kAmxLanes, dim, 0.125f);
  for (int64_t i = 0; i < kAmxLanes; ++i) {
    for (int64_t d = 0; d < dim; ++d) q[i * padded + d] = q_rows[i * dim + d];
  }
  const std::vector<uint16_t> k = rows_of(count, dim, 0.25f);
  const std::vector<uint16_t> v = rows_of(count, dim, 0.5f);
  std::vector<uint32_t> kt(padded / 2 * kAmxKeys), vt(kAmxKeys / 2 * dim);
  amx_pack_keys(pointers(k, count, dim).data(), count, dim, padded, kt.data());
  amx_pack_values(pointers(v, count, dim).data(), count, dim, vt.data());
  std::vector<float> s(kAmxLanes * kAmxKeys);
  std::vector<uint16_t> p(kAmxLanes * kAmxKeys);
  for (int64_t i = 0; i < kAmxLanes * kAmxKeys; ++i) p[i] = f32_to_bf16(0.0625f * (i % 5));
  std::vector<float> o(kAmxLanes * dim, 1.0f);
  amx_begin();
  amx_scores(q.data(), kt.data(), padded, s.data());
  amx_accumulate(p.data(), vt.data(), dim, o.data());
  amx_end();
  // Every product and partial sum here is exact in f32.
  for (int64_t i = 0; i < kAmxLanes; ++i) {
    for (int64_t n = 0; n < kAmxKeys; ++n) {
      float want = 0.0f;
      for (int64_t d = 0; n < count && d < dim; ++d) {
        want += bf16_to_f32(q_rows[i * dim + d]) * bf16_to_f32(k[n * dim + d]);
      }
      ASSERT_EQ(s[i * kAmxKeys + n], want) << "lane " << i << " key " << n;
    }
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
                         ::testing::Combine(::testing::Values(64, 80, 96, 128, 256),
                                            ::testing::Values(64, 37, 1)));

}  // namespace
}  // namespace rpa::cpu

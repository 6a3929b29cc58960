// The single-loop executor against the reference on generated batches, with
// the default sizes and with small ones that force many tiles and splits.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "compare/compare.h"
#include "core/problem.h"
#include "generate/batch.h"
#include "owned_outputs.h"
#include "plan/planner.h"
#include "single_loop/single_loop.h"

namespace rpa {
namespace {

gen::BatchSpec variant_spec(uint64_t seed) {
  gen::BatchSpec spec;
  spec.seed = seed;
  spec.batch_capacity = 5 + static_cast<int32_t>(seed % 6);
  spec.num_active = 1 + static_cast<int32_t>(seed % 5);
  spec.dtype = std::array<DType, 3>{DType::kF32, DType::kBF16, DType::kF16}[seed % 3];
  spec.out_dtype = seed % 4 == 0 ? DType::kF32 : spec.dtype;
  spec.page_size = std::array<int32_t, 3>{16, 32, 64}[(seed / 3) % 3];
  spec.heads_per_kv = std::array<int32_t, 3>{1, 4, 8}[(seed / 2) % 3];
  spec.num_kv_heads = 1 + static_cast<int32_t>(seed % 2);
  spec.head_dim = seed % 5 == 0 ? 128 : 64;
  spec.max_context = 300;
  spec.max_prompt = 70;
  spec.max_chunk = 40;
  if (seed % 3 == 1) spec.options.sliding_window = 1 + static_cast<int32_t>(seed * 13 % 90);
  if (seed % 4 == 2) spec.options.logit_soft_cap = 5.0f;
  spec.sinks = seed % 5 == 3;
  spec.lse = seed % 2 == 0;
  return spec;
}

void expect_matches_reference(const gen::Batch& batch, const PlanConfig& config) {
  Outputs want = make_outputs(batch);
  const Status s = attention(batch.inputs(), batch.spec.options, want.views, {Backend::kReference});
  ASSERT_TRUE(s.ok()) << s.message();

  Outputs got = make_outputs(batch);
  Problem problem;
  ASSERT_TRUE(describe(batch.inputs(), batch.spec.options, &got.views, &problem).ok());
  Plan plan;
  ASSERT_TRUE(build_plan(problem, config, &plan).ok());
  ASSERT_TRUE(run_single_loop(problem, plan, batch.inputs(), got.views).ok());

  const Comparison c = compare_outputs(got.views.out, want.views.out, batch.seq_lens.data(),
                                       batch.query_start_len.data(), batch.spec.batch_capacity);
  EXPECT_EQ(c.rows, batch.live_rows());
  EXPECT_TRUE(c.within(tolerance_for(batch.spec.dtype)))
      << "seed " << batch.spec.seed << ": relative error " << c.relative_error();
  // lse matches on live rows; elsewhere both leave the sentinel.
  if (batch.spec.lse) {
    for (size_t i = 0; i < got.lse.size(); ++i) {
      if (std::isnan(want.lse[i])) {
        EXPECT_TRUE(std::isnan(got.lse[i])) << i;  // sentinel left alone by both
      } else {
        EXPECT_NEAR(got.lse[i], want.lse[i], 1e-3f * std::max(1.0f, std::fabs(want.lse[i]))) << i;
      }
    }
  }
}

TEST(SingleLoop, MatchesReferenceWithDefaultSizes) {
  for (uint64_t seed = 1; seed <= 24; ++seed) expect_matches_reference(gen::generate(variant_spec(seed)), {});
}

// A long prompt's tiles are taller than a short one's (heuristics.h): the
// executor's state holds the tallest.
TEST(SingleLoop, MatchesReferenceWithTallAndShortTiles) {
  gen::BatchSpec spec = variant_spec(7);
  spec.heads_per_kv = 8;  // tall tiles (64 rows) from 512 rows on
  spec.slots = {{40, 30}, {520, 0}, {1, 90}};
  spec.slot_positions = {0, 2, 3};
  spec.batch_capacity = 4;
  const gen::Batch batch = gen::generate(spec);
  Problem problem;
  Outputs out = make_outputs(batch);
  ASSERT_TRUE(describe(batch.inputs(), batch.spec.options, &out.views, &problem).ok());
  Plan plan;
  ASSERT_TRUE(build_plan(problem, {}, &plan).ok());
  ASSERT_GT(plan.max_tile_rows, plan.config.q_tile_rows);
  expect_matches_reference(batch, {});
}

TEST(SingleLoop, MatchesReferenceWithManyTilesAndSplits) {
  for (uint64_t seed = 100; seed < 124; ++seed) {
    const gen::Batch batch = gen::generate(variant_spec(seed));
    const int32_t page = batch.spec.page_size;
    expect_matches_reference(batch, PlanConfig{5, page, page * 3});
  }
}

TEST(SingleLoop, LeavesRowsOfInactiveSlotsAndPaddingUntouched) {
  gen::BatchSpec spec;
  spec.batch_capacity = 6;
  spec.slots = {{3, 10}, {2, 0}, {1, 50}};
  spec.slot_positions = {0, 2, 5};
  spec.token_padding = 4;
  const gen::Batch batch = gen::generate(spec);
  Outputs got = make_outputs(batch);
  const std::vector<uint8_t> sentinel = got.out;
  ASSERT_TRUE(attention(batch.inputs(), spec.options, got.views, {Backend::kSingleLoop}).ok());
  const int64_t row_bytes = int64_t{spec.num_kv_heads} * spec.heads_per_kv * spec.head_dim * 2;
  const int64_t live_end = batch.query_start_len[spec.batch_capacity];
  // Padding rows after the last slot are never written.
  EXPECT_EQ(std::memcmp(got.out.data() + live_end * row_bytes, sentinel.data() + live_end * row_bytes,
                        (batch.num_tokens - live_end) * row_bytes),
            0);
  // Every live row was written.
  for (int64_t t = 0; t < live_end; ++t) {
    EXPECT_NE(std::memcmp(got.out.data() + t * row_bytes, sentinel.data() + t * row_bytes, row_bytes), 0)
        << "row " << t;
  }
}

}  // namespace
}  // namespace rpa

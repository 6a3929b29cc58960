// The randomized batches and runs shared by the backend tests (cpu_test,
// fp8_attention_test, cuda_test): one spec per seed over every dtype, GQA ratio,
// head_dim, page size and variant, plan sizes small enough to force many
// tiles, chunks and splits, the runs, and their comparison.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "compare/compare.h"
#include "core/support.h"
#include "core/problem.h"
#include "cpu/cpu.h"
#include "generate/batch.h"
#include "owned_outputs.h"
#include "plan/planner.h"

namespace rpa {

inline Outputs run_reference_backend(const gen::Batch& batch) {
  Outputs o = make_outputs(batch);
  const Status s = attention(batch.inputs(), batch.spec.options, o.views, {Backend::kReference});
  EXPECT_TRUE(s.ok()) << s.message();
  return o;
}

// The CPU backend on a plan built with `config` (0 = the planner's sizes).
inline Outputs run_cpu_plan(const gen::Batch& batch, const PlanConfig& config, int threads) {
  Outputs o = make_outputs(batch);
  Problem problem;
  Plan plan;
  EXPECT_TRUE(describe(batch.inputs(), batch.spec.options, &o.views, &problem).ok());
  EXPECT_TRUE(build_plan(problem, config, &plan).ok());
  const Status s = run_cpu(problem, plan, batch.inputs(), o.views, threads);
  EXPECT_TRUE(s.ok()) << s.message();
  return o;
}

// Expects `got` within `out_bound` (relative to max |want|) of `want` over the
// live rows, and its lse within `lse_bound` * max(1, |lse|), NaN where want's is.
inline void expect_close(const gen::Batch& batch, const Outputs& got, const Outputs& want,
                         double out_bound, float lse_bound) {
  const Comparison c = compare_outputs(got.views.out, want.views.out, batch.seq_lens.data(),
                                       batch.query_start_len.data(), batch.spec.batch_capacity);
  EXPECT_EQ(c.rows, batch.live_rows()) << "seed " << batch.spec.seed;
  EXPECT_TRUE(c.within(out_bound))
      << "seed " << batch.spec.seed << ": relative error " << c.relative_error();
  if (!batch.spec.lse) return;
  for (size_t i = 0; i < got.lse.size(); ++i) {
    if (std::isnan(want.lse[i])) {
      EXPECT_TRUE(std::isnan(got.lse[i])) << "seed " << batch.spec.seed << " lse " << i;
    } else {
      EXPECT_NEAR(got.lse[i], want.lse[i], lse_bound * std::max(1.0f, std::fabs(want.lse[i])))
          << "seed " << batch.spec.seed << " lse " << i;
    }
  }
}

inline gen::BatchSpec random_spec(uint64_t seed) {
  gen::BatchSpec spec;
  spec.seed = seed;
  spec.batch_capacity = 4 + static_cast<int32_t>(seed % 5);
  spec.num_active = 1 + static_cast<int32_t>(seed % 4);
  spec.dtype = std::array<DType, 3>{DType::kF32, DType::kBF16, DType::kF16}[seed % 3];
  spec.out_dtype = seed % 4 == 0 ? DType::kF32 : spec.dtype;
  // Pages of 1, 2 and 4 tokens are shorter than any x86 vector of f32.
  spec.page_size = std::array<int32_t, 6>{16, 32, 64, 4, 1, 2}[(seed / 3) % 6];
  spec.heads_per_kv = std::array<int32_t, 3>{1, 4, 8}[(seed / 2) % 3];
  spec.num_kv_heads = 1 + static_cast<int32_t>(seed % 2);
  spec.head_dim = static_cast<int32_t>(kSupportedHeadDims[(seed / 5) % kSupportedHeadDims.size()]);
  spec.max_context = 260;
  spec.max_prompt = 90;
  spec.max_chunk = 40;
  if (seed % 3 == 1) spec.options.sliding_window = 1 + static_cast<int32_t>(seed * 13 % 90);
  if (seed % 4 == 2) spec.options.logit_soft_cap = 5.0f;
  spec.sinks = seed % 5 == 3;
  spec.lse = seed % 2 == 0;
  return spec;
}

// Slot s of `batch` run by `run(inputs, outputs)` as a batch of its own, at
// slot 0 of capacity 1, with the same caches: its out rows must be bitwise
// those it got inside the batch (docs/contract.md §5).
template <typename Run>
void expect_alone_equals_in_batch(const gen::Batch& batch, int32_t s, const Outputs& in_batch,
                                  const Run& run) {
  const int64_t q_start = batch.query_start_len[s];
  const int64_t q_len = batch.query_start_len[s + 1] - q_start;
  const int64_t row_elems =
      int64_t{batch.spec.num_kv_heads} * batch.spec.heads_per_kv * batch.spec.head_dim;
  const int64_t q_row_bytes = row_elems * dtype_size(batch.spec.dtype);
  const int64_t out_row_bytes = row_elems * dtype_size(batch.spec.out_dtype);
  AttentionInputs in = batch.inputs();
  std::vector<uint8_t> q(batch.q.begin() + q_start * q_row_bytes,
                         batch.q.begin() + (q_start + q_len) * q_row_bytes);
  std::vector<int32_t> table(batch.block_table.begin() + int64_t{s} * batch.max_pages_per_seq,
                             batch.block_table.begin() + int64_t{s + 1} * batch.max_pages_per_seq);
  std::vector<int32_t> seq_lens = {batch.seq_lens[s]};
  std::vector<int32_t> query_start_len = {0, static_cast<int32_t>(q_len)};
  in.q = TensorView::contiguous(
      q.data(), batch.spec.dtype,
      {q_len, batch.spec.num_kv_heads, batch.spec.heads_per_kv, batch.spec.head_dim});
  in.block_table = TensorView::contiguous(table.data(), DType::kI32, {1, batch.max_pages_per_seq});
  in.seq_lens = TensorView::contiguous(seq_lens.data(), DType::kI32, {1});
  in.query_start_len = TensorView::contiguous(query_start_len.data(), DType::kI32, {2});
  std::vector<uint8_t> out(q_len * out_row_bytes);
  AttentionOutputs outputs;
  outputs.out = TensorView::contiguous(
      out.data(), batch.spec.out_dtype,
      {q_len, batch.spec.num_kv_heads, batch.spec.heads_per_kv, batch.spec.head_dim});
  const Status status = run(in, outputs);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(std::memcmp(out.data(), in_batch.out.data() + q_start * out_row_bytes, out.size()), 0)
      << "slot " << s;
}

// The random spec with fp8 caches (per head or per tensor), up to three kv
// heads (so per-head scales differ across heads) and logits wide enough for
// the quantization to matter.
inline gen::BatchSpec fp8_spec(uint64_t seed) {
  gen::BatchSpec spec = random_spec(seed);
  spec.kv_quant = seed % 2 == 0 ? gen::KvQuant::kFp8PerHead : gen::KvQuant::kFp8PerTensor;
  spec.num_kv_heads = 1 + static_cast<int32_t>(seed % 3);
  spec.value_range = 3.0f;
  return spec;
}

// `spec` (random_spec or fp8_spec of `seed`) as decode rows of bf16 q over
// what the AMX decode's tiles must handle: groups of 2-8 heads, head_dims
// 64, 96 (a 32-dim tail), 128 and 256 (one seed in 24), pages of fewer and
// more keys than a 16-key run (read in place or copied).
inline gen::BatchSpec bf16_decode_head_groups(gen::BatchSpec spec, uint64_t seed) {
  spec.dtype = DType::kBF16;
  spec.out_dtype = seed % 2 == 0 ? DType::kF32 : DType::kBF16;
  spec.heads_per_kv = std::array<int32_t, 6>{2, 3, 5, 6, 7, 8}[seed % 6];
  spec.head_dim = std::array<int32_t, 3>{64, 96, 128}[(seed / 6) % 3];
  if (seed % 24 == 23) spec.head_dim = 256;
  spec.page_size = std::array<int32_t, 4>{16, 64, 8, 2}[(seed / 2) % 4];
  return spec;
}

// `spec` with decode rows only: 3 live slots of up to `max_context` keys.
inline gen::BatchSpec decode_only(gen::BatchSpec spec, int32_t max_context) {
  spec.chunk_weight = spec.fresh_weight = 0.0;
  spec.num_active = 3;
  spec.max_context = max_context;
  return spec;
}

// Plan sizes small enough that short sequences still cross tiles, chunks and
// splits, so every item boundary and the merge run.
inline PlanConfig small_config(int32_t page_size, uint64_t seed) {
  return PlanConfig{static_cast<int32_t>(3 + seed % 7), page_size,
                    page_size * static_cast<int32_t>(1 + seed % 3)};
}

}  // namespace rpa

// The two baselines `rpa bench` measures against (docs/benchmarks.md). They
// are what a user would otherwise write, implemented honestly: each takes the
// full contract (causal, GQA, f32/bf16/f16, sliding window, soft-cap, sinks,
// lse, strided q/k/v/out) and is tested against the reference.
//
// - capacity_masked: the static-shape strawman. Every slot of batch_capacity
//   (inactive ones included, as one dummy query row) runs over every one of
//   max_pages_per_seq pages. Dead page ids are clamped to page 0 and dead or
//   invisible keys are masked with selects (scores to -inf, V rows to 0), so the
//   NaN garbage the contract allows never reaches `out`. Its inner arithmetic is
//   a fast path's: Highway dot products and axpys with an f32 online softmax
//   per page, the heads of a GQA group sharing each K/V row.
// - gather_dense: for each live (slot, kv_head), copies the keys any of the
//   slot's rows can see into contiguous f32 K and V, then S = Q·Kᵀ (OpenBLAS
//   sgemm), a causal/window-masked softmax (Highway exp), and O = P·V (sgemm).
//
// Neither checks metadata (a user's own loop would not): inputs must satisfy
// the contract. Shapes are still checked by describe().
#pragma once

#include <cstdint>

#include "rpa/attention.h"

namespace rpa::baselines {

struct BaselineConfig {
  int threads = 0;  // 0 = all OpenMP threads
};

// Slots [begin, end) of batch_capacity; end = -1 means batch_capacity.
struct SlotRange {
  int64_t begin = 0;
  int64_t end = -1;
};

// Runs the capacity-masked loop over the slots of `slots` only (all by
// default) and writes the live rows of those slots. The benchmark times a
// range of the slots when the whole run would take minutes and nearly every
// key is masked, and scales the time by capacity_masked_rows: every row runs
// the same arithmetic over the same keys.
Status capacity_masked(const AttentionInputs& inputs, const AttentionOptions& options,
                       const AttentionOutputs& outputs, const BaselineConfig& config = {},
                       SlotRange slots = {});

// Query rows the capacity-masked loop runs for `slots`: max(q_len, 1) per slot,
// since an inactive slot still runs its compiled decode row. Each row costs
// max_pages_per_seq × page_size keys for every query head.
int64_t capacity_masked_rows(const AttentionInputs& inputs, SlotRange slots = {});

Status gather_dense(const AttentionInputs& inputs, const AttentionOptions& options,
                    const AttentionOutputs& outputs, const BaselineConfig& config = {});

}  // namespace rpa::baselines

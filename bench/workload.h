// Workload: the useful work of a batch, counted from its metadata alone
// (independently of the planner), so that every backend and baseline is
// divided by the same numbers (docs/benchmarks.md, "useful work").
#pragma once

#include <cstdint>

#include "generate/batch.h"

namespace rpa::bench {

struct Workload {
  int64_t live_slots = 0;
  int64_t live_rows = 0;
  int64_t kv_tokens = 0;      // Σ over live slots of the keys any of its rows sees
  int64_t visible_keys = 0;   // Σ over live query rows of the keys the row sees
  double useful_bytes = 0.0;  // K and V of kv_tokens for every kv head, plus q and out
  double flops = 0.0;         // 4 · head_dim · visible_keys for every query head
};

Workload measure_workload(const gen::Batch& batch);

}  // namespace rpa::bench

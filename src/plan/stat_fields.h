// The plan statistics that `rpa plan --json` and Python's `plan_stats` report,
// by name, in one list, so that the two cannot drift apart.
#pragma once

#include <cstdint>

#include "rpa/plan.h"

namespace rpa {

// Calls field(name, value) for each statistic of `plan` and each of its
// resolved sizes: int64_t values, except useful_ratio (double).
template <typename Fn>
void for_each_plan_stat(const Plan& plan, Fn&& field) {
  const PlanStats& s = plan.stats;
  field("batch_capacity", s.batch_capacity);
  field("live_slots", s.live_slots);
  field("decode_rows", s.decode_rows);
  field("prefill_rows", s.prefill_rows);
  field("live_rows", s.decode_rows + s.prefill_rows);
  field("items", s.items);
  field("decode_items", s.decode_items);
  field("prefill_items", s.prefill_items);
  field("chains", s.chains);
  field("partials", s.partials);
  field("merges", static_cast<int64_t>(plan.merges.size()));
  field("live_pages", s.live_pages);
  field("visible_kv_tokens", s.visible_kv_tokens);
  field("streamed_kv_tokens", s.streamed_kv_tokens);
  field("capacity_kv_tokens", s.capacity_kv_tokens);
  field("useful_ratio", s.useful_ratio);
  field("q_tile_rows", int64_t{plan.config.q_tile_rows});
  field("max_tile_rows", int64_t{plan.max_tile_rows});  // taller for long prompts (heuristics.h)
  field("kv_chunk_tokens", int64_t{plan.config.kv_chunk_tokens});
  field("split_tokens", int64_t{plan.config.split_tokens});
}

}  // namespace rpa

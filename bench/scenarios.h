// The scenarios of `rpa bench` (docs/benchmarks.md), each a generated batch
// (generate/batch.h) with explicit slots, and the sweeps behind --plot.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "generate/batch.h"

namespace rpa::bench {

struct Scenario {
  std::string name;
  std::string summary;  // one line, for --list and the table notes
  gen::BatchSpec spec;  // the batch timed
  // decode-capacity only: the same live work at capacity = live, and how many
  // times larger `spec`'s slots and pages are.
  std::optional<gen::BatchSpec> at_1x;
  int capacity_multiplier = 1;
  // mixed only: also time the batch's decode part and prefill part alone
  // (parts.h), in turn with the whole batch.
  bool time_parts = false;
};

// decode-long, decode-capacity, prefill, prefill-f32, prefill-chunk, mixed, in
// that order.
std::vector<Scenario> all_scenarios();
std::optional<Scenario> find_scenario(std::string_view name);

// `live` decode rows that each see `keys` keys (GQA 32/8, head_dim 128,
// page 16, bf16), in `capacity` slots with the live ones spread evenly.
// max_pages_per_seq = 0 lets the generator pick just enough pages.
gen::BatchSpec decode_spec(int live, int keys, int capacity, int max_pages_per_seq = 0);

// One live prefill slot of q_len rows on `context` keys (same geometry), after
// two inactive slots in capacity 8, with q/K/V and out in `dtype`.
gen::BatchSpec prefill_spec(int q_len, int context, DType dtype);

// The points behind --plot: decode-long's shape over a range of contexts, and
// decode-capacity's workload over a range of capacity multipliers.
struct SweepPoint {
  std::string sweep;  // "context" or "capacity"
  int x = 0;          // keys per row, or the capacity multiplier
  gen::BatchSpec spec;
};
std::vector<SweepPoint> plot_sweep();

}  // namespace rpa::bench

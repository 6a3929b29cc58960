// Reports of `rpa bench`: the human table and the JSON object, both derived
// from the raw timings (runner.h) and the machine limits (machine.h). Every
// key is documented in docs/benchmarks.md.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "bench/machine.h"
#include "bench/runner.h"

namespace rpa::bench {

struct Report {
  MachineLimits machine;
  Backend backend = Backend::kAuto;
  int repeat = 0;
  std::vector<ScenarioResult> scenarios;
  std::vector<SweepResult> sweep;  // empty unless --plot
};

nlohmann::json to_json(const Report& report);
nlohmann::json sweep_json(const Report& report);
void print_table(const Report& report, std::FILE* out);

// Fills a scenario's mixed-batch keys (mixed_ratio, the parts' times, their
// difference from the whole) from `parts` timed in turn with `whole`, or with
// null for a scenario without parts; the cpu and the cuda reports write them
// alike.
void put_parts_json(const std::optional<PartTimes>& parts, const Timing& whole, nlohmann::json* j);

}  // namespace rpa::bench

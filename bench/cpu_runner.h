// `rpa bench` on a host backend (cpu, single-loop, reference): the scenario
// runner (runner.h) with rpa timed on host tensors next to the probe of the
// limit its workload runs into, then both CPU baselines on the same batch.
// The ratios and rates are derived in the report (report.h).
#pragma once

#include <string>
#include <vector>

#include "bench/machine.h"
#include "bench/runner.h"

namespace rpa::bench {

// One batch timed with rpa and both baselines.
struct Measured : BatchTimes {
  Timing capacity_masked;  // of the timed slot range only
  // Rows of the capacity-masked loop that were timed, over all its rows
  // (where nearly every key is masked, rows cost alike); 1 when it ran whole.
  double masked_fraction = 1.0;
  Timing gather_dense;
  // max |rpa − gather_dense| / max |gather_dense| over the live rows: a
  // benchmark of a wrong result would be meaningless.
  double rel_diff_vs_gather_dense = 0.0;

  double masked_seconds() const { return capacity_masked.median() / masked_fraction; }

  // The limit probed in turn with the rpa runs ("" when not probed), its work
  // per run (bytes or flops) and its runs.
  std::string probe_limit;
  double probe_work = 0.0;
  Timing probe;

  // The probed limit's rate (bytes or flops per second) at its median run,
  // and rpa's rate over it, both medians of the same rounds.
  double probe_rate() const { return probe_work / probe.median(); }
  double fraction_of_probe() const {
    const double rpa_work = probe_limit == "dram" ? work.useful_bytes : work.flops;
    return rpa_work / rpa.median() / probe_rate();
  }
};

using ScenarioResult = ScenarioResultOf<Measured>;

// Stops at and returns the first failure (the scenario's error is not used).
Status run_scenario(const Scenario& scenario, const BenchConfig& config, Progress& progress,
                    ScenarioResult* result);

struct SweepResult {
  std::string sweep;  // "context" or "capacity"
  int x = 0;
  Measured measured;
};

// Runs plot_sweep() with at most three runs and one second per series.
Status run_sweep(const BenchConfig& config, Progress& progress, std::vector<SweepResult>* results);

struct Report {
  MachineLimits machine;
  Backend backend = Backend::kAuto;
  int repeat = 0;
  std::vector<ScenarioResult> scenarios;
  std::vector<SweepResult> sweep;  // empty unless --plot
};

}  // namespace rpa::bench

// The scenario runner behind `rpa bench`: generates each batch, times rpa and
// both baselines on it in this process, and returns the raw timings. The
// ratios and rates are derived in report.h.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bench/machine.h"
#include "bench/scenarios.h"
#include "bench/timing.h"
#include "bench/workload.h"
#include "rpa/attention.h"

namespace rpa::bench {

struct BenchConfig {
  Backend backend = Backend::kAuto;
  int threads = 0;  // 0 = all OpenMP threads
  RepeatPolicy policy;
  // A capacity-masked run predicted to take longer than this, in a batch
  // whose rows are mostly masked keys, is timed on a range of its slots sized
  // to about a fifth of it, and scaled (see Measured::masked_fraction).
  double scale_limit_s = 10.0;
  // When set, the rpa runs of each scenario alternate with a probe of the
  // limit its workload runs into (probe_for), read as Measured::probe.
  const MachineLimits* machine = nullptr;
};

// One batch timed with rpa and both baselines.
struct Measured {
  Workload work;
  Timing rpa;
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

// rpa on the decode part and on the prefill part of a batch alone (parts.h),
// timed in turn with the whole batch.
struct PartTimes {
  Timing decode;
  Timing prefill;
  // max |parts − whole| / max |whole| over the live rows: each part's rows must
  // come out as in the whole batch (docs/contract.md §5: bitwise, so 0).
  double rel_diff_vs_whole = 0.0;

  // The whole batch's time over the parts' times: 1.0 = running decode and
  // prefill in one call costs what running them apart does.
  double mixed_ratio(const Timing& whole) const {
    return whole.median() / (decode.median() + prefill.median());
  }
};

struct ScenarioResult {
  std::string name;
  std::string summary;
  DType dtype = DType::kBF16;
  Measured main;
  std::optional<Measured> at_1x;  // decode-capacity: the run at capacity = live
  int capacity_multiplier = 1;
  std::optional<PartTimes> parts;  // mixed: the parts of main's batch
};

Status measure_batch(const gen::BatchSpec& spec, const BenchConfig& config, Progress& progress,
                     const std::string& label, Measured* measured);

Status run_scenario(const Scenario& scenario, const BenchConfig& config, Progress& progress,
                    ScenarioResult* result);

struct SweepResult {
  std::string sweep;  // "context" or "capacity"
  int x = 0;
  Measured measured;
};

// Runs plot_sweep() with at most three runs and one second per series.
Status run_sweep(const BenchConfig& config, Progress& progress, std::vector<SweepResult>* results);

}  // namespace rpa::bench

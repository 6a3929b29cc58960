// The scenario runner behind `rpa bench --backend cuda` (docs/benchmarks.md,
// "CUDA backend: how to measure"): each scenario's batch is generated on the
// host as for the cpu, uploaded once (cuda::DeviceCopy), and rpa's calls on it
// are timed on the GPU, next to the GPU's own limits measured by the same
// process. The CPU baselines do not run: on a GPU the comparison is torch
// (scripts/compare_torch_sdpa.py), which rebuilds each batch from the shape
// this run reports. The output is checked against the cpu backend's.
//
// The structs and declarations here are in every build; without the cuda
// backend (cuda_unavailable.cc) both functions return the reason.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bench/batch_shape.h"
#include "bench/gpu_rates.h"
#include "bench/runner.h"
#include "bench/scenarios.h"
#include "bench/timing.h"
#include "bench/workload.h"

namespace rpa::bench {

struct CudaBenchConfig {
  int threads = 0;  // host threads: rpa's planning and the cpu backend's check
  RepeatPolicy policy;
  // A queued sample (CudaMeasured::queued) holds enough calls to last about
  // this long, at most max_queued_calls.
  double sample_s = 0.01;
  int max_queued_calls = 200;
};

// One batch timed on the GPU.
struct CudaMeasured {
  Workload work;
  BatchShape shape;
  // Seconds per call, from samples of `calls` calls queued back to back on one
  // stream and one wait for them: the rate at which a stream of calls runs
  // (host planning overlaps the previous call's kernels).
  int calls = 1;
  Timing queued;
  // Seconds of one call on the default stream, which returns when out is
  // written: what a caller that waits for each call sees.
  Timing single;
  // max |cuda − cpu| / max |cpu| over the live rows: the last timed call's
  // output against the cpu backend's on the same batch.
  double rel_diff_vs_cpu = 0.0;
};

struct CudaScenarioResult {
  std::string name;
  std::string summary;
  DType dtype = DType::kBF16;
  // Non-empty when the scenario failed (e.g. a combination the cuda backend
  // does not support yet); the others still run, and the fields below are
  // then not meaningful.
  std::string error;
  CudaMeasured main;
  std::optional<CudaMeasured> at_1x;  // decode-capacity: the run at capacity = live
  int capacity_multiplier = 1;
  // mixed: per-call queued times of its decode part and prefill part, timed
  // in turn with the whole batch.
  std::optional<PartTimes> parts;
};

struct CudaReport {
  GpuLimits gpu;
  int repeat = 0;
  std::vector<CudaScenarioResult> scenarios;
};

// Ok when `rpa bench --backend cuda` can run here; otherwise Unsupported
// with why not: the cuda backend is not built into this copy of rpa, or no
// CUDA device can be used (the runtime's reason).
Status cuda_bench_available();

// Checks cuda_bench_available(), measures the GPU's limits, then runs the
// scenarios in turn. A scenario that fails is recorded with its error and
// the others still run; the returned status fails only when nothing could.
Status run_cuda_bench(const std::vector<Scenario>& scenarios, const CudaBenchConfig& config,
                      Progress& progress, CudaReport* report);

}  // namespace rpa::bench

// `rpa bench --backend cuda` (docs/benchmarks.md, "CUDA backend: how to
// measure"): the scenario runner (runner.h) on the GPU. Each scenario's batch
// is generated on the host as for the cpu, uploaded once (cuda::DeviceCopy),
// and rpa's calls on it are timed on the GPU, next to the GPU's own limits
// measured by the same process. The CPU baselines do not run: on a GPU the
// comparison is torch (scripts/compare_torch_sdpa.py), which rebuilds each
// batch from the shape this run reports. The output is checked against the
// cpu backend's.
//
// The structs and declarations here are in every build; without the cuda
// backend (cuda_unavailable.cc) both functions return the reason.
#pragma once

#include <vector>

#include "bench/batch_shape.h"
#include "bench/gpu_rates.h"
#include "bench/runner.h"

namespace rpa::bench {

// One batch timed on the GPU. Its rpa times are per call, from samples of
// `calls` calls queued back to back on one stream and one wait for them: the
// rate at which a stream of calls runs (host planning overlaps the previous
// call's kernels).
struct CudaMeasured : BatchTimes {
  BatchShape shape;
  int calls = 1;
  // Seconds of one call on the default stream, which returns when out is
  // written: what a caller that waits for each call sees.
  Timing single;
  // max |cuda − cpu| / max |cpu| over the live rows: the last timed call's
  // output against the cpu backend's on the same batch.
  double rel_diff_vs_cpu = 0.0;
};

// A scenario that fails is recorded with its error (ScenarioHead::error); mixed
// has the per-call queued times of its parts.
using CudaScenarioResult = ScenarioResultOf<CudaMeasured>;

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
Status run_cuda_bench(const std::vector<Scenario>& scenarios, const BenchConfig& config,
                      Progress& progress, CudaReport* report);

}  // namespace rpa::bench

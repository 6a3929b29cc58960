// `rpa bench --backend cuda` with the cuda backend built (cuda_runner.h).
#include "bench/cuda_runner.h"

#include <cuda_runtime_api.h>

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "bench/cuda_handles.h"
#include "bench/cuda_limits.h"
#include "cuda/cuda.h"
#include "staging/cuda_staging.h"

namespace rpa::bench {
namespace {

RunConfig run_config(const BenchConfig& config, cudaStream_t stream) {
  RunConfig run;
  run.backend = Backend::kCuda;
  run.threads = config.threads;
  run.validate = true;  // as users call it, and as the cpu runs are timed
  run.cuda_stream = stream;
  return run;
}

// One call on the default stream, which returns when out is written.
std::function<Status()> single_run(const Call& call, const BenchConfig& config) {
  return [call, run = run_config(config, nullptr), sizes = config.plan_sizes] {
    return call_rpa(call, run, sizes);
  };
}

// `calls` calls queued on `stream` and one wait for them all.
std::function<Status()> queued_run(const Call& call, const BenchConfig& config,
                                   const CudaStream& stream, int calls) {
  return [call, calls, &stream, run = run_config(config, stream.get()), sizes = config.plan_sizes] {
    for (int i = 0; i < calls; ++i) RPA_RETURN_IF_ERROR(call_rpa(call, run, sizes));
    return stream.synchronize();
  };
}

// How many calls a queued sample of `call` holds: one call to warm up (module
// load, the first allocations), then one timed.
Status calls_for(const Call& call, const BenchConfig& config, int* calls) {
  const std::function<Status()> once = single_run(call, config);
  RPA_RETURN_IF_ERROR(once());
  const Stopwatch watch;
  RPA_RETURN_IF_ERROR(once());
  *calls = queued_calls(watch.seconds(), config.sample_s, config.max_queued_calls);
  return Status::Ok();
}

// The cuda driver of the scenario runner (runner.h): q, K/V, sinks, out and
// lse live in a device copy of each batch (the metadata stays the host's; the
// mixed parts get a copy of their own, as DeviceCopy pairs inputs with
// outputs); every series is timed queued, the scenario's own batch also one
// call at a time, and the output is checked against the cpu backend's.
class CudaDriver {
 public:
  using Measured = CudaMeasured;
  using Placed = cuda::DeviceCopy;

  CudaDriver(const BenchConfig& config, const CudaStream& stream)
      : config_(config), stream_(stream) {}

  static std::string placing(bool plural) {
    return plural ? " and uploading them" : " and uploading it";
  }
  static std::string rpa() { return "rpa on the GPU"; }

  // Sizes each series' queued samples (calls_for, in series order), then
  // times them queued in turn, with series[0] also one call at a time
  // straight after its queued samples.
  Status time(const std::vector<Series<Measured>>& series, DType) const {
    std::vector<int> calls(series.size(), 1);
    for (size_t i = 0; i < series.size(); ++i) {
      RPA_RETURN_IF_ERROR(calls_for(series[i].call, config_, &calls[i]));
      if (series[i].measured != nullptr) series[i].measured->calls = calls[i];
    }
    std::vector<Timing> queued(series.size());
    std::vector<std::function<Status()>> runs;
    std::vector<Timing*> timings;
    for (size_t i = 0; i < series.size(); ++i) {
      runs.push_back(queued_run(series[i].call, config_, stream_, calls[i]));
      timings.push_back(&queued[i]);
      if (i == 0) {
        runs.push_back(single_run(series[0].call, config_));
        timings.push_back(&series[0].measured->single);
      }
    }
    RPA_RETURN_IF_ERROR(time_interleaved(runs, config_.policy, timings));
    for (size_t i = 0; i < series.size(); ++i) *series[i].timing = per_call(queued[i], calls[i]);
    return Status::Ok();
  }

  // Compares the device output, fetched into at.host, with the cpu backend's
  // on the same host batch, and records the batch's shape for torch.
  Status finish(const Placement<Placed>& at, Measured* m, const std::string& label,
                Progress& progress) const {
    const gen::Batch& batch = at.batch;
    m->shape = batch_shape(batch);
    progress.step(label + ": checking against the cpu backend");
    const HostOutput cpu_out(batch);
    RunConfig cpu;
    cpu.backend = Backend::kCpu;
    cpu.threads = config_.threads;
    RPA_RETURN_IF_ERROR(attention(batch.inputs(), batch.spec.options, cpu_out.views, cpu));
    m->rel_diff_vs_cpu =
        relative_difference(at.host.out, cpu_out.out, batch.spec.out_dtype, live_elements(batch));
    return Status::Ok();
  }

 private:
  const BenchConfig& config_;
  const CudaStream& stream_;
};

}  // namespace

Status cuda_bench_available() {
  const Status device = cuda_device_status();
  if (device.ok()) return device;
  return Status::Unsupported("--backend cuda cannot run: " + device.message());
}

Status run_cuda_bench(const std::vector<Scenario>& scenarios, const BenchConfig& config,
                      Progress& progress, CudaReport* report) {
  RPA_RETURN_IF_ERROR(cuda_bench_available());
  report->repeat = config.policy.repeat;
  progress.step("measuring the GPU's limits");
  RPA_RETURN_IF_ERROR(measure_gpu_limits(&report->gpu));
  CudaStream stream;
  RPA_RETURN_IF_ERROR(stream.create());
  CudaDriver driver(config, stream);
  for (const Scenario& scenario : scenarios) {
    CudaScenarioResult result;
    if (Status s = measure_scenario(scenario, driver, progress, &result); !s.ok()) {
      result.error = s.message();
    }
    report->scenarios.push_back(std::move(result));
  }
  return Status::Ok();
}

}  // namespace rpa::bench

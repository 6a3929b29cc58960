// `rpa bench --backend cuda` with the cuda backend built (cuda_runner.h).
#include "bench/cuda_runner.h"

#include <cuda_runtime_api.h>

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "bench/cuda_handles.h"
#include "bench/cuda_limits.h"
#include "bench/output_diff.h"
#include "bench/parts.h"
#include "cuda/cuda.h"
#include "staging/cuda_staging.h"

namespace rpa::bench {
namespace {

// One generated batch, its device copy, and the host output that the device's
// is downloaded into for the check.
struct DeviceCase {
  explicit DeviceCase(const gen::BatchSpec& spec)
      : batch(gen::generate(spec)), out(batch.make_out()), lse(batch.make_lse()) {}

  AttentionOutputs views(std::vector<uint8_t>& o, std::vector<float>& l) {
    return {batch.out_view(o), batch.spec.lse ? batch.lse_view(l) : TensorView{}};
  }
  AttentionOutputs host_outputs() { return views(out, lse); }

  gen::Batch batch;
  std::vector<uint8_t> out;
  std::vector<float> lse;
  // q, K/V, sinks, out and lse on the device; the metadata stays the host's.
  cuda::DeviceCopy copy;
};

// One rpa call whose tensors are in device memory.
struct DeviceCall {
  AttentionInputs inputs;
  AttentionOptions options;
  AttentionOutputs outputs;
};

DeviceCall whole_call(const DeviceCase& c) {
  return {c.copy.inputs(), c.batch.spec.options, c.copy.outputs()};
}

RunConfig run_config(const CudaBenchConfig& config, cudaStream_t stream) {
  RunConfig run;
  run.backend = Backend::kCuda;
  run.threads = config.threads;
  run.validate = true;  // as users call it, and as the cpu runs are timed
  run.cuda_stream = stream;
  return run;
}

// One call on the default stream, which returns when out is written.
std::function<Status()> single_run(const DeviceCall& call, const CudaBenchConfig& config) {
  return [call, run = run_config(config, nullptr)] {
    return attention(call.inputs, call.options, call.outputs, run);
  };
}

// `calls` calls queued on `stream` and one wait for them all.
std::function<Status()> queued_run(const DeviceCall& call, const CudaBenchConfig& config,
                                   const CudaStream& stream, int calls) {
  return [call, calls, &stream, run = run_config(config, stream.get())] {
    for (int i = 0; i < calls; ++i) {
      RPA_RETURN_IF_ERROR(attention(call.inputs, call.options, call.outputs, run));
    }
    return stream.synchronize();
  };
}

// How many calls a queued sample of `call` holds: one call to warm up (module
// load, the first allocations), then one timed.
Status calls_for(const DeviceCall& call, const CudaBenchConfig& config, int* calls) {
  const std::function<Status()> once = single_run(call, config);
  RPA_RETURN_IF_ERROR(once());
  const Stopwatch watch;
  RPA_RETURN_IF_ERROR(once());
  *calls = queued_calls(watch.seconds(), config.sample_s, config.max_queued_calls);
  return Status::Ok();
}

// Downloads the device output of `c` and compares it with the cpu backend's
// on the same host batch.
Status check_against_cpu(DeviceCase& c, const CudaBenchConfig& config, double* rel_diff) {
  RPA_RETURN_IF_ERROR(c.copy.download(c.host_outputs()));
  std::vector<uint8_t> cpu_out = c.batch.make_out();
  std::vector<float> cpu_lse = c.batch.make_lse();
  RunConfig cpu;
  cpu.backend = Backend::kCpu;
  cpu.threads = config.threads;
  RPA_RETURN_IF_ERROR(
      attention(c.batch.inputs(), c.batch.spec.options, c.views(cpu_out, cpu_lse), cpu));
  *rel_diff = relative_difference(c.out, cpu_out, c.batch.spec.out_dtype, live_elements(c.batch));
  return Status::Ok();
}

// Generates and uploads one batch, and records its workload and shape.
Status prepare(DeviceCase& c, CudaMeasured* m) {
  RPA_RETURN_IF_ERROR(c.copy.upload(c.batch.inputs(), c.host_outputs()));
  m->work = measure_workload(c.batch);
  m->shape = batch_shape(c.batch);
  return Status::Ok();
}

Status measure_one(const Scenario& scenario, const CudaBenchConfig& config,
                   const CudaStream& stream, Progress& progress, CudaScenarioResult* result) {
  progress.step(scenario.name + ": generating the batch and uploading it");
  DeviceCase c(scenario.spec);
  CudaMeasured& m = result->main;
  RPA_RETURN_IF_ERROR(prepare(c, &m));
  const DeviceCall call = whole_call(c);
  RPA_RETURN_IF_ERROR(calls_for(call, config, &m.calls));
  progress.step(scenario.name + ": rpa on the GPU");
  Timing queued;
  RPA_RETURN_IF_ERROR(
      time_interleaved({queued_run(call, config, stream, m.calls), single_run(call, config)},
                       config.policy, {&queued, &m.single}));
  m.queued = per_call(queued, m.calls);
  progress.step(scenario.name + ": checking against the cpu backend");
  return check_against_cpu(c, config, &m.rel_diff_vs_cpu);
}

// decode-capacity: capacity invariance is a ratio of two rpa times, taken in
// alternation so that drift in the GPU's clocks hits both alike.
Status measure_capacity(const Scenario& scenario, const CudaBenchConfig& config,
                        const CudaStream& stream, Progress& progress, CudaScenarioResult* result) {
  progress.step(scenario.name + ": generating the batches and uploading them");
  DeviceCase big(scenario.spec), one(*scenario.at_1x);
  CudaMeasured& m = result->main;
  CudaMeasured& at_1x = result->at_1x.emplace();
  RPA_RETURN_IF_ERROR(prepare(big, &m));
  RPA_RETURN_IF_ERROR(prepare(one, &at_1x));
  const DeviceCall big_call = whole_call(big), one_call = whole_call(one);
  RPA_RETURN_IF_ERROR(calls_for(big_call, config, &m.calls));
  RPA_RETURN_IF_ERROR(calls_for(one_call, config, &at_1x.calls));
  progress.step(scenario.name + ": rpa on the GPU at 1x and 64x");
  Timing big_queued, one_queued;
  RPA_RETURN_IF_ERROR(
      time_interleaved({queued_run(big_call, config, stream, m.calls), single_run(big_call, config),
                        queued_run(one_call, config, stream, at_1x.calls)},
                       config.policy, {&big_queued, &m.single, &one_queued}));
  m.queued = per_call(big_queued, m.calls);
  at_1x.queued = per_call(one_queued, at_1x.calls);
  progress.step(scenario.name + ": checking against the cpu backend");
  RPA_RETURN_IF_ERROR(check_against_cpu(one, config, &at_1x.rel_diff_vs_cpu));
  return check_against_cpu(big, config, &m.rel_diff_vs_cpu);
}

// mixed: the whole batch and its decode and prefill parts (parts.h), timed in
// turn so that drift hits all three series of the mixed ratio alike.
Status measure_with_parts(const Scenario& scenario, const CudaBenchConfig& config,
                          const CudaStream& stream, Progress& progress,
                          CudaScenarioResult* result) {
  progress.step(scenario.name + ": generating the batch and uploading it");
  DeviceCase c(scenario.spec);
  CudaMeasured& m = result->main;
  RPA_RETURN_IF_ERROR(prepare(c, &m));
  // Both parts write their own rows of one output, which then holds every
  // live row. DeviceCopy pairs inputs with outputs, so the parts get a
  // second copy of the batch: it costs device memory only.
  std::vector<uint8_t> parts_out = c.batch.make_out();
  std::vector<float> parts_lse = c.batch.make_lse();
  const AttentionOutputs parts_host = c.views(parts_out, parts_lse);
  cuda::DeviceCopy parts_copy;
  RPA_RETURN_IF_ERROR(parts_copy.upload(c.batch.inputs(), parts_host));
  const BatchPart decode(c.batch, Part::kDecode), prefill(c.batch, Part::kPrefill);
  const auto part_call = [&](const BatchPart& part) {
    DeviceCall call{parts_copy.inputs(), c.batch.spec.options, parts_copy.outputs()};
    call.inputs.seq_lens = part.inputs().seq_lens;  // host metadata, as the contract wants
    return call;
  };
  const DeviceCall whole = whole_call(c), decode_call = part_call(decode),
                   prefill_call = part_call(prefill);
  int decode_calls = 1, prefill_calls = 1;
  RPA_RETURN_IF_ERROR(calls_for(whole, config, &m.calls));
  RPA_RETURN_IF_ERROR(calls_for(decode_call, config, &decode_calls));
  RPA_RETURN_IF_ERROR(calls_for(prefill_call, config, &prefill_calls));
  progress.step(scenario.name +
                ": rpa on the GPU: the whole batch, its decode part and its prefill part");
  Timing whole_queued, decode_queued, prefill_queued;
  RPA_RETURN_IF_ERROR(
      time_interleaved({queued_run(whole, config, stream, m.calls), single_run(whole, config),
                        queued_run(decode_call, config, stream, decode_calls),
                        queued_run(prefill_call, config, stream, prefill_calls)},
                       config.policy, {&whole_queued, &m.single, &decode_queued, &prefill_queued}));
  m.queued = per_call(whole_queued, m.calls);
  PartTimes& parts = result->parts.emplace();
  parts.decode = per_call(decode_queued, decode_calls);
  parts.prefill = per_call(prefill_queued, prefill_calls);
  progress.step(scenario.name + ": checking against the cpu backend");
  RPA_RETURN_IF_ERROR(check_against_cpu(c, config, &m.rel_diff_vs_cpu));
  RPA_RETURN_IF_ERROR(parts_copy.download(parts_host));
  parts.rel_diff_vs_whole =
      relative_difference(parts_out, c.out, c.batch.spec.out_dtype, live_elements(c.batch));
  return Status::Ok();
}

Status run_cuda_scenario(const Scenario& scenario, const CudaBenchConfig& config,
                         const CudaStream& stream, Progress& progress, CudaScenarioResult* result) {
  result->name = scenario.name;
  result->summary = scenario.summary;
  result->dtype = scenario.spec.dtype;
  result->capacity_multiplier = scenario.capacity_multiplier;
  if (scenario.time_parts) return measure_with_parts(scenario, config, stream, progress, result);
  if (scenario.at_1x) return measure_capacity(scenario, config, stream, progress, result);
  return measure_one(scenario, config, stream, progress, result);
}

}  // namespace

Status cuda_bench_available() {
  const Status device = cuda_device_status();
  if (device.ok()) return device;
  return Status::Unsupported("--backend cuda cannot run: " + device.message());
}

Status run_cuda_bench(const std::vector<Scenario>& scenarios, const CudaBenchConfig& config,
                      Progress& progress, CudaReport* report) {
  RPA_RETURN_IF_ERROR(cuda_bench_available());
  report->repeat = config.policy.repeat;
  progress.step("measuring the GPU's limits");
  RPA_RETURN_IF_ERROR(measure_gpu_limits(&report->gpu));
  CudaStream stream;
  RPA_RETURN_IF_ERROR(stream.create());
  for (const Scenario& scenario : scenarios) {
    CudaScenarioResult result;
    if (Status s = run_cuda_scenario(scenario, config, stream, progress, &result); !s.ok()) {
      result.error = s.message();
    }
    report->scenarios.push_back(std::move(result));
  }
  return Status::Ok();
}

}  // namespace rpa::bench

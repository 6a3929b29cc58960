// The scenario runner of `rpa bench`, one for every backend: the walk over a
// scenario (one batch; a batch at 64x capacity and its 1x twin; a mixed batch
// and its decode and prefill parts) is written once, over a driver that says
// how its backend places, times and checks rpa's calls (cpu_runner.cc,
// cuda_runner.cc). The ratios and rates are derived in the reports (report.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bench/output_diff.h"
#include "bench/parts.h"
#include "bench/scenarios.h"
#include "bench/timing.h"
#include "bench/workload.h"
#include "generate/batch.h"
#include "rpa/attention.h"
#include "rpa/plan.h"

namespace rpa::bench {

struct MachineLimits;

struct BenchConfig {
  Backend backend = Backend::kAuto;
  // 0 = all OpenMP threads; on cuda the host's, for planning and the check.
  int threads = 0;
  RepeatPolicy policy;
  // cpu: a capacity-masked run predicted to take longer than this, in a batch
  // whose rows are mostly masked keys, is timed on a range of its slots sized
  // to about a fifth of it, and scaled (see Measured::masked_fraction).
  double scale_limit_s = 10.0;
  // cpu: when set, the rpa runs of each scenario alternate with a probe of
  // the limit its workload runs into (probe_for), read as Measured::probe.
  const MachineLimits* machine = nullptr;
  // cuda: a queued sample (CudaMeasured's rpa) holds enough calls to last
  // about this long, at most max_queued_calls.
  double sample_s = 0.01;
  int max_queued_calls = 200;
  // The plan's sizes (--q-tile-rows, --kv-chunk, --split); 0 = the backend's
  // heuristic, as attention() plans.
  PlanConfig plan_sizes;
};

// rpa on one batch, as every backend reports it; each backend's Measured adds
// its own (cpu_runner.h, cuda_runner.h).
struct BatchTimes {
  Workload work;
  Timing rpa;  // seconds per call (on cuda, of calls queued on one stream)
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

// What a report says of a scenario besides its batches' measurements.
struct ScenarioHead {
  std::string name;
  std::string summary;
  DType dtype = DType::kBF16;
  int capacity_multiplier = 1;
  std::optional<PartTimes> parts;  // mixed: the parts of main's batch
  // Non-empty when the scenario failed on a backend that goes on with the
  // others (cuda: e.g. a combination it does not support yet); the
  // measurements are then not meaningful.
  std::string error;
};

template <class Measured>
struct ScenarioResultOf : ScenarioHead {
  Measured main;
  std::optional<Measured> at_1x;  // decode-capacity: the run at capacity = live
  const BatchTimes* one() const { return at_1x ? &*at_1x : nullptr; }
};

// A batch's output in host memory: rpa's on the cpu, read back from the device
// on cuda, for the checks.
struct HostOutput {
  explicit HostOutput(const gen::Batch& batch)
      : out(batch.make_out()),
        lse(batch.make_lse()),
        views{batch.out_view(out), batch.spec.lse ? batch.lse_view(lse) : TensorView{}} {}
  HostOutput(const HostOutput&) = delete;  // views point into out and lse
  HostOutput& operator=(const HostOutput&) = delete;

  std::vector<uint8_t> out;
  std::vector<float> lse;
  AttentionOutputs views;
};

// One rpa call on tensors where its backend runs it (host or device memory).
struct Call {
  AttentionInputs inputs;
  AttentionOptions options;
  AttentionOutputs outputs;
};

// The call as a user makes it: attention() with the heuristic sizes, else
// make_plan with `sizes` and run, both paid per call.
inline Status call_rpa(const Call& call, const RunConfig& run, const PlanConfig& sizes) {
  if (sizes.q_tile_rows == 0 && sizes.kv_chunk_tokens == 0 && sizes.split_tokens == 0) {
    return attention(call.inputs, call.options, call.outputs, run);
  }
  Plan plan;
  RPA_RETURN_IF_ERROR(make_plan(call.inputs, call.options, &plan, sizes, run.backend));
  return rpa::run(plan, call.inputs, call.outputs, run);
}

// One series of a scenario's alternation: its call, where its times go, and its
// batch's measurements (null for a part, which has only times).
template <class Measured>
struct Series {
  Call call;
  Timing* timing = nullptr;
  Measured* measured = nullptr;
};

// A batch's host output, and the backend's copy of the batch with it: Placed
// has cuda::DeviceCopy's interface (upload, inputs, outputs, download), which
// on the cpu copies nothing.
template <class Placed>
struct Placement {
  explicit Placement(const gen::Batch& batch) : batch(batch), host(batch) {}
  Status upload() { return placed.upload(batch.inputs(), host.views); }
  Status download() const { return placed.download(host.views); }
  Call call() const { return {placed.inputs(), batch.spec.options, placed.outputs()}; }

  const gen::Batch& batch;
  HostOutput host;
  Placed placed;
};

template <class Placed>
struct PlacedBatch {
  explicit PlacedBatch(const gen::BatchSpec& spec) : batch(gen::generate(spec)), at(batch) {}
  gen::Batch batch;
  Placement<Placed> at;
};

// The decode and prefill parts of a batch write their own rows of one output
// of their own, which then holds every live row.
template <class Placed>
struct PlacedParts : Placement<Placed> {
  explicit PlacedParts(const gen::Batch& batch)
      : Placement<Placed>(batch), decode(batch, Part::kDecode), prefill(batch, Part::kPrefill) {}
  BatchPart decode, prefill;
};

// Runs one scenario on a Driver's backend. A Driver has Measured (its
// BatchTimes), Placed (above), words for the progress line (placing(plural),
// rpa()), time(series, dtype), which times the series in alternation,
// series[0] the scenario's batch, and finish(placement, m, label, progress),
// which checks rpa's output, fetched into the host, against a second
// computation (the cpu times its baselines there too). All of a scenario's
// rpa series are timed in one alternation, so that drift in the machine's load
// (or the GPU's clocks) hits every term of the capacity and mixed ratios alike.
template <class Driver>
Status measure_scenario(const Scenario& scenario, Driver& driver, Progress& progress,
                        ScenarioResultOf<typename Driver::Measured>* result) {
  using Measured = typename Driver::Measured;
  using Placed = typename Driver::Placed;
  const std::string& name = scenario.name;
  result->name = name;
  result->summary = scenario.summary;
  result->dtype = scenario.spec.dtype;
  result->capacity_multiplier = scenario.capacity_multiplier;
  const bool pair = scenario.at_1x.has_value();
  progress.step(name + (pair ? ": generating the batches" : ": generating the batch") +
                driver.placing(pair));
  PlacedBatch<Placed> main(scenario.spec);
  std::optional<PlacedBatch<Placed>> one;
  if (pair) one.emplace(*scenario.at_1x);
  std::optional<PlacedParts<Placed>> parts;
  if (scenario.time_parts) parts.emplace(main.batch);
  RPA_RETURN_IF_ERROR(main.at.upload());
  if (one) RPA_RETURN_IF_ERROR(one->at.upload());
  if (parts) RPA_RETURN_IF_ERROR(parts->upload());

  result->main.work = measure_workload(main.batch);
  std::vector<Series<Measured>> series = {{main.at.call(), &result->main.rpa, &result->main}};
  if (one) {
    Measured& m = result->at_1x.emplace();
    m.work = measure_workload(one->batch);
    series.push_back({one->at.call(), &m.rpa, &m});
  }
  if (parts) {
    PartTimes& times = result->parts.emplace();
    for (auto [part, timing] :
         {std::pair{&parts->decode, &times.decode}, std::pair{&parts->prefill, &times.prefill}}) {
      Call call = parts->call();
      call.inputs.seq_lens = part->inputs().seq_lens;  // host metadata, as the contract wants
      series.push_back({call, timing, nullptr});
    }
  }
  progress.step(name + ": " + driver.rpa() +
                (pair    ? " at 1x and 64x"
                 : parts ? " on the whole batch, its decode part and its prefill part"
                         : ""));
  RPA_RETURN_IF_ERROR(driver.time(series, scenario.spec.dtype));

  const auto finish = [&](const Placement<Placed>& at, Measured* m, const std::string& label) {
    RPA_RETURN_IF_ERROR(at.download());
    return driver.finish(at, m, label, progress);
  };
  if (one) RPA_RETURN_IF_ERROR(finish(one->at, &*result->at_1x, name + " at 1x"));
  RPA_RETURN_IF_ERROR(finish(main.at, &result->main, name));
  if (!parts) return Status::Ok();
  RPA_RETURN_IF_ERROR(parts->download());
  result->parts->rel_diff_vs_whole = relative_difference(
      parts->host.out, main.at.host.out, main.batch.spec.out_dtype, live_elements(main.batch));
  return Status::Ok();
}

}  // namespace rpa::bench

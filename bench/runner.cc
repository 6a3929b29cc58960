#include "bench/runner.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "baselines/baselines.h"
#include "bench/output_diff.h"
#include "bench/parts.h"

namespace rpa::bench {
namespace {

// One generated batch with an output (and lse, when the spec asks for it) for
// rpa and one for the baselines.
struct Case {
  explicit Case(const gen::BatchSpec& spec)
      : batch(gen::generate(spec)),
        out(batch.make_out()),
        baseline_out(batch.make_out()),
        lse(batch.make_lse()),
        baseline_lse(batch.make_lse()) {}
  AttentionOutputs outputs() { return views(out, lse); }
  AttentionOutputs baseline_outputs() { return views(baseline_out, baseline_lse); }
  AttentionOutputs views(std::vector<uint8_t>& o, std::vector<float>& l) {
    return {batch.out_view(o), batch.spec.lse ? batch.lse_view(l) : TensorView{}};
  }

  gen::Batch batch;
  std::vector<uint8_t> out, baseline_out;
  std::vector<float> lse, baseline_lse;
};

std::function<Status()> rpa_call(Case& c, const BenchConfig& config) {
  return [&c, run = RunConfig{config.backend, config.threads, true}] {
    return attention(c.batch.inputs(), c.batch.spec.options, c.outputs(), run);
  };
}

// rpa on one part of a case's batch, writing that part's rows of `outputs`.
std::function<Status()> part_call(const Case& c, const BatchPart& part,
                                  const AttentionOutputs& outputs, const BenchConfig& config) {
  return [&c, &part, outputs, run = RunConfig{config.backend, config.threads, true}] {
    return attention(part.inputs(), c.batch.spec.options, outputs, run);
  };
}

// Times `runs` in turn (time_interleaved), followed by the probe of the limit
// measured->work runs into when config.machine is set: runs[0] is timed into
// measured->rpa, the others into `others`.
Status time_with_probe(std::vector<std::function<Status()>> runs, std::vector<Timing*> others,
                       const BenchConfig& config, DType dtype, Measured* measured) {
  std::vector<Timing*> timings = {&measured->rpa};
  timings.insert(timings.end(), others.begin(), others.end());
  if (config.machine != nullptr) {
    LimitProbe probe = probe_for(measured->work, dtype, *config.machine);
    measured->probe_limit = probe.limit;
    measured->probe_work = probe.work;
    runs.push_back([run = std::move(probe.run)] {
      run();
      return Status::Ok();
    });
    timings.push_back(&measured->probe);
  }
  return time_interleaved(runs, config.policy, timings);
}

// The slots of the capacity-masked loop to time when the whole loop would take
// too long: the contiguous range holding a live slot with the most rows
// predicted to fit in `target_s` (or, when no live slot fits, the live slot
// with the fewest rows), or every slot when that range would hold most of the
// rows anyway.
baselines::SlotRange masked_range(const std::vector<int64_t>& rows, const std::vector<int>& live,
                                  double per_row_s, double target_s) {
  const int64_t n = static_cast<int64_t>(rows.size());
  std::vector<int64_t> lives_before(n + 1, 0);  // live slots in [0, s)
  for (int64_t s = 0; s < n; ++s) lives_before[s + 1] = lives_before[s] + live[s];
  baselines::SlotRange best{0, 0};
  int64_t best_rows = 0, sum = 0, total = 0;
  for (int64_t begin = 0, end = 0; end < n; ++end) {  // two pointers over [begin, end]
    sum += rows[end];
    total += rows[end];
    while (begin <= end && per_row_s * static_cast<double>(sum) > target_s) sum -= rows[begin++];
    if (begin <= end && lives_before[end + 1] > lives_before[begin] && sum > best_rows) {
      best = {begin, end + 1};
      best_rows = sum;
    }
  }
  if (best_rows == 0) {
    for (int64_t s = 0; s < n; ++s) {
      if (live[s] && (best_rows == 0 || rows[s] < best_rows)) {
        best = {s, s + 1};
        best_rows = rows[s];
      }
    }
  }
  return 2 * best_rows < total ? best : baselines::SlotRange{};
}

// Only a loop whose keys are at most this share visible is scaled: there
// nearly every key of every row, live or dead, is masked (dead page ids read
// the cached page 0), so all rows cost alike. Where live rows see most of
// their keys, a live decode row streaming its pages from DRAM costs about 4x a
// dead one (measured at decode-long's capacity) and the loop runs whole.
constexpr double kMaxScaledVisibleShare = 0.1;

// Times the capacity-masked loop, whole unless one probed slot (the one with
// the fewest rows) predicts it over config.scale_limit_s and at most
// kMaxScaledVisibleShare of its keys are visible; then on masked_range() for a
// fifth of that limit. Reports which fraction of its rows ran.
Status time_capacity_masked(Case& c, const Workload& work, const BenchConfig& config,
                            Timing* timing, double* fraction) {
  const AttentionInputs inputs = c.batch.inputs();
  const AttentionOptions& options = c.batch.spec.options;
  const AttentionOutputs outputs = c.baseline_outputs();
  const baselines::BaselineConfig baseline{config.threads};
  const int64_t capacity = c.batch.spec.batch_capacity;
  std::vector<int64_t> rows(capacity);
  std::vector<int> live(capacity);
  int64_t probe = 0;
  for (int64_t s = 0; s < capacity; ++s) {
    rows[s] = baselines::capacity_masked_rows(inputs, {s, s + 1});
    live[s] =
        c.batch.seq_lens[s] > 0 && c.batch.query_start_len[s + 1] > c.batch.query_start_len[s];
    if (rows[s] < rows[probe]) probe = s;
  }
  const Stopwatch watch;
  RPA_RETURN_IF_ERROR(
      baselines::capacity_masked(inputs, options, outputs, baseline, {probe, probe + 1}));
  const double per_row = watch.seconds() / static_cast<double>(rows[probe]);
  const int64_t total = baselines::capacity_masked_rows(inputs);
  const double loop_keys =
      static_cast<double>(total) * c.batch.max_pages_per_seq * c.batch.spec.page_size;
  baselines::SlotRange timed;
  if (per_row * static_cast<double>(total) > config.scale_limit_s &&
      static_cast<double>(work.visible_keys) <= kMaxScaledVisibleShare * loop_keys) {
    timed = masked_range(rows, live, per_row, config.scale_limit_s / 5);
  }
  *fraction = static_cast<double>(baselines::capacity_masked_rows(inputs, timed)) /
              static_cast<double>(total);
  return time_series(
      [&] { return baselines::capacity_masked(inputs, options, outputs, baseline, timed); },
      config.policy, timing);
}

// Times both baselines on a case whose rpa output is already written, and
// checks rpa's output against gather-dense's.
Status time_baselines(Case& c, const BenchConfig& config, Progress& progress,
                      const std::string& label, Measured* m) {
  const gen::BatchSpec& spec = c.batch.spec;
  progress.step(label + ": gather-dense baseline");
  const baselines::BaselineConfig baseline{config.threads};
  RPA_RETURN_IF_ERROR(time_series(
      [&] {
        return baselines::gather_dense(c.batch.inputs(), spec.options, c.baseline_outputs(),
                                       baseline);
      },
      config.policy, &m->gather_dense));
  m->rel_diff_vs_gather_dense =
      relative_difference(c.out, c.baseline_out, spec.out_dtype, live_elements(c.batch));
  progress.step(label + ": capacity-masked baseline");
  return time_capacity_masked(c, m->work, config, &m->capacity_masked, &m->masked_fraction);
}

// The whole batch and its decode and prefill parts, timed in turn so that
// drift in the machine's load hits all three series of the mixed ratio alike;
// then the baselines on the whole batch.
Status measure_with_parts(const Scenario& scenario, const BenchConfig& config, Progress& progress,
                          ScenarioResult* result) {
  progress.step(scenario.name + ": generating the batch");
  Case c(scenario.spec);
  result->main.work = measure_workload(c.batch);
  const BatchPart decode(c.batch, Part::kDecode), prefill(c.batch, Part::kPrefill);
  // Both parts write their own rows of one output, which then holds every live row.
  std::vector<uint8_t> parts_out = c.batch.make_out();
  std::vector<float> parts_lse = c.batch.make_lse();
  const AttentionOutputs parts_outputs = c.views(parts_out, parts_lse);
  PartTimes& parts = result->parts.emplace();
  progress.step(scenario.name + ": rpa on the whole batch, its decode part and its prefill part");
  RPA_RETURN_IF_ERROR(
      time_with_probe({rpa_call(c, config), part_call(c, decode, parts_outputs, config),
                       part_call(c, prefill, parts_outputs, config)},
                      {&parts.decode, &parts.prefill}, config, c.batch.spec.dtype, &result->main));
  parts.rel_diff_vs_whole =
      relative_difference(parts_out, c.out, c.batch.spec.out_dtype, live_elements(c.batch));
  return time_baselines(c, config, progress, scenario.name, &result->main);
}

}  // namespace

Status measure_batch(const gen::BatchSpec& spec, const BenchConfig& config, Progress& progress,
                     const std::string& label, Measured* measured) {
  progress.step(label + ": generating the batch");
  Case c(spec);
  measured->work = measure_workload(c.batch);
  progress.step(label + (config.machine != nullptr ? ": rpa and its limit" : ": rpa"));
  RPA_RETURN_IF_ERROR(time_with_probe({rpa_call(c, config)}, {}, config, spec.dtype, measured));
  return time_baselines(c, config, progress, label, measured);
}

Status run_scenario(const Scenario& scenario, const BenchConfig& config, Progress& progress,
                    ScenarioResult* result) {
  result->name = scenario.name;
  result->summary = scenario.summary;
  result->dtype = scenario.spec.dtype;
  result->capacity_multiplier = scenario.capacity_multiplier;
  if (scenario.time_parts) return measure_with_parts(scenario, config, progress, result);
  if (!scenario.at_1x) {
    return measure_batch(scenario.spec, config, progress, scenario.name, &result->main);
  }
  // Capacity invariance is a ratio of two rpa times: they are taken in
  // alternation, so that drift in the machine's load hits both alike.
  progress.step(scenario.name + ": generating the batches");
  Case one(*scenario.at_1x), big(scenario.spec);
  Measured& at_1x = result->at_1x.emplace();
  at_1x.work = measure_workload(one.batch);
  result->main.work = measure_workload(big.batch);
  progress.step(scenario.name + ": rpa at 1x and 64x");
  RPA_RETURN_IF_ERROR(time_with_probe({rpa_call(big, config), rpa_call(one, config)}, {&at_1x.rpa},
                                      config, scenario.spec.dtype, &result->main));
  RPA_RETURN_IF_ERROR(time_baselines(one, config, progress, scenario.name + " at 1x", &at_1x));
  return time_baselines(big, config, progress, scenario.name, &result->main);
}

Status run_sweep(const BenchConfig& config, Progress& progress, std::vector<SweepResult>* results) {
  BenchConfig sweep = config;
  sweep.policy.repeat = std::min(config.policy.repeat, 3);
  sweep.policy.budget_s = 1.0;
  sweep.machine = nullptr;  // the plot draws times, not fractions
  for (const SweepPoint& point : plot_sweep()) {
    SweepResult r{point.sweep, point.x, {}};
    RPA_RETURN_IF_ERROR(measure_batch(point.spec, sweep, progress,
                                      "sweep " + point.sweep + " " + std::to_string(point.x),
                                      &r.measured));
    results->push_back(std::move(r));
  }
  return Status::Ok();
}

}  // namespace rpa::bench

#include "bench/cpu_runner.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "baselines/baselines.h"
#include "bench/machine.h"

namespace rpa::bench {
namespace {

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
Status time_capacity_masked(const gen::Batch& batch, const AttentionOutputs& outputs,
                            const Workload& work, const BenchConfig& config, Timing* timing,
                            double* fraction) {
  const AttentionInputs inputs = batch.inputs();
  const AttentionOptions& options = batch.spec.options;
  const baselines::BaselineConfig baseline{config.threads};
  const int64_t capacity = batch.spec.batch_capacity;
  std::vector<int64_t> rows(capacity);
  std::vector<int> live(capacity);
  int64_t probe = 0;
  for (int64_t s = 0; s < capacity; ++s) {
    rows[s] = baselines::capacity_masked_rows(inputs, {s, s + 1});
    live[s] = batch.seq_lens[s] > 0 && batch.query_start_len[s + 1] > batch.query_start_len[s];
    if (rows[s] < rows[probe]) probe = s;
  }
  const Stopwatch watch;
  RPA_RETURN_IF_ERROR(
      baselines::capacity_masked(inputs, options, outputs, baseline, {probe, probe + 1}));
  const double per_row = watch.seconds() / static_cast<double>(rows[probe]);
  const int64_t total = baselines::capacity_masked_rows(inputs);
  const double loop_keys =
      static_cast<double>(total) * batch.max_pages_per_seq * batch.spec.page_size;
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

// The host backends' driver of the scenario runner (runner.h): rpa alternates
// with the probe of its limit, then is checked against gather-dense while the
// baselines are timed.
class CpuDriver {
 public:
  using Measured = bench::Measured;
  struct Placed {  // rpa runs on the generated batch and writes the host output
    Status upload(const AttentionInputs& in, const AttentionOutputs& out) {
      inputs_ = in;
      outputs_ = out;
      return Status::Ok();
    }
    const AttentionInputs& inputs() const { return inputs_; }
    const AttentionOutputs& outputs() const { return outputs_; }
    Status download(const AttentionOutputs&) const { return Status::Ok(); }
    AttentionInputs inputs_;
    AttentionOutputs outputs_;
  };

  explicit CpuDriver(const BenchConfig& config) : config_(config) {}

  static std::string placing(bool) { return ""; }
  std::string rpa() const { return config_.machine != nullptr ? "rpa and its limit" : "rpa"; }

  // The series in turn (time_interleaved), followed by the probe of the limit
  // series[0]'s workload runs into when config.machine is set.
  Status time(const std::vector<Series<Measured>>& series, DType dtype) const {
    std::vector<std::function<Status()>> runs;
    std::vector<Timing*> timings;
    for (const Series<Measured>& s : series) {
      runs.push_back([call = s.call, run = RunConfig{config_.backend, config_.threads, true},
                      sizes = config_.plan_sizes] { return call_rpa(call, run, sizes); });
      timings.push_back(s.timing);
    }
    if (config_.machine != nullptr) {
      Measured& m = *series[0].measured;
      LimitProbe probe = probe_for(m.work, dtype, *config_.machine);
      m.probe_limit = probe.limit;
      m.probe_work = probe.work;
      runs.push_back([run = std::move(probe.run)] {
        run();
        return Status::Ok();
      });
      timings.push_back(&m.probe);
    }
    return time_interleaved(runs, config_.policy, timings);
  }

  // Times both baselines on a batch whose rpa output is in at.host, and
  // checks that output against gather-dense's.
  Status finish(const Placement<Placed>& at, Measured* m, const std::string& label,
                Progress& progress) const {
    const gen::Batch& batch = at.batch;
    progress.step(label + ": gather-dense baseline");
    const HostOutput baseline_out(batch);
    const baselines::BaselineConfig baseline{config_.threads};
    RPA_RETURN_IF_ERROR(time_series(
        [&] {
          return baselines::gather_dense(batch.inputs(), batch.spec.options, baseline_out.views,
                                         baseline);
        },
        config_.policy, &m->gather_dense));
    m->rel_diff_vs_gather_dense = relative_difference(at.host.out, baseline_out.out,
                                                      batch.spec.out_dtype, live_elements(batch));
    progress.step(label + ": capacity-masked baseline");
    return time_capacity_masked(batch, baseline_out.views, m->work, config_, &m->capacity_masked,
                                &m->masked_fraction);
  }

 private:
  const BenchConfig& config_;
};

}  // namespace

Status run_scenario(const Scenario& scenario, const BenchConfig& config, Progress& progress,
                    ScenarioResult* result) {
  CpuDriver driver(config);
  return measure_scenario(scenario, driver, progress, result);
}

Status run_sweep(const BenchConfig& config, Progress& progress, std::vector<SweepResult>* results) {
  BenchConfig sweep = config;
  sweep.policy.repeat = std::min(config.policy.repeat, 3);
  sweep.policy.budget_s = 1.0;
  sweep.machine = nullptr;  // the plot draws times, not fractions
  for (const SweepPoint& point : plot_sweep()) {
    Scenario scenario;
    scenario.name = "sweep " + point.sweep + " " + std::to_string(point.x);
    scenario.spec = point.spec;
    ScenarioResult r;
    RPA_RETURN_IF_ERROR(run_scenario(scenario, sweep, progress, &r));
    results->push_back({point.sweep, point.x, std::move(r.main)});
  }
  return Status::Ok();
}

}  // namespace rpa::bench

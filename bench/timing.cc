#include "bench/timing.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace rpa::bench {

double Timing::median() const {
  std::vector<double> sorted = seconds;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  return n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}

double Timing::min() const { return *std::min_element(seconds.begin(), seconds.end()); }

double Timing::max() const { return *std::max_element(seconds.begin(), seconds.end()); }

namespace {

// One run of a series: the warm-up (kept when slow) or a timed run.
Status run_once(const std::function<Status()>& run, const RepeatPolicy& policy, bool warm_up,
                Timing* timing) {
  const Stopwatch watch;
  RPA_RETURN_IF_ERROR(run());
  const double seconds = watch.seconds();
  if (!warm_up || seconds > policy.slow_run_s) timing->seconds.push_back(seconds);
  return Status::Ok();
}

// Whether a series that has run for `elapsed` seconds gets another run: until
// `repeat` samples, and while one more run (about as long as the median so
// far) fits in `budget`, but never stopping with no sample at all.
bool wants_more(const Timing& timing, const RepeatPolicy& policy, double elapsed, double budget) {
  if (timing.samples() >= std::max(policy.repeat, 1)) return false;
  return timing.empty() || elapsed + timing.median() <= budget;
}

}  // namespace

Status time_series(const std::function<Status()>& run, const RepeatPolicy& policy, Timing* timing) {
  timing->seconds.clear();
  const Stopwatch series;
  RPA_RETURN_IF_ERROR(run_once(run, policy, true, timing));
  while (wants_more(*timing, policy, series.seconds(), policy.budget_s)) {
    RPA_RETURN_IF_ERROR(run_once(run, policy, false, timing));
  }
  return Status::Ok();
}

Status time_interleaved(const std::vector<std::function<Status()>>& runs,
                        const RepeatPolicy& policy, const std::vector<Timing*>& timings) {
  const size_t n = runs.size();
  for (size_t i = 0; i < n; ++i) timings[i]->seconds.clear();
  const Stopwatch series;
  for (size_t i = 0; i < n; ++i) RPA_RETURN_IF_ERROR(run_once(runs[i], policy, true, timings[i]));
  // The series share one clock, so together they get one budget per series.
  const double budget = static_cast<double>(n) * policy.budget_s;
  for (;;) {
    // Every series that wants a run at the start of a round gets one in it,
    // so that a round is not cut short by the time its own runs take.
    std::vector<bool> more(n);
    for (size_t i = 0; i < n; ++i)
      more[i] = wants_more(*timings[i], policy, series.seconds(), budget);
    if (std::find(more.begin(), more.end(), true) == more.end()) return Status::Ok();
    for (size_t i = 0; i < n; ++i) {
      if (more[i]) RPA_RETURN_IF_ERROR(run_once(runs[i], policy, false, timings[i]));
    }
  }
}

Progress::~Progress() {
  if (printed_ && isatty(STDERR_FILENO)) std::fputs("\r\033[K", stderr);
}

void Progress::step(std::string_view what) {
  if (!enabled_ || clock_.seconds() < 1.0) return;
  const bool tty = isatty(STDERR_FILENO);
  std::fprintf(stderr, "%s[%5.1f s] rpa bench: %.*s%s", tty ? "\r\033[K" : "", clock_.seconds(),
               static_cast<int>(what.size()), what.data(), tty ? "" : "\n");
  std::fflush(stderr);
  printed_ = true;
}

}  // namespace rpa::bench

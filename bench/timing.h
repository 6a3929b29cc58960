// Timing: a stopwatch, series of timed runs with their median and range, the
// policy that bounds how long a series may take, and the progress line.
#pragma once

#include <chrono>
#include <functional>
#include <string_view>
#include <vector>

#include "rpa/status.h"

namespace rpa::bench {

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// The samples of one timed series, in seconds.
struct Timing {
  std::vector<double> seconds;

  bool empty() const { return seconds.empty(); }
  int samples() const { return static_cast<int>(seconds.size()); }
  double median() const;
  double min() const;
  double max() const;
};

// How many runs a series gets: a warm-up run, then up to `repeat` timed runs
// while the series has used less than `budget_s`, at least one. A warm-up
// that takes longer than `slow_run_s` is kept as a sample: the caches and
// allocations it warms are small next to a run that long.
struct RepeatPolicy {
  int repeat = 5;
  double budget_s = 3.0;
  double slow_run_s = 0.5;
};

// Times `run` under `policy`; stops at and returns the first failed run.
Status time_series(const std::function<Status()>& run, const RepeatPolicy& policy, Timing* timing);

// Times several series in turn (a warm-up each, then one run of each, round
// after round), each under `policy` as if alone, for ratios between them that
// drift in the machine's load cannot skew. timings[i] receives runs[i].
Status time_interleaved(const std::vector<std::function<Status()>>& runs,
                        const RepeatPolicy& policy, const std::vector<Timing*>& timings);

// The progress line on stderr: silent for the first second of a run, then one
// line per step (rewritten in place when stderr is a terminal).
class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled) {}
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void step(std::string_view what);

 private:
  bool enabled_;
  bool printed_ = false;
  Stopwatch clock_;
};

}  // namespace rpa::bench

// time_interleaved (bench/timing.h), which times the series behind the bench's
// same-run ratios: every series gets its warm-up and then one run per round up
// to `repeat`, and the first failed run stops everything.
#include "bench/timing.h"

#include <gtest/gtest.h>

#include <functional>
#include <vector>

namespace rpa::bench {
namespace {

TEST(BenchTiming, InterleavedSeriesRunInRoundsUpToRepeat) {
  std::vector<int> order;
  auto run = [&order](int i) -> std::function<Status()> {
    return [&order, i] {
      order.push_back(i);
      return Status::Ok();
    };
  };
  const RepeatPolicy policy{3, 60.0, 0.5};  // fast runs: warm-ups are not kept
  Timing a, b, c;
  ASSERT_TRUE(time_interleaved({run(0), run(1), run(2)}, policy, {&a, &b, &c}).ok());
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2}));
  EXPECT_EQ(a.samples(), 3);
  EXPECT_EQ(b.samples(), 3);
  EXPECT_EQ(c.samples(), 3);
}

TEST(BenchTiming, InterleavedSeriesStopAtTheFirstFailure) {
  int runs = 0;
  const std::function<Status()> ok = [&runs] {
    ++runs;
    return Status::Ok();
  };
  const std::function<Status()> fails = [&runs] {
    ++runs;
    return runs < 4 ? Status::Ok() : Status::Internal("broken");
  };
  Timing a, b;
  const Status s = time_interleaved({ok, fails}, RepeatPolicy{5, 60.0, 0.5}, {&a, &b});
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "broken");
  EXPECT_EQ(runs, 4);  // warm-ups, a's first timed run, then b's fails
}

}  // namespace
}  // namespace rpa::bench

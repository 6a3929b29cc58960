// The scenario runner (bench/runner.h) on the cpu, on batches small enough to
// run in milliseconds: every shape of scenario fills the results its report
// reads, with rpa checked against gather-dense and the mixed parts bitwise
// equal to the whole. What is timed is not checked here, only that it ran.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bench/cpu_runner.h"
#include "bench/report.h"
#include "bench/scenarios.h"

namespace rpa::bench {
namespace {

BenchConfig quick() {
  BenchConfig config;
  config.backend = Backend::kCpu;
  config.threads = 1;
  config.policy.repeat = 1;
  config.policy.budget_s = 0.01;
  return config;
}

ScenarioResult run(const Scenario& scenario) {
  Progress progress(false);
  ScenarioResult result;
  const Status s = run_scenario(scenario, quick(), progress, &result);
  EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(result.name, scenario.name);
  EXPECT_GE(result.main.rpa.samples(), 1);
  EXPECT_GE(result.main.gather_dense.samples(), 1);
  EXPECT_GE(result.main.capacity_masked.samples(), 1);
  EXPECT_LT(result.main.rel_diff_vs_gather_dense, 1e-2);
  EXPECT_GT(result.main.work.flops, 0.0);
  return result;
}

TEST(BenchRunner, ACapacityPairTimesBothBatchesAndChecksBoth) {
  const ScenarioResult r =
      run({"pair", "a test", decode_spec(2, 64, 8, 16), decode_spec(2, 64, 2, 4), 4});
  ASSERT_TRUE(r.at_1x.has_value());
  EXPECT_EQ(r.capacity_multiplier, 4);
  EXPECT_EQ(r.at_1x->work.flops, r.main.work.flops);  // the same live work
  EXPECT_GE(r.at_1x->rpa.samples(), 1);
  EXPECT_LT(r.at_1x->rel_diff_vs_gather_dense, 1e-2);
  EXPECT_FALSE(r.parts.has_value());
}

TEST(BenchRunner, MixedPartsComeOutAsInTheWholeBatch) {
  gen::BatchSpec spec = decode_spec(2, 40, 6);
  spec.slots = {{1, 40}, {9, 30}, {17, 0}, {1, 20}};
  spec.slot_positions = {0, 1, 3, 5};
  Scenario scenario{"mix", "a test", spec, std::nullopt};
  scenario.time_parts = true;
  const ScenarioResult r = run(scenario);
  ASSERT_TRUE(r.parts.has_value());
  EXPECT_GE(r.parts->decode.samples(), 1);
  EXPECT_GE(r.parts->prefill.samples(), 1);
  EXPECT_EQ(r.parts->rel_diff_vs_whole, 0.0);

  // Its report has the mixed keys, and the single batch's has them null.
  Report report;
  report.scenarios = {r, run({"one", "a test", decode_spec(2, 64, 4), std::nullopt})};
  const nlohmann::json j = to_json(report);
  EXPECT_TRUE(j["scenarios"][0]["mixed_ratio"].is_number());
  EXPECT_TRUE(j["scenarios"][1]["mixed_ratio"].is_null());
  EXPECT_TRUE(j["scenarios"][1]["capacity_invariance"].is_null());
  EXPECT_EQ(j["scenarios"][0].size(), j["scenarios"][1].size());
}

// --q-tile-rows, --kv-chunk and --split reach the planner of every timed
// call: sizes it refuses fail the scenario with its message, and sizes it
// takes run and agree with gather-dense.
TEST(BenchRunner, PlanSizesReachThePlannerOfTheTimedCalls) {
  const Scenario scenario{"sized", "a test", decode_spec(2, 300, 4), std::nullopt};
  Progress progress(false);
  BenchConfig config = quick();
  config.plan_sizes = PlanConfig{0, 64, 100};
  ScenarioResult refused;
  const Status s = run_scenario(scenario, config, progress, &refused);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("split_tokens = 100 must be a multiple of kv_chunk_tokens 64"),
            std::string::npos)
      << s.message();

  config.plan_sizes = PlanConfig{0, 64, 128};
  ScenarioResult sized;
  const Status ok = run_scenario(scenario, config, progress, &sized);
  ASSERT_TRUE(ok.ok()) << ok.message();
  EXPECT_GE(sized.main.rpa.samples(), 1);
  EXPECT_LT(sized.main.rel_diff_vs_gather_dense, 1e-2);
}

}  // namespace
}  // namespace rpa::bench

// `rpa bench --backend cuda` without a GPU (bench/cuda_runner.h): it must say
// why it cannot run rather than crash; and the parts of it that need no
// device: the GPU rate arithmetic (gpu_rates.h), the batch shapes that
// scripts/compare_torch_sdpa.py rebuilds in torch (batch_shape.h), the JSON
// report (report.h) and the output check (output_diff.h).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/batch_shape.h"
#include "bench/cuda_runner.h"
#include "bench/gpu_rates.h"
#include "bench/output_diff.h"
#include "bench/report.h"
#include "bench/scenarios.h"

namespace rpa::bench {
namespace {

constexpr const char* kCannotRun = "--backend cuda cannot run";

TEST(BenchCuda, WithoutAUsableDeviceItSaysWhyAndRunsNothing) {
  const Status available = cuda_bench_available();
  if (available.ok()) GTEST_SKIP() << "a CUDA device is present: nothing to check here";
  EXPECT_EQ(available.code(), StatusCode::kUnsupported);
  EXPECT_EQ(available.message().rfind(kCannotRun, 0), 0u) << available.message();

  // The runner itself checks first, before generating or timing anything.
  Progress progress(false);
  CudaReport report;
  const Status run =
      run_cuda_bench({*find_scenario("decode-long")}, BenchConfig{}, progress, &report);
  EXPECT_EQ(run.code(), StatusCode::kUnsupported);
  EXPECT_EQ(run.message(), available.message());
  EXPECT_TRUE(report.scenarios.empty());
}

GpuLimits h200() {
  GpuLimits g;
  g.device = "test GPU";
  g.sm_count = 132;
  g.copy_gbps = 4000.0;
  g.copy_bytes = 1 << 30;
  g.gemm_tflops = 800.0;  // balance: 200 flops per byte
  g.gemm_size = 8192;
  return g;
}

TEST(BenchCuda, LimitRatesCountACopyBothWaysAndAProductAs2nCubed) {
  EXPECT_DOUBLE_EQ(copy_gbps(1e9, 0.5), 4.0);      // 1 GB read and 1 GB written in 0.5 s
  EXPECT_DOUBLE_EQ(gemm_tflops(1000, 1e-3), 2.0);  // 2e9 flops in 1 ms
  EXPECT_DOUBLE_EQ(h200().balance(), 200.0);
}

TEST(BenchCuda, DecodeIsReadAgainstBandwidthAndPrefillAgainstTheGemmRate) {
  Workload decode;
  decode.useful_bytes = 4e9;
  decode.flops = 16e9;  // 4 flops per byte, GQA 4 in bf16
  const GpuRates d = gpu_rates(decode, 2e-3, h200());
  EXPECT_DOUBLE_EQ(d.gbps, 2000.0);
  EXPECT_DOUBLE_EQ(d.tflops, 8.0);
  EXPECT_DOUBLE_EQ(d.fraction_of_bandwidth, 0.5);
  EXPECT_DOUBLE_EQ(d.fraction_of_peak, 0.01);
  EXPECT_EQ(d.bound, "hbm");
  EXPECT_DOUBLE_EQ(d.fraction_of_bound, 0.5);

  Workload prefill;
  prefill.useful_bytes = 40e6;
  prefill.flops = 34e9;  // 850 flops per byte
  const GpuRates p = gpu_rates(prefill, 0.1e-3, h200());
  EXPECT_EQ(p.bound, "gemm");
  EXPECT_DOUBLE_EQ(p.tflops, 340.0);
  EXPECT_DOUBLE_EQ(p.fraction_of_bound, p.fraction_of_peak);
  EXPECT_DOUBLE_EQ(p.fraction_of_peak, 340.0 / 800.0);
}

TEST(BenchCuda, AQueuedSampleHoldsEnoughCallsWithinItsBounds) {
  EXPECT_EQ(queued_calls(50e-6, 10e-3, 200), 200);  // 50 us decode: 200 calls
  EXPECT_EQ(queued_calls(1e-3, 10e-3, 200), 10);
  EXPECT_EQ(queued_calls(3e-3, 10e-3, 200), 4);   // rounded up
  EXPECT_EQ(queued_calls(0.5, 10e-3, 200), 1);    // a slow call: alone
  EXPECT_EQ(queued_calls(0.0, 10e-3, 200), 200);  // below the clock's resolution

  Timing samples;
  samples.seconds = {0.010, 0.012, 0.008};
  const Timing per = per_call(samples, 4);
  ASSERT_EQ(per.samples(), 3);
  EXPECT_DOUBLE_EQ(per.median(), 0.0025);
  EXPECT_DOUBLE_EQ(per.min(), 0.002);
}

// Live slots in slot order, an inactive slot (no rows) and empty slots left out.
gen::Batch small_batch() {
  gen::BatchSpec spec;
  spec.seed = 7;
  spec.num_kv_heads = 2;
  spec.heads_per_kv = 4;
  spec.head_dim = 64;
  spec.page_size = 16;
  spec.batch_capacity = 6;
  spec.slots = {{1, 40}, {0, 20}, {9, 30}, {17, 0}};
  spec.slot_positions = {4, 0, 1, 3};
  spec.options.sliding_window = 32;
  return gen::generate(spec);
}

TEST(BenchCuda, BatchShapeListsTheLiveSlotsWithTheirLengths) {
  const gen::Batch batch = small_batch();
  const BatchShape shape = batch_shape(batch);
  EXPECT_EQ(shape.num_kv_heads, 2);
  EXPECT_EQ(shape.heads_per_kv, 4);
  EXPECT_EQ(shape.head_dim, 64);
  EXPECT_EQ(shape.page_size, 16);
  EXPECT_EQ(shape.batch_capacity, 6);
  EXPECT_EQ(shape.num_pages, batch.num_pages);
  EXPECT_EQ(shape.max_pages_per_seq, batch.max_pages_per_seq);
  ASSERT_EQ(shape.live_slots.size(), 3u);
  EXPECT_EQ(shape.live_slots[0].slot, 1);  // 9 rows on 30 tokens of context
  EXPECT_EQ(shape.live_slots[0].q_len, 9);
  EXPECT_EQ(shape.live_slots[0].seq_len, 39);
  EXPECT_EQ(shape.live_slots[1].slot, 3);  // a fresh 17-token prompt
  EXPECT_EQ(shape.live_slots[1].seq_len, 17);
  EXPECT_EQ(shape.live_slots[2].slot, 4);  // a decode row
  EXPECT_EQ(shape.live_slots[2].q_len, 1);

  const nlohmann::json j = to_json(shape);
  EXPECT_EQ(j["dtype"], "bf16");
  EXPECT_EQ(j["kv_dtype"], "bf16");
  EXPECT_EQ(j["sliding_window"], 32);
  EXPECT_EQ(j["live_slots"].size(), 3u);
  EXPECT_EQ(j["live_slots"][0]["q_len"], 9);
  EXPECT_EQ(j["live_slots"][0]["seq_len"], 39);
}

CudaScenarioResult measured(const std::string& name) {
  CudaScenarioResult s;
  s.name = name;
  s.summary = "a test";
  s.main.work.useful_bytes = 4e9;
  s.main.work.flops = 16e9;
  s.main.calls = 20;
  s.main.rpa.seconds = {2e-3, 1e-3, 3e-3};
  s.main.single.seconds = {5e-3};
  s.main.shape = batch_shape(small_batch());
  return s;
}

TEST(BenchCuda, ReportJsonHasRatesShapesAndFailedScenarios) {
  CudaReport report;
  report.gpu = h200();
  report.repeat = 3;
  report.scenarios.push_back(measured("decode-like"));
  CudaScenarioResult capacity = measured("capacity-like");
  capacity.capacity_multiplier = 64;
  capacity.at_1x.emplace().rpa.seconds = {1e-3};
  report.scenarios.push_back(capacity);
  CudaScenarioResult failed;
  failed.name = "unsupported";
  failed.error = "backend 'cuda' does not support this yet";
  report.scenarios.push_back(failed);

  const nlohmann::json j = to_json(report);
  EXPECT_EQ(j["gpu"]["device"], "test GPU");
  EXPECT_DOUBLE_EQ(j["gpu"]["balance_flops_per_byte"].get<double>(), 200.0);
  ASSERT_EQ(j["scenarios"].size(), 3u);
  const nlohmann::json& d = j["scenarios"][0];
  EXPECT_EQ(d["backend"], "cuda");
  EXPECT_TRUE(d["error"].is_null());
  EXPECT_DOUBLE_EQ(d["time_ms"].get<double>(), 2.0);  // per call, median
  EXPECT_DOUBLE_EQ(d["single_call_ms"].get<double>(), 5.0);
  EXPECT_EQ(d["queued_calls"], 20);
  EXPECT_EQ(d["bound"], "hbm");
  EXPECT_DOUBLE_EQ(d["fraction_of_bound"].get<double>(), 0.5);  // 2000 of 4000 GB/s
  EXPECT_TRUE(d["capacity_invariance"].is_null());
  EXPECT_EQ(d["batch"]["live_slots"].size(), 3u);
  EXPECT_DOUBLE_EQ(j["scenarios"][1]["capacity_invariance"].get<double>(), 2.0);
  const nlohmann::json& f = j["scenarios"][2];
  EXPECT_EQ(f["error"], failed.error);
  EXPECT_FALSE(f.contains("time_ms"));

  // The table prints every row, the failed one with its reason.
  char buffer[8192] = {};
  std::FILE* out = fmemopen(buffer, sizeof buffer - 1, "w");
  ASSERT_NE(out, nullptr);
  print_table(report, out);
  std::fclose(out);
  const std::string table = buffer;
  EXPECT_NE(table.find("decode-like"), std::string::npos);
  EXPECT_NE(table.find("50% hbm"), std::string::npos);
  EXPECT_NE(table.find("unsupported      failed: " + failed.error), std::string::npos) << table;
}

TEST(BenchCuda, OutputCheckReportsANaNInsteadOfSkippingIt) {
  const std::vector<float> b = {1.0f, -2.0f, 0.5f};
  std::vector<float> a = {1.0f, -2.5f, 0.5f};
  const auto bytes = [](const std::vector<float>& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(v.data());
    return std::vector<uint8_t>(p, p + v.size() * sizeof(float));
  };
  EXPECT_DOUBLE_EQ(relative_difference(bytes(a), bytes(b), DType::kF32, 3), 0.25);
  a[2] = std::nanf("");
  EXPECT_TRUE(std::isnan(relative_difference(bytes(a), bytes(b), DType::kF32, 3)));
}

}  // namespace
}  // namespace rpa::bench

// The adjacent-limit probes of `rpa bench` (bench/machine.h, runner.h): which
// limit a workload is read against, and the fraction of it that rpa reached
// in the same rounds.
#include <gtest/gtest.h>

#include "bench/machine.h"
#include "bench/runner.h"

namespace rpa::bench {
namespace {

MachineLimits machine() {
  MachineLimits m;
  m.threads = 1;
  m.read_gbps = 30.0;
  m.fma_gflops = 200.0;  // balance: 6.7 flops per byte
  m.bf16_gflops = 80.0;
  return m;
}

TEST(BenchProbe, AWorkloadBelowTheMachineBalanceIsReadAgainstDram) {
  Workload decode;
  decode.useful_bytes = 1e9;
  decode.flops = 4e9;  // GQA 4 decode in bf16: 4 flops per byte
  const LimitProbe probe = probe_for(decode, DType::kBF16, machine());
  EXPECT_EQ(probe.limit, "dram");
  EXPECT_EQ(probe.work, 4.0 * (1 << 28));  // the whole 256 MiB reads nearest 1 GB
}

TEST(BenchProbe, AWorkloadAboveItIsReadAgainstTheFasterComputePeak) {
  Workload prefill;
  prefill.useful_bytes = 1e6;
  prefill.flops = 1e9;
  MachineLimits m = machine();
  LimitProbe probe = probe_for(prefill, DType::kBF16, m);
  EXPECT_EQ(probe.limit, "fma");  // widening bf16 for FMAs beats the bf16 dot here
  // Whole probe units, about the workload's flops.
  EXPECT_GT(probe.work, 0.5e9);
  EXPECT_LT(probe.work, 1.5e9);
  probe.run();
  m.bf16_gflops = 400.0;  // as with AVX512_BF16
  EXPECT_EQ(probe_for(prefill, DType::kBF16, m).limit, "bf16");
  EXPECT_EQ(probe_for(prefill, DType::kF32, m).limit, "fma");
}

TEST(BenchProbe, FractionDividesTheMedianRatesOfTheSameRounds) {
  Measured m;
  m.work.useful_bytes = 2e9;
  m.work.flops = 8e9;
  m.rpa.seconds = {0.1, 0.4, 0.1};  // median 0.1: 20 GB/s, 80 GFLOP/s
  m.probe_limit = "dram";
  m.probe_work = 1e9;
  m.probe.seconds = {0.05, 0.04, 0.08};  // median 0.05: 20 GB/s
  EXPECT_DOUBLE_EQ(m.fraction_of_probe(), 1.0);
  m.probe_limit = "fma";
  m.probe_work = 8e9;  // 160 GFLOP/s
  EXPECT_DOUBLE_EQ(m.fraction_of_probe(), 0.5);
}

}  // namespace
}  // namespace rpa::bench

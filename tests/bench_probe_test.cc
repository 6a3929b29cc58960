// The adjacent-limit probes of `rpa bench` (bench/machine.h, cpu_runner.h): which
// limit a workload is read against, and the fraction of it that rpa reached
// in the same rounds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "bench/cpu_info.h"
#include "bench/machine.h"
#include "bench/machine_kernels.h"
#include "cpu/cpu_features.h"
#include "bench/cpu_runner.h"

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

// Every report names its machine: the CPU, the extensions that pick kernels,
// and the Highway target dispatched to, among those the tests loop over.
TEST(BenchMachine, ReportsNameTheCpuAndItsSimdPaths) {
  const CpuInfo cpu = describe_cpu();
  EXPECT_FALSE(cpu.model.empty());
  ASSERT_FALSE(cpu.simd_targets.empty());
  EXPECT_EQ(cpu.simd_targets.front(), cpu.simd_target);
  const auto has = [&](const std::string& flag) {
    return std::find(cpu.isa_flags.begin(), cpu.isa_flags.end(), flag) != cpu.isa_flags.end();
  };
#if defined(__x86_64__) && defined(__GNUC__)
  EXPECT_EQ(has("avx2"), __builtin_cpu_supports("avx2") != 0);
  EXPECT_EQ(has("avx512f"), __builtin_cpu_supports("avx512f") != 0);
  EXPECT_EQ(has("avx512_bf16"), cpu::has_avx512_bf16());
  EXPECT_EQ(has("avx512vbmi"), cpu::has_avx512_vbmi());
  if (cpu::has_amx_bf16()) {
    EXPECT_TRUE(has("amx_bf16"));
  }
#endif
  const nlohmann::json j = to_json(cpu);
  for (const char* key :
       {"cpu_model", "isa_flags", "highway_targets", "highway_target", "bf16_dot_kernels",
        "amx_usable"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
}

// The vdpbf16ps peak kernel counts 64 flops per instruction (16 lanes, two
// multiply-adds each) and returns a finite sum, so its rate is comparable to
// the FMA peak's (2 flops per lane).
TEST(BenchMachine, Bf16ChainsCountTheirFlops) {
  if (!cpu::has_avx512_bf16()) GTEST_SKIP() << "no AVX512_BF16 on this CPU";
  const KernelWork work = bf16_vdpbf16ps_chains(1000);
  EXPECT_DOUBLE_EQ(work.flops, 64.0 * 24 * 1000);
  EXPECT_TRUE(std::isfinite(work.sink));
  EXPECT_GT(work.sink, 0.0f);
}

// Each of the AMX probe's steps is four 16 x 16 x 32 tile products, and the
// tiles really multiply: the first output is the exact sum of the products.
TEST(BenchMachine, AmxTilesCountTheirFlopsAndProduceTheProduct) {
  if (!cpu::has_amx_bf16()) GTEST_SKIP() << "no usable AMX-BF16 on this CPU";
  const KernelWork work = bf16_amx_tiles(10);
  EXPECT_DOUBLE_EQ(work.flops, 4.0 * 16 * 16 * 32 * 2 * 10);
  // Each output sums 16 bf16 pairs of (0.5 * 2^-10 + 0.25 * -2^-11) per step.
  EXPECT_FLOAT_EQ(work.sink, 10 * 16 * (0.5f / 1024 - 0.25f / 2048));
}

}  // namespace
}  // namespace rpa::bench

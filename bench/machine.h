// The machine's own limits, measured by the process that runs the benchmark
// (docs/benchmarks.md): every speed rpa reports is also given as a fraction of
// these, measured minutes apart at most, on the same threads.
#pragma once

#include <string>

namespace rpa::bench {

struct MachineLimits {
  int threads = 0;
  double read_gbps = 0.0;     // DRAM read bandwidth, 1e9 bytes/s
  double fma_gflops = 0.0;    // fp32 FMA peak, 1e9 flop/s (an FMA is 2 flops)
  double bf16_gflops = 0.0;   // bf16 dot-product peak, 1e9 flop/s
  double sgemm_gflops = 0.0;  // OpenBLAS sgemm rate on kSgemmSize³
  std::string simd_target;    // the Highway target in use, e.g. "AVX2"
  std::string bf16_method;    // what bf16_gflops measured: "vdpbf16ps" or "widening"
  double read_bytes = 0.0;    // size of the array read
};

inline constexpr int kSgemmSize = 2048;

// Measures all four limits on `threads` threads (0 = all OpenMP threads):
// about a second on a quiet machine (mostly the 1 GiB array and the sgemm).
MachineLimits measure_machine(int threads);

}  // namespace rpa::bench

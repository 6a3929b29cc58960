// The machine's own limits, measured by the process that runs the benchmark
// (docs/benchmarks.md): every speed rpa reports is also given as a fraction of
// these, measured minutes apart at most, on the same threads.
#pragma once

#include <functional>
#include <string>

#include "bench/cpu_info.h"
#include "bench/workload.h"
#include "rpa/dtype.h"

namespace rpa::bench {

struct MachineLimits {
  int threads = 0;
  double read_gbps = 0.0;     // DRAM read bandwidth, 1e9 bytes/s
  double fma_gflops = 0.0;    // fp32 FMA peak, 1e9 flop/s (an FMA is 2 flops)
  double bf16_gflops = 0.0;   // bf16 dot-product peak, 1e9 flop/s
  double sgemm_gflops = 0.0;  // OpenBLAS sgemm rate on kSgemmSize³
  std::string simd_target;    // the Highway target in use, e.g. "AVX2"
  std::string bf16_method;    // what bf16_gflops measured: "amx", "vdpbf16ps" or "widening"
  double read_bytes = 0.0;    // size of the array read
  CpuInfo cpu;                // which machine these limits belong to

  // Whether inputs of `dtype` reach their compute peak through the bf16 dot
  // product (bf16 inputs where it beats widening them for fp32 FMAs).
  bool bf16_is_peak(DType dtype) const { return dtype == DType::kBF16 && bf16_gflops > fma_gflops; }
  double peak_gflops(DType dtype) const { return bf16_is_peak(dtype) ? bf16_gflops : fma_gflops; }
};

inline constexpr int kSgemmSize = 2048;

// Measures all four limits on `threads` threads (0 = all OpenMP threads):
// about a second on a quiet machine (mostly the 1 GiB array and the sgemm).
MachineLimits measure_machine(int threads);

// The kernel behind one limit as a probe, timed in turn with a scenario's rpa
// runs: on a shared machine the limits move with the load (DRAM read 23-37
// GB/s within minutes on the machine of record), so a fraction of the limit
// measured at the start of `rpa bench` can be far off, where one of the limit
// next to the run is not. The probe does about as much of the limit's work
// (bytes or flops) as the workload, so that it lasts about as long as an rpa
// run at full speed and samples the same bursts of load.
struct LimitProbe {
  std::string limit;  // "dram", "fma" or "bf16": the MachineLimits field it probes
  double work = 0.0;  // per run: bytes read (dram) or flops
  std::function<void()> run;
};

// The limit a workload runs into on `machine`: DRAM when it does fewer flops
// per byte than the machine's balance (peak / read bandwidth), else compute.
// The probe owns what it reads (a 256 MiB array, read whole, for DRAM).
LimitProbe probe_for(const Workload& work, DType dtype, const MachineLimits& machine);

}  // namespace rpa::bench

#include "bench/gpu_rates.h"

#include <algorithm>
#include <cmath>

namespace rpa::bench {

double copy_gbps(double bytes, double seconds) { return 2.0 * bytes / seconds * 1e-9; }

double gemm_tflops(int n, double seconds) {
  const double size = n;
  return 2.0 * size * size * size / seconds * 1e-12;
}

GpuRates gpu_rates(const Workload& work, double seconds, const GpuLimits& limits) {
  GpuRates r;
  r.gbps = work.useful_bytes / seconds * 1e-9;
  r.tflops = work.flops / seconds * 1e-12;
  r.fraction_of_bandwidth = r.gbps / limits.copy_gbps;
  r.fraction_of_peak = r.tflops / limits.gemm_tflops;
  const bool memory_bound = work.flops < limits.balance() * work.useful_bytes;
  r.bound = memory_bound ? "hbm" : "gemm";
  r.fraction_of_bound = memory_bound ? r.fraction_of_bandwidth : r.fraction_of_peak;
  return r;
}

int queued_calls(double call_s, double sample_s, int max_calls) {
  if (!(call_s > 0.0)) return max_calls;  // too fast for the clock: as many as allowed
  const double calls = std::ceil(sample_s / call_s);
  return static_cast<int>(std::clamp(calls, 1.0, static_cast<double>(max_calls)));
}

Timing per_call(const Timing& samples, int calls) {
  Timing t;
  for (double s : samples.seconds) t.seconds.push_back(s / calls);
  return t;
}

}  // namespace rpa::bench

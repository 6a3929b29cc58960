// The arithmetic of `rpa bench --backend cuda` (docs/benchmarks.md, "CUDA
// backend: how to measure"): the GPU's two limits, the rates they are measured
// as, and rpa's rates as fractions of them. Pure functions, so that they are
// tested on machines without a GPU; the measuring is in cuda_limits.cc.
#pragma once

#include <string>

#include "bench/timing.h"
#include "bench/workload.h"

namespace rpa::bench {

struct GpuLimits {
  std::string device;        // the device's name, e.g. "NVIDIA H200"
  int sm_count = 0;          // streaming multiprocessors
  double copy_gbps = 0.0;    // device-to-device copy, bytes read + written, 1e9 B/s
  double copy_bytes = 0.0;   // size of one copy (each byte read once and written once)
  double gemm_tflops = 0.0;  // cuBLAS bf16 GEMM (f32 accumulation), 1e12 flop/s
  int gemm_size = 0;         // n of the n×n×n product

  // Flops per byte of memory traffic above which a workload is bound by the
  // matrix units rather than by memory (about 200 on an H200).
  double balance() const { return gemm_tflops * 1e3 / copy_gbps; }
};

// The rate of a device-to-device copy of `bytes` that took `seconds`, counting
// each byte read and written: a kernel's useful bytes count q read and out
// written alike, so both sides of the copy are traffic the memory carried.
double copy_gbps(double bytes, double seconds);

// The rate of an n×n×n matrix product (2n³ flops) that took `seconds`.
double gemm_tflops(int n, double seconds);

// rpa's rates on one workload at `seconds` per call, and which limit binds.
struct GpuRates {
  double gbps = 0.0;                   // useful bytes per second, 1e9
  double tflops = 0.0;                 // flops per second, 1e12
  double fraction_of_bandwidth = 0.0;  // gbps / copy_gbps
  double fraction_of_peak = 0.0;       // tflops / gemm_tflops
  // "hbm" when the workload does fewer flops per useful byte than the GPU's
  // balance (decode), else "gemm" (prefill); the fraction of that limit.
  std::string bound;
  double fraction_of_bound = 0.0;
};
GpuRates gpu_rates(const Workload& work, double seconds, const GpuLimits& limits);

// How many calls one timed sample queues: enough for about `sample_s` at
// `call_s` per call, so that a sample of a 50 µs decode call is not mostly the
// wait for the stream, within [1, max_calls].
int queued_calls(double call_s, double sample_s, int max_calls);

// A series of samples of `calls` calls each, as seconds per call.
Timing per_call(const Timing& samples, int calls);

}  // namespace rpa::bench

// The GPU's own limits, measured by the process that runs `rpa bench --backend
// cuda` (docs/benchmarks.md, "CUDA backend: how to measure"): every rate of a
// cuda run is also given as a fraction of these. Only built with the cuda
// backend.
#pragma once

#include "bench/gpu_rates.h"
#include "rpa/status.h"

namespace rpa::bench {

// On the current device: the best rate of a 1 GiB device-to-device
// cudaMemcpyAsync (bytes read + written) and of an 8192³ cuBLAS bf16 GEMM
// with f32 accumulation, each timed with events. About a second.
Status measure_gpu_limits(GpuLimits* limits);

}  // namespace rpa::bench

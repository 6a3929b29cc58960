// `rpa bench --backend cuda` in a build without the cuda backend (nvcc was not
// found at configure time, or RPA_CUDA=off): it says so instead of running.
#include "bench/cuda_runner.h"

namespace rpa::bench {

Status cuda_bench_available() {
  return Status::Unsupported(
      "--backend cuda cannot run: the cuda backend is not built into this copy of rpa "
      "(configure with nvcc on the PATH or -DCMAKE_CUDA_COMPILER=..., and RPA_CUDA=auto or on)");
}

Status run_cuda_bench(const std::vector<Scenario>&, const BenchConfig&, Progress&, CudaReport*) {
  return cuda_bench_available();
}

}  // namespace rpa::bench

#include "bench/cuda_limits.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "bench/cuda_handles.h"
#include "rpa/dtype.h"

namespace rpa::bench {
namespace {

// Far larger than the L2 (60 MB on an H200), so every copy streams through HBM.
constexpr size_t kCopyBytes = size_t{1} << 30;
constexpr int kCopiesPerPass = 10;  // ~5 ms per pass at 4 TB/s
// The size NVIDIA quotes peak GEMM rates at; 1.1e12 flops, ~1.4 ms at 790 TFLOP/s.
constexpr int kGemmSize = 8192;
constexpr int kGemmWarmUps = 3;  // cuBLAS picks its kernel and the clocks rise
constexpr int kGemmsPerPass = 5;
constexpr int kTimedPasses = 5;

Status cublas_ok(cublasStatus_t status, const std::string& what) {
  if (status == CUBLAS_STATUS_SUCCESS) return Status::Ok();
  return Status::Internal("rpa bench: " + what + " failed: " + cublasGetStatusString(status));
}

struct CublasDeleter {
  void operator()(cublasHandle_t handle) const { cublasDestroy(handle); }
};
using CublasHandle = std::unique_ptr<std::remove_pointer_t<cublasHandle_t>, CublasDeleter>;

Status measure_copy(const CudaStream& stream, GpuLimits* limits) {
  DeviceBuffer src, dst;
  RPA_RETURN_IF_ERROR(src.allocate(kCopyBytes, "the copy source"));
  RPA_RETURN_IF_ERROR(dst.allocate(kCopyBytes, "the copy destination"));
  RPA_RETURN_IF_ERROR(
      cuda_ok(cudaMemsetAsync(src.data(), 0x5a, kCopyBytes, stream.get()), "filling the source"));
  const auto copy = [&] {
    return cuda_ok(
        cudaMemcpyAsync(dst.data(), src.data(), kCopyBytes, cudaMemcpyDeviceToDevice, stream.get()),
        "a device-to-device copy");
  };
  RPA_RETURN_IF_ERROR(copy());  // warm-up
  EventTimer timer;
  RPA_RETURN_IF_ERROR(timer.create());
  double best = 0.0;
  for (int pass = 0; pass < kTimedPasses; ++pass) {
    RPA_RETURN_IF_ERROR(timer.start(stream.get()));
    for (int i = 0; i < kCopiesPerPass; ++i) RPA_RETURN_IF_ERROR(copy());
    double seconds = 0.0;
    RPA_RETURN_IF_ERROR(timer.stop(stream.get(), &seconds));
    best = std::max(best, copy_gbps(static_cast<double>(kCopyBytes) * kCopiesPerPass, seconds));
  }
  limits->copy_gbps = best;
  limits->copy_bytes = static_cast<double>(kCopyBytes);
  return Status::Ok();
}

// n×n bf16 values uniform in [-1, 1): random operands, since a product of
// zeros runs faster than real data (13% on an H200 of ours).
std::vector<uint16_t> random_bf16(size_t count) {
  std::vector<uint16_t> values(count);
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (uint16_t& v : values) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    const float unit = static_cast<float>(state >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    v = f32_to_bf16(2.0f * unit - 1.0f);
  }
  return values;
}

Status measure_gemm(const CudaStream& stream, GpuLimits* limits) {
  const int n = kGemmSize;
  const size_t bytes = size_t{1} * n * n * sizeof(uint16_t);
  DeviceBuffer a, b, c;
  RPA_RETURN_IF_ERROR(a.allocate(bytes, "GEMM operand A"));
  RPA_RETURN_IF_ERROR(b.allocate(bytes, "GEMM operand B"));
  RPA_RETURN_IF_ERROR(c.allocate(bytes, "GEMM result C"));
  const std::vector<uint16_t> host = random_bf16(size_t{1} * n * n);
  RPA_RETURN_IF_ERROR(cuda_ok(cudaMemcpy(a.data(), host.data(), bytes, cudaMemcpyHostToDevice),
                              "copying GEMM operand A"));
  RPA_RETURN_IF_ERROR(cuda_ok(cudaMemcpy(b.data(), host.data(), bytes, cudaMemcpyHostToDevice),
                              "copying GEMM operand B"));
  cublasHandle_t raw = nullptr;
  RPA_RETURN_IF_ERROR(cublas_ok(cublasCreate(&raw), "cublasCreate"));
  const CublasHandle handle(raw);
  RPA_RETURN_IF_ERROR(cublas_ok(cublasSetStream(raw, stream.get()), "cublasSetStream"));
  const float alpha = 1.0f, beta = 0.0f;
  const auto gemm = [&] {
    return cublas_ok(cublasGemmEx(raw, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a.data(),
                                  CUDA_R_16BF, n, b.data(), CUDA_R_16BF, n, &beta, c.data(),
                                  CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                     "cublasGemmEx (bf16, f32 accumulation)");
  };
  for (int i = 0; i < kGemmWarmUps; ++i) RPA_RETURN_IF_ERROR(gemm());
  EventTimer timer;
  RPA_RETURN_IF_ERROR(timer.create());
  double best = 0.0;
  for (int pass = 0; pass < kTimedPasses; ++pass) {
    RPA_RETURN_IF_ERROR(timer.start(stream.get()));
    for (int i = 0; i < kGemmsPerPass; ++i) RPA_RETURN_IF_ERROR(gemm());
    double seconds = 0.0;
    RPA_RETURN_IF_ERROR(timer.stop(stream.get(), &seconds));
    best = std::max(best, gemm_tflops(n, seconds / kGemmsPerPass));
  }
  limits->gemm_tflops = best;
  limits->gemm_size = n;
  return Status::Ok();
}

}  // namespace

Status measure_gpu_limits(GpuLimits* limits) {
  int device = 0;
  RPA_RETURN_IF_ERROR(cuda_ok(cudaGetDevice(&device), "cudaGetDevice"));
  cudaDeviceProp prop{};
  RPA_RETURN_IF_ERROR(cuda_ok(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties"));
  limits->device = prop.name;
  limits->sm_count = prop.multiProcessorCount;
  CudaStream stream;
  RPA_RETURN_IF_ERROR(stream.create());
  RPA_RETURN_IF_ERROR(measure_copy(stream, limits));
  return measure_gemm(stream, limits);
}

}  // namespace rpa::bench

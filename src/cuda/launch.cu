// Template dispatch and launch geometry of the kernels (launch.h).
#include <type_traits>

#include "cuda/decode.cuh"
#include "cuda/decode_mma.cuh"
#include "cuda/launch.h"
#include "cuda/merge.cuh"
#include "cuda/prefill.cuh"
#include "cuda/prefill_mma.cuh"

namespace rpa::cuda {
namespace {

// Calls fn(KV{}) with a value of the cache's element type.
template <typename Fn>
cudaError_t with_kv_type(DType kv, const Fn& fn) {
  switch (kv) {
    case DType::kBF16:
      return fn(__nv_bfloat16{});
    case DType::kF16:
      return fn(__half{});
    case DType::kF8E4M3:
      return fn(__nv_fp8_e4m3{});
    default:
      return fn(float{});
  }
}

// Heads per CTA of the CUDA-core decode kernel: one register block of q and
// o per head.
int decode_heads_per_cta(int heads_per_kv) { return heads_per_kv == 1 ? 1 : heads_per_kv <= 4 ? 4 : 8; }

// Whether the call's decode runs on tensor cores: its dtypes and head_dim
// allow it and the kernel's rings fit the device's shared memory per block.
bool decode_uses_mma(const KernelArgs& a, int smem_optin) {
  return decode_on_mma(a.q_dtype, a.kv_dtype, a.head_dim) &&
         decode_mma_smem_bytes(a.head_dim) <= smem_optin;
}

// Launches `kernel` on `grid` x `threads` with `bytes` of dynamic shared
// memory, allowed first (over 48 KiB needs the opt-in).
template <typename Kernel>
cudaError_t launch_with_smem(Kernel kernel, dim3 grid, int threads, int bytes, const KernelArgs& a,
                             cudaStream_t stream) {
  const cudaError_t set =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (set != cudaSuccess) return set;
  kernel<<<grid, threads, bytes, stream>>>(a);
  return cudaGetLastError();
}

// Lanes per key: 8 elements each, the fewest power-of-two lanes that cover
// head_dim (80 and 96 leave some idle).
template <typename KV, int L>
cudaError_t decode_with_lanes(const KernelArgs& a, cudaStream_t stream) {
  const int gm = decode_heads_per_cta(a.heads_per_kv);
  const dim3 grid(a.num_decode_chains, (a.heads_per_kv + gm - 1) / gm);
  const int bytes = decode_smem_bytes(static_cast<int>(sizeof(KV)) * 8, gm, a.head_dim);
  const auto launch = [&](auto kernel) {
    return launch_with_smem(kernel, grid, kDecodeWarps * 32, bytes, a, stream);
  };
  if (gm == 1) return launch(decode_kernel<KV, L, 1>);
  if (gm == 4) return launch(decode_kernel<KV, L, 4>);
  return launch(decode_kernel<KV, L, 8>);
}

// Launches a prefill kernel on a grid of the prefill chains x blocks of
// `rows` packed rows.
template <typename Kernel>
cudaError_t launch_prefill_kernel(Kernel kernel, int threads, int rows, int bytes,
                                  const KernelArgs& a, cudaStream_t stream) {
  const int packed_rows = a.max_tile_rows * a.heads_per_kv;
  const dim3 grid(a.num_prefill_chains, (packed_rows + rows - 1) / rows);
  return launch_with_smem(kernel, grid, threads, bytes, a, stream);
}

// Calls fn(std::integral_constant<int, D>{}) for head_dim D: the prefill
// kernels are compiled per head_dim, their accumulators being register
// arrays.
template <typename Fn>
cudaError_t with_head_dim(int head_dim, const Fn& fn) {
  static_assert(kMaxSupportedHeadDim == 256);
  switch (head_dim) {
    case 64:
      return fn(std::integral_constant<int, 64>{});
    case 80:
      return fn(std::integral_constant<int, 80>{});
    case 96:
      return fn(std::integral_constant<int, 96>{});
    case 128:
      return fn(std::integral_constant<int, 128>{});
    default:
      return fn(std::integral_constant<int, 256>{});
  }
}

template <typename KV, typename C>
cudaError_t prefill_with_mma(const KernelArgs& a, cudaStream_t stream) {
  return with_head_dim(a.head_dim, [&](auto dim) {
    constexpr int kDim = decltype(dim)::value;
    return launch_prefill_kernel(prefill_mma_kernel<KV, C, kDim>, kMmaThreads, kMmaRows,
                                 MmaLayout(kDim).bytes, a, stream);
  });
}

template <typename KV>
cudaError_t prefill_simt(const KernelArgs& a, cudaStream_t stream) {
  return with_head_dim(a.head_dim, [&](auto dim) {
    constexpr int kDim = decltype(dim)::value;
    return launch_prefill_kernel(prefill_kernel<KV, kDim>, kPrefillThreads, kPrefillRows,
                                 prefill_smem_floats(kDim) * static_cast<int>(sizeof(float)), a,
                                 stream);
  });
}

template <typename C>
cudaError_t decode_with_mma(const KernelArgs& a, cudaStream_t stream) {
  return with_head_dim(a.head_dim, [&](auto dim) {
    constexpr int kDim = decltype(dim)::value;
    if constexpr (kDim > 128) {
      return cudaErrorInvalidValue;  // decode_on_mma said no
    } else {
      const dim3 grid(a.num_decode_chains, (a.heads_per_kv + kDecodeMmaRows - 1) / kDecodeMmaRows);
      return launch_with_smem(decode_mma_kernel<C, kDim>, grid, kDecodeMmaWarps * 32,
                              decode_mma_smem_bytes(kDim), a, stream);
    }
  });
}

}  // namespace

int decode_kernel_smem_bytes(const KernelArgs& a, int smem_optin) {
  if (decode_uses_mma(a, smem_optin)) return decode_mma_smem_bytes(a.head_dim);
  return decode_smem_bytes(static_cast<int>(dtype_size(a.kv_dtype)) * 8,
                           decode_heads_per_cta(a.heads_per_kv), a.head_dim);
}

cudaError_t launch_decode(const KernelArgs& a, int smem_optin, cudaStream_t stream) {
  if (decode_uses_mma(a, smem_optin)) {
    return a.q_dtype == DType::kBF16 ? decode_with_mma<__nv_bfloat16>(a, stream)
                                     : decode_with_mma<__half>(a, stream);
  }
  return with_kv_type(a.kv_dtype, [&](auto kv) {
    using KV = decltype(kv);
    // 32 lanes of 8 elements cover the widest supported head_dim.
    static_assert(kMaxSupportedHeadDim <= 32 * 8);
    if (a.head_dim <= 64) return decode_with_lanes<KV, 8>(a, stream);
    if (a.head_dim <= 128) return decode_with_lanes<KV, 16>(a, stream);
    return decode_with_lanes<KV, 32>(a, stream);
  });
}

int prefill_smem_bytes(const KernelArgs& a) {
  return a.q_dtype == DType::kF32 ? prefill_smem_floats(a.head_dim) * static_cast<int>(sizeof(float))
                                  : MmaLayout(a.head_dim).bytes;
}

cudaError_t launch_prefill(const KernelArgs& a, cudaStream_t stream) {
  const bool fp8 = a.kv_dtype == DType::kF8E4M3;
  switch (a.q_dtype) {
    case DType::kBF16:
      return fp8 ? prefill_with_mma<__nv_fp8_e4m3, __nv_bfloat16>(a, stream)
                 : prefill_with_mma<__nv_bfloat16, __nv_bfloat16>(a, stream);
    case DType::kF16:
      return fp8 ? prefill_with_mma<__nv_fp8_e4m3, __half>(a, stream)
                 : prefill_with_mma<__half, __half>(a, stream);
    default:  // f32 q keeps f32 arithmetic (docs/contract.md §5: 2e-5)
      return fp8 ? prefill_simt<__nv_fp8_e4m3>(a, stream) : prefill_simt<float>(a, stream);
  }
}

cudaError_t launch_merge(const KernelArgs& a, cudaStream_t stream) {
  merge_kernel<<<a.num_merges, kMergeThreads, 0, stream>>>(a);
  return cudaGetLastError();
}

}  // namespace rpa::cuda

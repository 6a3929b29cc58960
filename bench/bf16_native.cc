// The AVX512_BF16 bf16 dot product (vdpbf16ps). Highway 1.0 widens bf16 with
// shifts even where the CPU has the native instruction, so the peak on such
// CPUs is measured here with intrinsics, compiled for that extension only and
// called only when the CPU reports it.
#include "bench/machine_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

namespace rpa::bench {

bool cpu_has_avx512_bf16() { return __builtin_cpu_supports("avx512bf16"); }

__attribute__((target("avx512f,avx512bf16"))) KernelWork bf16_vdpbf16ps_dot(const uint16_t* a,
                                                                            const uint16_t* b,
                                                                            size_t n,
                                                                            int64_t passes) {
  // Eight accumulators cover the 4-cycle latency of two dot-product pipes.
  constexpr int kChains = 8;
  constexpr size_t kStep = 32;  // bf16 elements per 512-bit vector
  __m512 acc[kChains];
  for (__m512& v : acc) v = _mm512_setzero_ps();
  for (int64_t pass = 0; pass < passes; ++pass) {
    for (size_t i = 0; i + kChains * kStep <= n; i += kChains * kStep) {
#pragma GCC unroll 8
      for (int c = 0; c < kChains; ++c) {
        const __m512i va = _mm512_loadu_si512(a + i + c * kStep);
        const __m512i vb = _mm512_loadu_si512(b + i + c * kStep);
        acc[c] = _mm512_dpbf16_ps(acc[c], (__m512bh)va, (__m512bh)vb);
      }
    }
  }
  float lanes[16] = {};
  for (const __m512& v : acc) {
    float part[16];
    _mm512_storeu_ps(part, v);
    for (int l = 0; l < 16; ++l) lanes[l] += part[l];
  }
  return {2.0 * static_cast<double>(n) * static_cast<double>(passes), lanes[0]};
}

}  // namespace rpa::bench

#else

namespace rpa::bench {

bool cpu_has_avx512_bf16() { return false; }

KernelWork bf16_vdpbf16ps_dot(const uint16_t*, const uint16_t*, size_t, int64_t) { return {}; }

}  // namespace rpa::bench

#endif

// The native bf16 instructions at their peak: AMX-BF16 tiles and the
// AVX512_BF16 dot product (vdpbf16ps). Highway 1.0 widens bf16 with shifts
// even where the CPU has them, so these are intrinsics, compiled for their
// extension only and called only when cpu/cpu_features.h says they run.
#include <cstdint>

#include "bench/machine_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "cpu/amx_tiles.h"

namespace rpa::bench {

// As a GEMM micro-kernel runs it: both operands in registers (a kernel
// broadcasts one and keeps the other loaded across many keys), so that only
// the dot-product pipes are timed, not the load ports. 24 independent
// accumulators cover a latency of up to 6 cycles on two pipes and, with the
// two operands, fit in the 32 AVX-512 registers.
__attribute__((target("avx512f,avx512bf16"))) KernelWork bf16_vdpbf16ps_chains(int64_t iters) {
  constexpr int kChains = 24;
  // bf16 pairs (0.5, 0.25) and (2^-10, -2^-11): each step adds 2^-11 - 2^-13
  // to every lane, so the sums stay finite over any run.
  const __m512bh a = (__m512bh)_mm512_set1_epi32(0x3E803F00);
  const __m512bh b = (__m512bh)_mm512_set1_epi32(static_cast<int32_t>(0xBA003A80u));
  __m512 acc[kChains];
  for (__m512& v : acc) v = _mm512_setzero_ps();
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 24
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_dpbf16_ps(acc[c], a, b);
  }
  __m512 sum = _mm512_setzero_ps();
  for (const __m512& v : acc) sum = _mm512_add_ps(sum, v);
  float lanes[16];
  _mm512_storeu_ps(lanes, sum);
  float total = 0.0f;
  for (const float lane : lanes) total += lane;
  // 16 f32 lanes, each two multiply-adds per instruction.
  const double flops = 4.0 * 16 * kChains * static_cast<double>(iters);
  return {flops, total};
}

// Four independent 16 x 16 f32 accumulator tiles, each fed by one of two A
// tiles (16 x 32 bf16) and one of two B tiles, all loaded once: tdpbf16ps
// issues back to back as in a GEMM's inner loop, which is the ceiling of any
// bf16 matrix product on the core.
// The tiles are configured by the kernels' own amx_begin (16 rows of 64
// bytes each).
__attribute__((target("amx-tile,amx-bf16"))) KernelWork bf16_amx_tiles(int64_t iters) {
  // The same values as the vdpbf16ps chains: sums that stay finite.
  alignas(64) uint32_t a[16 * 16], b[16 * 16];
  for (int i = 0; i < 16 * 16; ++i) {
    a[i] = 0x3E803F00u;
    b[i] = 0xBA003A80u;
  }
  cpu::amx_begin();
  // GCC's tile intrinsics are asm statements that do not tell the compiler
  // which memory they read or write: the barriers keep the stores to a and b
  // above and the read of c below.
  __asm__ volatile("" ::: "memory");
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, a, 64);
  _tile_loadd(5, a, 64);
  _tile_loadd(6, b, 64);
  _tile_loadd(7, b, 64);
  for (int64_t i = 0; i < iters; ++i) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  alignas(64) float c[16 * 16];
  _tile_stored(0, c, 64);
  __asm__ volatile("" ::: "memory");
  cpu::amx_end();
  // Each tdpbf16ps: 16 x 16 outputs, 32 multiply-adds each.
  const double flops = 4.0 * 16 * 16 * 32 * 2 * static_cast<double>(iters);
  return {flops, c[0]};
}

}  // namespace rpa::bench

#else

namespace rpa::bench {

KernelWork bf16_vdpbf16ps_chains(int64_t) { return {}; }
KernelWork bf16_amx_tiles(int64_t) { return {}; }

}  // namespace rpa::bench

#endif

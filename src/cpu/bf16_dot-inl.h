// The prefill scores of bf16 inputs on CPUs with AVX512_BF16: vdpbf16ps
// multiplies bf16 pairs exactly and accumulates them in f32, so K rows are
// read in place from their pages (no widening) and each instruction does 32
// multiply-adds. Highway 1.0.3 has no target for it, so the kernel is the AVX3
// target plus the avx512bf16 attribute, called only after the runtime check of
// cpu.cc (CpuCall::bf16_dot). Other targets compile none of this.

// Whether the target being compiled can run the kernel; expands per target.
#ifndef RPA_CPU_BF16_DOT_TARGET
#define RPA_CPU_BF16_DOT_TARGET (HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL)
#endif

#if defined(RPA_CPU_BF16_DOT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RPA_CPU_BF16_DOT_INL_H_
#undef RPA_CPU_BF16_DOT_INL_H_
#else
#define RPA_CPU_BF16_DOT_INL_H_
#endif

#include <cstdint>
#include <cstring>

#include "cpu/load-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace rpa::cpu::HWY_NAMESPACE {

#if RPA_CPU_BF16_DOT_TARGET
#undef RPA_CPU_BF16_DOT_ATTR
#define RPA_CPU_BF16_DOT_ATTR \
  __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx512bf16")))

// The m-block of the AVX3 target: 2 vectors of 16 f32 lanes.
inline constexpr int64_t kBF16DotLanes = 32;

// st[n * 32 + j] = sum_d q_j[d] * k_n[d] for n < NK, where qp holds the
// m-block's q as bf16 pairs, qp[(d / 2) * 64 + 2 * j + d % 2] = q_j[d], and a
// K pair (k[d], k[d + 1]) is one broadcast 32-bit load.
template <int NK>
RPA_CPU_BF16_DOT_ATTR inline void ScoresBF16Micro(const uint16_t* qp, const uint16_t* const* k,
                                                  int64_t dim, float* st) {
  __m512 acc0[NK], acc1[NK];
  for (int n = 0; n < NK; ++n) acc0[n] = acc1[n] = _mm512_setzero_ps();
  for (int64_t d = 0; d < dim; d += 2) {
    const __m512bh q0 = (__m512bh)_mm512_load_si512(qp + d * kBF16DotLanes);
    const __m512bh q1 = (__m512bh)_mm512_load_si512(qp + d * kBF16DotLanes + kBF16DotLanes);
    for (int n = 0; n < NK; ++n) {
      int32_t pair;
      std::memcpy(&pair, k[n] + d, sizeof(pair));
      const __m512bh kb = (__m512bh)_mm512_set1_epi32(pair);
      acc0[n] = _mm512_dpbf16_ps(acc0[n], q0, kb);
      acc1[n] = _mm512_dpbf16_ps(acc1[n], q1, kb);
    }
  }
  for (int n = 0; n < NK; ++n) {
    _mm512_store_ps(st + n * kBF16DotLanes, acc0[n]);
    _mm512_store_ps(st + n * kBF16DotLanes + 16, acc1[n]);
  }
}

// Unscaled scores of keys k[0, nk) (bf16 rows) against one m-block.
RPA_CPU_BF16_DOT_ATTR HWY_NOINLINE void ScoresBF16(const uint16_t* qp, const uint16_t* const* k,
                                                   int64_t nk, int64_t dim, float* st) {
  // 12 keys x 2 vectors: 24 of the 32 AVX-512 registers accumulate.
  constexpr int kKeys = 12;
  int64_t n = 0;
  for (; n + kKeys <= nk; n += kKeys)
    ScoresBF16Micro<kKeys>(qp, k + n, dim, st + n * kBF16DotLanes);
  for (; n + 4 <= nk; n += 4) ScoresBF16Micro<4>(qp, k + n, dim, st + n * kBF16DotLanes);
  for (; n < nk; ++n) ScoresBF16Micro<1>(qp, k + n, dim, st + n * kBF16DotLanes);
}

// Packs lane `lane` of an m-block's qp from a bf16 q row (or zeros when null).
inline void PackBF16Pairs(const hwy::bfloat16_t* row, int64_t lane, int64_t dim, uint16_t* qp) {
  for (int64_t d = 0; d < dim; ++d) {
    uint16_t bits = 0;
    if (row != nullptr) std::memcpy(&bits, row + d, sizeof(bits));
    qp[(d / 2) * 2 * kBF16DotLanes + 2 * lane + d % 2] = bits;
  }
}
#endif  // RPA_CPU_BF16_DOT_TARGET

}  // namespace rpa::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RPA_CPU_BF16_DOT_INL_H_

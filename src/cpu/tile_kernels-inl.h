// Register-blocked micro-kernels of the prefill path.
//
// A tile's packed rows (row r, head g -> lane r * G + g) are processed in
// m-blocks of kBlockLanes = 2 vectors. Scores are kept transposed, st[n][lane],
// so that the online softmax of a block is purely vertical (one lane per row)
// and needs no horizontal reductions:
//   S^T = K Q^T: st[n][j] = sum_d k_n[d] * qt[d][j], K rows broadcast one
//                 element at a time against 2 vectors of the transposed q;
//   O  += P V:   o[j][:] += sum_n st[n][j] * v_n[:], P broadcast against
//                 2 vectors of a V row.
// Both inner loops issue 2 kMicroRows independent FMAs per kMicroRows + 2
// loads, enough to cover the FMA latency (12 per 8 on AVX2, with 15 of its
// 16 registers).

#if defined(RPA_CPU_TILE_KERNELS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RPA_CPU_TILE_KERNELS_INL_H_
#undef RPA_CPU_TILE_KERNELS_INL_H_
#else
#define RPA_CPU_TILE_KERNELS_INL_H_
#endif

#include <cstdint>

#include "cpu/load-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace rpa::cpu::HWY_NAMESPACE {

// Keys (for S) or rows (for O) per register block: 6 x 2 accumulators in
// AVX2's 16 registers, 8 x 2 in AVX-512's 32 (f32 prefill 3-6% faster than
// with 6 on an AVX-512 Xeon).
inline constexpr int kMicroRows = HWY_TARGET <= HWY_AVX3 ? 8 : 6;

// The remainder of a loop in register blocks at its compile-time size:
// fn.template operator()<n>() for n in [1, kMicroRows), nothing for 0.
template <int N = 1, typename Fn>
HWY_INLINE void WithRemainder(int64_t n, const Fn& fn) {
  if constexpr (N < kMicroRows) {
    if (n == N) return fn.template operator()<N>();
    WithRemainder<N + 1>(n, fn);
  }
}

HWY_INLINE int64_t BlockLanes() { return 2 * static_cast<int64_t>(hn::Lanes(DF())); }

// st[n * BlockLanes() + j] = sum_d k[n][d] * qt[d * BlockLanes() + j] for n < NK.
template <int NK>
HWY_INLINE void ScoresMicro(const float* HWY_RESTRICT qt, const float* const* k, int64_t dim,
                            float* HWY_RESTRICT st) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  VF acc0[NK], acc1[NK];
  for (int n = 0; n < NK; ++n) acc0[n] = acc1[n] = hn::Zero(df);
  for (int64_t d = 0; d < dim; ++d) {
    const VF q0 = hn::Load(df, qt + d * 2 * lanes);
    const VF q1 = hn::Load(df, qt + d * 2 * lanes + lanes);
    for (int n = 0; n < NK; ++n) {
      const VF kb = hn::Set(df, k[n][d]);
      acc0[n] = hn::MulAdd(kb, q0, acc0[n]);
      acc1[n] = hn::MulAdd(kb, q1, acc1[n]);
    }
  }
  for (int n = 0; n < NK; ++n) {
    hn::Store(acc0[n], df, st + n * 2 * lanes);
    hn::Store(acc1[n], df, st + n * 2 * lanes + lanes);
  }
}

// Scores of keys k[0, nk) against one m-block.
HWY_INLINE void Scores(const float* qt, const float* const* k, int64_t nk, int64_t dim, float* st) {
  const int64_t stride = BlockLanes();
  int64_t n = 0;
  for (; n + kMicroRows <= nk; n += kMicroRows)
    ScoresMicro<kMicroRows>(qt, k + n, dim, st + n * stride);
  WithRemainder(nk - n, [&]<int R>() { ScoresMicro<R>(qt, k + n, dim, st + n * stride); });
}

// For rows j < NR of an m-block (p = st + j0, o = its first row, alpha the
// rows' rescale factors): o[j][d, d + NV * lanes) =
//   alpha[j] * o[j] + sum_n p[n * BlockLanes() + j] * v[n][...].
template <int NR, int NV>
HWY_INLINE void AccumulateMicro(const float* HWY_RESTRICT p, const float* const* v, int64_t nk,
                                const float* HWY_RESTRICT alpha, int64_t dim, int64_t d,
                                float* HWY_RESTRICT o) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  const int64_t stride = BlockLanes();
  VF acc[NR][NV];
  for (int j = 0; j < NR; ++j) {
    const VF a = hn::Set(df, alpha[j]);
    for (int i = 0; i < NV; ++i) acc[j][i] = hn::Mul(hn::LoadU(df, o + j * dim + d + i * lanes), a);
  }
  for (int64_t n = 0; n < nk; ++n) {
    VF vv[NV];
    for (int i = 0; i < NV; ++i) vv[i] = hn::LoadU(df, v[n] + d + i * lanes);
    for (int j = 0; j < NR; ++j) {
      const VF pb = hn::Set(df, p[n * stride + j]);
      for (int i = 0; i < NV; ++i) acc[j][i] = hn::MulAdd(pb, vv[i], acc[j][i]);
    }
  }
  for (int j = 0; j < NR; ++j) {
    for (int i = 0; i < NV; ++i) hn::StoreU(acc[j][i], df, o + j * dim + d + i * lanes);
  }
}

template <int NR>
HWY_INLINE void AccumulateRows(const float* p, const float* const* v, int64_t nk,
                               const float* alpha, int64_t dim, float* o) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(DF()));
  int64_t d = 0;
  for (; d + 2 * lanes <= dim; d += 2 * lanes) AccumulateMicro<NR, 2>(p, v, nk, alpha, dim, d, o);
  if (d < dim) AccumulateMicro<NR, 1>(p, v, nk, alpha, dim, d, o);
}

// O += P V for rows [0, rows) of one m-block.
HWY_INLINE void Accumulate(const float* p, const float* const* v, int64_t nk, const float* alpha,
                           int64_t rows, int64_t dim, float* o) {
  int64_t j = 0;
  for (; j + kMicroRows <= rows; j += kMicroRows) {
    AccumulateRows<kMicroRows>(p + j, v, nk, alpha + j, dim, o + j * dim);
  }
  WithRemainder(rows - j,
                [&]<int R>() { AccumulateRows<R>(p + j, v, nk, alpha + j, dim, o + j * dim); });
}

}  // namespace rpa::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RPA_CPU_TILE_KERNELS_INL_H_

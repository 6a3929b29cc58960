// The pieces of one decode key block (decode-inl.h walks the blocks): the
// per-thread scratch, the scores of a register block of heads and keys, the
// accumulation of V, the online-softmax fold of a block and the fp8 NaN
// restores.

#if defined(RPA_CPU_DECODE_BLOCK_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RPA_CPU_DECODE_BLOCK_INL_H_
#undef RPA_CPU_DECODE_BLOCK_INL_H_
#else
#define RPA_CPU_DECODE_BLOCK_INL_H_
#endif

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "core/fp8.h"
#include "core/online_softmax.h"
#include "cpu/exp-inl.h"
#include "cpu/key_blocks.h"
#include "cpu/load-inl.h"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace rpa::cpu::HWY_NAMESPACE {

using rpa::HWY_NAMESPACE::DU8;
using rpa::HWY_NAMESPACE::Fp8FoldMagnitudes;
using rpa::HWY_NAMESPACE::Fp8ScanFoundNaN;


// Query heads per register block: 4 heads x 2 keys of dot-product accumulators
// leave room for the loads in 16 AVX2 registers.
inline constexpr int kDecodeHeads = 4;

// Per-thread scratch of the decode path (D = head_dim).
// H counts the query heads of every chain of a task: chains x heads_per_kv.
struct DecodeScratch {
  float* q;      // [H][D]: the query heads, pre-multiplied by scale
  float* o;      // [H][D]: unnormalized output
  float* m;      // [H]
  float* l;      // [H]
  float* alpha;  // [H]: this block's rescale factor of o
  float* shift;  // [H]: this block's exp shift, m or 0 while m = -inf
  float* s;      // [H][kDecodeKeys]: scores, then probabilities, of one key block

  // The arrays from query head `head` on.
  DecodeScratch shifted(int64_t head, int64_t dim) const {
    return DecodeScratch{q + head * dim, o + head * dim,        m + head, l + head, alpha + head,
                         shift + head,   s + head * kDecodeKeys};
  }

  static int64_t floats(int64_t heads, int64_t dim) { return heads * (2 * dim + 4 + kDecodeKeys); }
  static DecodeScratch carve(float* p, int64_t heads, int64_t dim) {
    DecodeScratch s;
    s.q = p;
    s.o = s.q + heads * dim;
    s.m = s.o + heads * dim;
    s.l = s.m + heads;
    s.alpha = s.l + heads;
    s.shift = s.alpha + heads;
    s.s = s.shift + heads;
    return s;
  }
};

// s[g * kDecodeKeys + n * stride] = q_g . k_n for GB heads and KB keys; q in
// pair order.
template <int GB, int KB, typename T>
HWY_INLINE void DecodeScores(const float* HWY_RESTRICT q, int64_t dim, const T* const* k,
                             int stride, float* HWY_RESTRICT s) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  VF acc[GB][KB];
  for (int g = 0; g < GB; ++g) {
    for (int n = 0; n < KB; ++n) acc[g][n] = hn::Zero(df);
  }
  int64_t d = 0;
  for (; d + 2 * lanes <= dim; d += 2 * lanes) {
    VF ka[KB], kb[KB];
    for (int n = 0; n < KB; ++n) LoadPair(df, k[n] + d, ka[n], kb[n]);
    for (int g = 0; g < GB; ++g) {
      const VF qa = hn::LoadU(df, q + g * dim + d);
      const VF qb = hn::LoadU(df, q + g * dim + d + lanes);
      for (int n = 0; n < KB; ++n) {
        acc[g][n] = hn::MulAdd(qa, ka[n], acc[g][n]);
        acc[g][n] = hn::MulAdd(qb, kb[n], acc[g][n]);
      }
    }
  }
  if (d < dim) {
    for (int n = 0; n < KB; ++n) {
      const VF kv = LoadF32(df, k[n] + d);
      for (int g = 0; g < GB; ++g)
        acc[g][n] = hn::MulAdd(hn::LoadU(df, q + g * dim + d), kv, acc[g][n]);
    }
  }
  for (int g = 0; g < GB; ++g) {
    for (int n = 0; n < KB; ++n) {
      s[g * kDecodeKeys + n * stride] = hn::GetLane(hn::SumOfLanes(df, acc[g][n]));
    }
  }
}

// o_g += sum_n p[g][n * stride] * v_n over all of head_dim, for GB heads and
// KB keys; o in pair order. o is loaded and stored once per KB keys: the
// price of reading V in page order (RunDecodeTask).
template <int GB, int KB, typename T>
HWY_INLINE void DecodeAccumulate(const float* HWY_RESTRICT p, int stride, const T* const* v,
                                 int64_t dim, float* HWY_RESTRICT o) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  VF pb[GB][KB];
  for (int g = 0; g < GB; ++g) {
    for (int n = 0; n < KB; ++n) pb[g][n] = hn::Set(df, p[g * kDecodeKeys + n * stride]);
  }
  int64_t d = 0;
  for (; d + 2 * lanes <= dim; d += 2 * lanes) {
    VF va[KB], vb[KB];
    for (int n = 0; n < KB; ++n) LoadPair(df, v[n] + d, va[n], vb[n]);
    for (int g = 0; g < GB; ++g) {
      float* og = o + g * dim + d;
      VF oa = hn::LoadU(df, og);
      VF ob = hn::LoadU(df, og + lanes);
      for (int n = 0; n < KB; ++n) {
        oa = hn::MulAdd(pb[g][n], va[n], oa);
        ob = hn::MulAdd(pb[g][n], vb[n], ob);
      }
      hn::StoreU(oa, df, og);
      hn::StoreU(ob, df, og + lanes);
    }
  }
  if (d < dim) {
    for (int g = 0; g < GB; ++g) {
      VF og = hn::LoadU(df, o + g * dim + d);
      for (int n = 0; n < KB; ++n) og = hn::MulAdd(pb[g][n], LoadF32(df, v[n] + d), og);
      hn::StoreU(og, df, o + g * dim + d);
    }
  }
}

// o_g *= alpha_g for every head of a chain: the online-softmax rescale of a
// key block, before its keys are accumulated.
HWY_INLINE void DecodeRescale(int64_t heads, int64_t dim, const DecodeScratch& st) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  for (int64_t g = 0; g < heads; ++g) {
    if (st.alpha[g] == 1.0f) continue;
    const VF a = hn::Set(df, st.alpha[g]);
    float* og = st.o + g * dim;
    for (int64_t d = 0; d < dim; d += lanes)
      hn::StoreU(hn::Mul(hn::LoadU(df, og + d), a), df, og + d);
  }
}

// Calls fn(std::integral_constant<int, GB>{}, g0) for head blocks of at most
// kDecodeHeads covering [0, heads).
template <typename Fn>
HWY_INLINE void ForHeadBlocks(int64_t heads, const Fn& fn) {
  for (int64_t g0 = 0; g0 < heads; g0 += kDecodeHeads) {
    switch (std::min<int64_t>(heads - g0, kDecodeHeads)) {
      case 1:
        fn(std::integral_constant<int, 1>{}, g0);
        break;
      case 2:
        fn(std::integral_constant<int, 2>{}, g0);
        break;
      case 3:
        fn(std::integral_constant<int, 3>{}, g0);
        break;
      default:
        fn(std::integral_constant<int, 4>{}, g0);
        break;
    }
  }
}

// Calls fn(i, stride, std::integral_constant<int, KB>{}) for the keys of a
// full block in groups of KB: key i with keys i + stride, i + 2 * stride, ...
// (stride = kDecodeKeys / KB); a partial block (a row's first or last) goes
// key by key, fn(n, 0, std::integral_constant<int, 1>{}). Walking the groups
// in order reads KB runs of the block's rows side by side, each run in
// address order: the hardware prefetchers stream every run, and KB runs keep
// more DRAM requests in flight than one (decode-long, reads alone, one
// thread: 22 ns per key and kv head with two runs, 25 with one; rows read kv
// head by kv head instead, each row of the block in turn: 48).
template <int KB, typename Fn>
HWY_INLINE void ForKeyGroups(int nb, const Fn& fn) {
  static_assert(kDecodeKeys % KB == 0, "a full block splits into KB runs");
  if (nb == kDecodeKeys) {
    constexpr int kStride = kDecodeKeys / KB;
    for (int i = 0; i < kStride; ++i) fn(i, kStride, std::integral_constant<int, KB>{});
  } else {
    for (int n = 0; n < nb; ++n) fn(n, 0, std::integral_constant<int, 1>{});
  }
}

// Folds scores s[g][0, nb) of every head into the state: soft cap (cap > 0),
// m, l, the rescale factor alpha of o, and s becomes exp(s - m_new). The heads
// are walked twice so that their reductions and exps overlap instead of
// forming one long dependency chain per head.
//
// `raw_half` is 1, or for fp8 caches kFp8RawHalfFactor: the scores come
// 2^-60 short of their value, and the probabilities are stored 2^60 high so
// that o = sum p v of raw V rows (2^-120 short) is 2^-60 short, never tiny.
HWY_INLINE void DecodeSoftmax(int64_t heads, int nb, float cap, float raw_half,
                              const DecodeScratch& st) {
  const DF df;
  const int lanes = static_cast<int>(hn::Lanes(df));
  for (int64_t g = 0; g < heads; ++g) {
    float* s = st.s + g * kDecodeKeys;
    if (raw_half != 1.0f) {
      for (int n = 0; n < nb; ++n) s[n] *= raw_half;
    }
    if (cap > 0.0f) {
      const VF vcap = hn::Set(df, cap);
      const VF inv_cap = hn::Set(df, 1.0f / cap);
      for (int n = 0; n < nb; n += lanes) {
        hn::StoreU(hn::Mul(vcap, hn::Tanh(df, hn::Mul(hn::LoadU(df, s + n), inv_cap))), df, s + n);
      }
    }
    std::fill(s + nb, s + kDecodeKeys, kNegInf);  // padding keys get p = exp(-inf) = 0
    VF vmax = hn::LoadU(df, s);
    for (int n = lanes; n < kDecodeKeys; n += lanes) vmax = hn::Max(vmax, hn::LoadU(df, s + n));
    const float m_new = std::max(st.m[g], hn::GetLane(hn::MaxOfLanes(df, vmax)));
    // A state that saw only -inf keeps m = -inf; shifting by 0 then gives p = 0.
    st.shift[g] = m_new == kNegInf ? 0.0f : m_new;
    st.alpha[g] = rescale_factor(st.m[g], m_new);
    st.m[g] = m_new;
  }
  for (int64_t g = 0; g < heads; ++g) {
    float* s = st.s + g * kDecodeKeys;
    const VF shift = hn::Set(df, st.shift[g]);
    VF sum = hn::Zero(df);
    const VF p_factor = hn::Set(df, raw_half);
    for (int n = 0; n < kDecodeKeys; n += lanes) {
      const VF p = ExpNonPositive(df, hn::Sub(hn::LoadU(df, s + n), shift));
      hn::StoreU(raw_half != 1.0f ? hn::Mul(p, p_factor) : p, df, s + n);
      sum = hn::Add(sum, p);
    }
    st.l[g] = st.l[g] * st.alpha[g] + hn::GetLane(hn::SumOfLanes(df, sum));
  }
}

// fp8 only: puts back the NaNs that the raw decode of a block's rows misreads
// (core/fp8_load-inl.h), where the exact decode would have produced them: a
// NaN code in a K row makes its key's score NaN for every head ...
template <typename T>
HWY_INLINE void RestoreNaNScores(const T* const* k, int nb, int64_t heads, int64_t dim, float* s) {
  if constexpr (kQuantized<T>) {
    for (int n = 0; n < nb; ++n) {
      if (!fp8_e4m3_has_nan(k[n], dim)) continue;
      for (int64_t g = 0; g < heads; ++g) s[g * kDecodeKeys + n] = hn::GetLane(hn::NaN(DF()));
    }
  }
}

// ... and one in a V row makes that element of every head's o NaN (p * NaN
// is NaN whatever p; once NaN, o stays NaN through later rescales).
template <typename T>
HWY_INLINE void RestoreNaNOutputs(const T* const* v, int nb, int64_t heads, int64_t dim, float* o) {
  if constexpr (kQuantized<T>) {
    for (int n = 0; n < nb; ++n) {
      if (!fp8_e4m3_has_nan(v[n], dim)) continue;
      for (int64_t d = 0; d < dim; ++d) {
        if ((v[n][d].bits & 0x7fu) != 0x7fu) continue;
        for (int64_t g = 0; g < heads; ++g) o[g * dim + d] = hn::GetLane(hn::NaN(DF()));
      }
    }
  }
}

}  // namespace rpa::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RPA_CPU_DECODE_BLOCK_INL_H_

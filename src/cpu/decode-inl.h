// The decode path: one query row per item (q_rows == 1) whose heads_per_kv (G)
// heads share every K and V load. Decode is memory-bound, so the kernel reads
// each live K/V row of the item's kv head exactly once, straight from its page,
// and keeps the per-key arithmetic (G dot products, G axpys) in registers.

#if defined(RPA_CPU_DECODE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RPA_CPU_DECODE_INL_H_
#undef RPA_CPU_DECODE_INL_H_
#else
#define RPA_CPU_DECODE_INL_H_
#endif

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "core/online_softmax.h"
#include "cpu/call.h"
#include "cpu/epilogue.h"
#include "cpu/load-inl.h"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace rpa::cpu::HWY_NAMESPACE {

// Keys per online-softmax step: scores of a block are computed, the state is
// rescaled once, then the block's V rows are accumulated. 32 amortizes the
// per-block reductions, exps and rescale of o (16 measured 3% slower) while
// a block's K and V rows of one kv head (16 KiB at head_dim 128) stay in L1.
inline constexpr int kDecodeKeys = 32;

// Query heads per register block: 4 heads x 2 keys of dot-product accumulators,
// or 4 heads x 2 vectors of o, leave room for the loads in 16 AVX2 registers.
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

#if HWY_TARGET == HWY_AVX2
// Lane i of the result is the sum of the 8 lanes of v[i], for 8 vectors: a
// tree of horizontal adds costs 9 instructions where 8 separate reductions
// cost about 40.
HWY_INLINE VF SumsOfEight(const VF* v) {
  const __m256 a = _mm256_hadd_ps(v[0].raw, v[1].raw);
  const __m256 b = _mm256_hadd_ps(v[2].raw, v[3].raw);
  const __m256 c = _mm256_hadd_ps(v[4].raw, v[5].raw);
  const __m256 d = _mm256_hadd_ps(v[6].raw, v[7].raw);
  // Each 128-bit half of ab holds the half-sums of v[0..3], of cd of v[4..7].
  const __m256 ab = _mm256_hadd_ps(a, b);
  const __m256 cd = _mm256_hadd_ps(c, d);
  return VF{
      _mm256_add_ps(_mm256_permute2f128_ps(ab, cd, 0x20), _mm256_permute2f128_ps(ab, cd, 0x31))};
}
#endif

// s[g * kDecodeKeys + n] = q_g . k_n for GB heads and KB keys; q in pair order.
template <int GB, int KB, typename T>
HWY_INLINE void DecodeScores(const float* HWY_RESTRICT q, int64_t dim, const T* const* k,
                             float* HWY_RESTRICT s) {
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
#if HWY_TARGET == HWY_AVX2
  if constexpr (GB * KB == 8) {
    alignas(32) float sums[8];
    hn::Store(SumsOfEight(&acc[0][0]), df, sums);
    for (int g = 0; g < GB; ++g) {
      for (int n = 0; n < KB; ++n) s[g * kDecodeKeys + n] = sums[g * KB + n];
    }
    return;
  }
#endif
  for (int g = 0; g < GB; ++g) {
    for (int n = 0; n < KB; ++n) {
      s[g * kDecodeKeys + n] = hn::GetLane(hn::SumOfLanes(df, acc[g][n]));
    }
  }
}

template <int GB, typename T>
HWY_INLINE void DecodeScoresBlock(const float* q, int64_t dim, const T* const* k, int nb,
                                  float* s) {
  int n = 0;
  for (; n + 2 <= nb; n += 2) DecodeScores<GB, 2>(q, dim, k + n, s + n);
  if (n < nb) DecodeScores<GB, 1>(q, dim, k + n, s + n);
}

// o_g[d, d + NV * lanes) = alpha_g * o_g + sum_n p[g][n] * v_n for GB heads;
// o in pair order. NV = 2 loads V by pairs, NV = 1 is the in-order tail.
template <int GB, int NV, typename T>
HWY_INLINE void DecodeAccumulate(const float* HWY_RESTRICT p, const T* const* v, int nb,
                                 const float* HWY_RESTRICT alpha, int64_t dim, int64_t d,
                                 float* HWY_RESTRICT o) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  VF acc[GB][NV];
  for (int g = 0; g < GB; ++g) {
    const VF a = hn::Set(df, alpha[g]);
    for (int j = 0; j < NV; ++j) acc[g][j] = hn::Mul(hn::LoadU(df, o + g * dim + d + j * lanes), a);
  }
  for (int n = 0; n < nb; ++n) {
    VF vv[NV];
    if constexpr (NV == 2) {
      LoadPair(df, v[n] + d, vv[0], vv[1]);
    } else {
      vv[0] = LoadF32(df, v[n] + d);
    }
    for (int g = 0; g < GB; ++g) {
      const VF pb = hn::Set(df, p[g * kDecodeKeys + n]);
      for (int j = 0; j < NV; ++j) acc[g][j] = hn::MulAdd(pb, vv[j], acc[g][j]);
    }
  }
  for (int g = 0; g < GB; ++g) {
    for (int j = 0; j < NV; ++j) hn::StoreU(acc[g][j], df, o + g * dim + d + j * lanes);
  }
}

template <int GB, typename T>
HWY_INLINE void DecodeAccumulateBlock(const float* p, const T* const* v, int nb, const float* alpha,
                                      int64_t dim, float* o) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(DF()));
  int64_t d = 0;
  for (; d + 2 * lanes <= dim; d += 2 * lanes) DecodeAccumulate<GB, 2>(p, v, nb, alpha, dim, d, o);
  if (d < dim) DecodeAccumulate<GB, 1>(p, v, nb, alpha, dim, d, o);
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

// Folds scores s[g][0, nb) of every head into the state: soft cap (cap > 0),
// m, l, the rescale factor alpha of o, and s becomes exp(s - m_new). The heads
// are walked twice so that their reductions and exps overlap instead of
// forming one long dependency chain per head.
HWY_INLINE void DecodeSoftmax(int64_t heads, int nb, float cap, const DecodeScratch& st) {
  const DF df;
  const int lanes = static_cast<int>(hn::Lanes(df));
  for (int64_t g = 0; g < heads; ++g) {
    float* s = st.s + g * kDecodeKeys;
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
    for (int n = 0; n < kDecodeKeys; n += lanes) {
      const VF p = hn::Exp(df, hn::Sub(hn::LoadU(df, s + n), shift));
      hn::StoreU(p, df, s + n);
      sum = hn::Add(sum, p);
    }
    st.l[g] = st.l[g] * st.alpha[g] + hn::GetLane(hn::SumOfLanes(df, sum));
  }
}

// Runs one decode task: the chains of one query row and split for several kv
// heads (call.h), key block by key block, each chain with its own state, so
// that every page is read contiguously once. Flushes every chain.
template <typename T>
void RunDecodeTask(const CpuCall& call, const Chain* chains, int32_t count,
                   const DecodeScratch& scratch) {
  const Problem& pb = *call.problem;
  const WorkItem& first = chains[0].items[0];
  const int64_t heads = pb.heads_per_kv;
  const int64_t dim = pb.head_dim;
  float tmp[kMaxHeadDim];
  for (int32_t c = 0; c < count; ++c) {
    const DecodeScratch st = scratch.shifted(c * heads, dim);
    for (int64_t g = 0; g < heads; ++g) {
      WidenRow(call.q.row<const T>(first.q_row, chains[c].items[0].kv_head, g), pb.scale, dim,
               st.q + g * dim);
      ToPairOrder<T>(st.q + g * dim, dim, tmp);
      st.m[g] = kNegInf;
      st.l[g] = 0.0f;
    }
    std::fill(st.o, st.o + heads * dim, 0.0f);
  }
  // The row sees keys [lo, hi): causal (hi <= seq_len) and the window.
  const int64_t hi = std::min<int64_t>(first.q_pos + 1, first.seq_len);
  const int64_t lo =
      pb.sliding_window > 0 ? std::max<int64_t>(0, first.q_pos - pb.sliding_window + 1) : 0;
  int64_t pages[kDecodeKeys], slots[kDecodeKeys];
  const T* k_rows[kDecodeKeys];
  const T* v_rows[kDecodeKeys];
  // Every chain of the task has the same items' key ranges (call.cc).
  for (int32_t it = 0; it < chains[0].count; ++it) {
    const WorkItem& item = chains[0].items[it];
    const int64_t begin = std::max<int64_t>(item.kv_begin, lo);
    const int64_t end = std::min<int64_t>(item.kv_end, hi);
    if (begin >= end) continue;
    KeyCursor cursor(*call.plan, item, begin);
    for (int64_t key = begin; key < end; key += kDecodeKeys) {
      const int nb = static_cast<int>(std::min<int64_t>(kDecodeKeys, end - key));
      for (int n = 0; n < nb; ++n, cursor.next()) {
        pages[n] = cursor.page();
        slots[n] = cursor.slot();
      }
      for (int32_t c = 0; c < count; ++c) {
        const DecodeScratch st = scratch.shifted(c * heads, dim);
        const int64_t h = chains[c].items[it].kv_head;
        for (int n = 0; n < nb; ++n) {
          k_rows[n] = call.k_cache.row<const T>(pages[n], slots[n], h);
          v_rows[n] = call.v_cache.row<const T>(pages[n], slots[n], h);
        }
        ForHeadBlocks(heads, [&](auto gb, int64_t g0) {
          DecodeScoresBlock<decltype(gb)::value>(st.q + g0 * dim, dim, k_rows, nb,
                                                 st.s + g0 * kDecodeKeys);
        });
        DecodeSoftmax(heads, nb, pb.logit_soft_cap, st);
        ForHeadBlocks(heads, [&](auto gb, int64_t g0) {
          DecodeAccumulateBlock<decltype(gb)::value>(st.s + g0 * kDecodeKeys, v_rows, nb,
                                                     st.alpha + g0, dim, st.o + g0 * dim);
        });
      }
    }
  }
  for (int32_t c = 0; c < count; ++c) {
    const DecodeScratch st = scratch.shifted(c * heads, dim);
    for (int64_t g = 0; g < heads; ++g) FromPairOrder<T>(st.o + g * dim, dim, tmp);
    flush_tile(call, chains[c].items[chains[c].count - 1], st.m, st.l, st.o);
  }
}

}  // namespace rpa::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RPA_CPU_DECODE_INL_H_

// The prefill path: a Q tile of q_rows rows x G heads against the K/V keys of
// its chain's items. Compute-bound, so each K/V chunk is widened to f32 once
// and then reused by every m-block of the tile from cache; the scores of an
// m-block stay transposed (tile_kernels-inl.h). f32 chunks are copied too: in
// place, a chunk's rows lie num_kv_heads * head_dim * 4 bytes apart (4 KiB for
// 8 x 128), all in the same few L1 sets, and the P V loop that revisits them
// for every block of rows ran 1.3x slower than on the copy.
//
// Masks: lane j of the tile sees keys [lo_j, hi_j) (causal diagonal, window,
// seq_len). For each (m-block, chunk) the keys are first clipped to the union
// of the block's lanes' ranges; only when the clipped chunk is not inside
// every lane's range does the softmax apply the per-lane mask.

#if defined(RPA_CPU_PREFILL_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RPA_CPU_PREFILL_INL_H_
#undef RPA_CPU_PREFILL_INL_H_
#else
#define RPA_CPU_PREFILL_INL_H_
#endif

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "core/online_softmax.h"
#include "cpu/call.h"
#include "cpu/epilogue-inl.h"
#include "cpu/exp-inl.h"
#include "cpu/load-inl.h"
#include "cpu/prefill_tile-inl.h"
#include "cpu/tile_kernels-inl.h"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace rpa::cpu::HWY_NAMESPACE {

// The softmax of an m-block folds the scores st[n][lane] of keys [key0, key0
// + nk) into the block's state: soft cap, mask (kMasked), new max m, rescale
// factor alpha, l; st becomes the probabilities exp(s - m). The scores come
// unscaled.
//
// m is lazy: a lane keeps its reference m while the new scores exceed it by
// at most kLazyMargin. p then reaches up to e^8, harmless in f32 and bf16,
// and alpha stays 1, so o is rescaled (rewritten) far less often. m, l and o
// stay one consistent state: out = o / l and lse = m + log l whichever m is
// used.
inline constexpr float kLazyMargin = 8.0f;

// x where lane j sees `key` (lo_m1[j] < key < hi[j]), -inf in the others.
HWY_INLINE VF SeenOnly(hn::Vec<DI> lo_m1, hn::Vec<DI> hi, int64_t key, VF x) {
  const DF df;
  const auto k = hn::Set(DI(), static_cast<int32_t>(key));
  const auto visible = hn::And(hn::Lt(lo_m1, k), hn::Lt(k, hi));
  return hn::IfThenElse(hn::RebindMask(df, visible), x, hn::Set(df, kNegInf));
}

// The softmax of one 16-lane half of an m-block, lanes [lane0, lane0 +
// lanes) whose scores st[n][...] start at s, in two passes: the max, then
// the probabilities.
template <bool kMasked, bool kCapped>
HWY_INLINE void TwoPassSoftmax(const PrefillScratch& st, int64_t lane0, float* s, int64_t key0,
                               int64_t nk, float scale, float cap) {
  const DF df;
  const DI di;
  const int64_t bl = BlockLanes();
  const VF neg_inf = hn::Set(df, kNegInf);
  const auto lo_m1 = hn::Load(di, st.lo_m1 + lane0);
  const auto hi = hn::Load(di, st.hi + lane0);
  VF vmax = neg_inf;
  // Without mask or cap the scores are read, not rewritten: the exponential
  // below scales them in its first multiply. (The scale may be negative, so
  // the max is of the scaled scores.)
  constexpr bool kPlain = !kMasked && !kCapped;
  if constexpr (kPlain) {
    // Four running maxima: one would wait out vmaxps's latency per key.
    const VF vscale = hn::Set(df, scale);
    VF v1 = neg_inf, v2 = neg_inf, v3 = neg_inf;
    int64_t n = 0;
    for (; n + 4 <= nk; n += 4) {
      vmax = hn::Max(vmax, hn::Mul(hn::Load(df, s + n * bl), vscale));
      v1 = hn::Max(v1, hn::Mul(hn::Load(df, s + (n + 1) * bl), vscale));
      v2 = hn::Max(v2, hn::Mul(hn::Load(df, s + (n + 2) * bl), vscale));
      v3 = hn::Max(v3, hn::Mul(hn::Load(df, s + (n + 3) * bl), vscale));
    }
    for (; n < nk; ++n) vmax = hn::Max(vmax, hn::Mul(hn::Load(df, s + n * bl), vscale));
    vmax = hn::Max(hn::Max(vmax, v1), hn::Max(v2, v3));
  } else {
    for (int64_t n = 0; n < nk; ++n) {
      VF x = hn::Mul(hn::Load(df, s + n * bl), hn::Set(df, scale));
      if constexpr (kCapped) {
        x = hn::Mul(hn::Set(df, cap), hn::Tanh(df, hn::Mul(x, hn::Set(df, 1.0f / cap))));
      }
      if constexpr (kMasked) x = SeenOnly(lo_m1, hi, key0 + n, x);
      hn::Store(x, df, s + n * bl);
      vmax = hn::Max(vmax, x);
    }
  }
  const VF m_old = hn::Load(df, st.m + lane0);
  VF m_new = hn::Max(m_old, vmax);
  // Keep m_old (finite) unless the block's max passes it by the margin.
  const auto keep = hn::And(hn::Lt(neg_inf, m_old),
                            hn::Le(m_new, hn::Add(m_old, hn::Set(df, kLazyMargin))));
  m_new = hn::IfThenElse(keep, m_old, m_new);
  // A lane that has seen no key yet keeps m = -inf; shifting it by 0 makes
  // its masked p = exp(-inf) = 0 and its alpha = 0 (never -inf - -inf).
  const VF shift = hn::IfThenZeroElse(hn::Eq(m_new, neg_inf), m_new);
  // A lane with no state yet (m_old = -inf) holds o = 0 (or NaN, from 0 times
  // a NaN in V): alpha = 1 leaves it as alpha = 0 would, and spares the AMX
  // path a pass over its o row.
  const VF alpha = hn::IfThenElse(hn::Eq(m_old, neg_inf), hn::Set(df, 1.0f),
                                  ExpNonPositive(df, hn::Sub(m_old, shift)));
  VF sum = hn::Zero(df);
  // exp(x - shift) = 2^(x log2 e - shift log2 e), with x = s * scale when plain.
  const VF x_log2e = hn::Set(df, kPlain ? scale * kLog2e : kLog2e);
  const VF shift_log2e = hn::Mul(shift, hn::Set(df, kLog2e));
  for (int64_t n = 0; n < nk; ++n) {
    const VF p = Exp2NonPositive(df, hn::MulSub(hn::Load(df, s + n * bl), x_log2e, shift_log2e));
    hn::Store(p, df, s + n * bl);
    sum = hn::Add(sum, p);
  }
  hn::Store(m_new, df, st.m + lane0);
  hn::Store(hn::MulAdd(hn::Load(df, st.l + lane0), alpha, sum), df, st.l + lane0);
  hn::Store(alpha, df, st.alpha + lane0);
}

// The softmax of m-block b without soft cap, in one pass over the scores
// where it can: once every lane has a state, the probabilities are taken
// against the lanes' m as the scores are read. At the first key that passes
// some lane's m by the margin, the rest of the keys are read for their max,
// the lanes past the margin move their m there, and the probabilities
// already written are scaled by the lanes' alpha (1 for the others, whose
// bits stay). The max pass read every block's scores from L2 once more (AMX
// prefill 8-12% slower, docs/benchmarks.md, session 12).
template <bool kMasked>
void BlockSoftmax(const PrefillScratch& st, int64_t b, int64_t key0, int64_t nk, float scale) {
  const DF df;
  const DI di;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t bl = BlockLanes();
  const VF neg_inf = hn::Set(df, kNegInf);
  const VF scale_log2e = hn::Set(df, scale * kLog2e);
  for (int64_t half = 0; half < 2; ++half) {
    const int64_t lane0 = b * bl + half * lanes;
    float* s = st.st + half * lanes;
    const VF m_old = hn::Load(df, st.m + lane0);
    if (!hn::AllTrue(df, hn::Lt(neg_inf, m_old))) {
      TwoPassSoftmax<kMasked, false>(st, lane0, s, key0, nk, scale, 0.0f);
      continue;
    }
    const auto lo_m1 = hn::Load(di, st.lo_m1 + lane0);
    const auto hi = hn::Load(di, st.hi + lane0);
    // t = (s scale - shift) log2 e, -inf where the lane does not see the key.
    auto exponent = [&](int64_t n, VF shift_log2e) {
      VF t = hn::MulSub(hn::Load(df, s + n * bl), scale_log2e, shift_log2e);
      if constexpr (kMasked) t = SeenOnly(lo_m1, hi, key0 + n, t);
      return t;
    };
    VF shift_log2e = hn::Mul(m_old, hn::Set(df, kLog2e));
    const VF limit = hn::Set(df, kLazyMargin * kLog2e);
    VF sum = hn::Zero(df);
    int64_t n = 0;
    for (; n < nk; ++n) {
      const VF t = exponent(n, shift_log2e);
      if (!hn::AllTrue(df, hn::Le(t, limit))) break;  // past the margin, or NaN
      const VF p = Exp2NonPositive(df, t);
      hn::Store(p, df, s + n * bl);
      sum = hn::Add(sum, p);
    }
    VF m_new = m_old, alpha = hn::Set(df, 1.0f);
    if (n < nk) {
      // The scaled max of the keys left; the keys before n are within the
      // margin of every lane's m.
      VF vmax = neg_inf;
      for (int64_t j = n; j < nk; ++j) {
        VF x = hn::Mul(hn::Load(df, s + j * bl), hn::Set(df, scale));
        if constexpr (kMasked) x = SeenOnly(lo_m1, hi, key0 + j, x);
        vmax = hn::Max(vmax, x);
      }
      const auto keep = hn::Le(hn::Max(m_old, vmax), hn::Add(m_old, hn::Set(df, kLazyMargin)));
      m_new = hn::IfThenElse(keep, m_old, hn::Max(m_old, vmax));
      alpha = hn::IfThenElse(keep, alpha, ExpNonPositive(df, hn::Sub(m_old, m_new)));
      for (int64_t j = 0; j < n; ++j) {
        hn::Store(hn::Mul(hn::Load(df, s + j * bl), alpha), df, s + j * bl);
      }
      sum = hn::Mul(sum, alpha);
      shift_log2e = hn::Mul(m_new, hn::Set(df, kLog2e));
      for (; n < nk; ++n) {
        const VF p = Exp2NonPositive(df, exponent(n, shift_log2e));
        hn::Store(p, df, s + n * bl);
        sum = hn::Add(sum, p);
      }
    }
    hn::Store(m_new, df, st.m + lane0);
    hn::Store(hn::MulAdd(hn::Load(df, st.l + lane0), alpha, sum), df, st.l + lane0);
    hn::Store(alpha, df, st.alpha + lane0);
  }
}

// The softmax of m-block b over the keys [begin, end) whose scores st.st
// holds from its first row on: the per-lane mask only where the range is not
// inside every lane's, the soft cap only where the call asks for one.
HWY_INLINE void ClippedBlockSoftmax(const Problem& pb, const PrefillScratch& st, int64_t b,
                                    int64_t begin, int64_t end) {
  const int32_t* bounds = st.bounds + 4 * b;
  const bool masked = begin < bounds[2] || end > bounds[3];
  const int64_t nk = end - begin;
  if (pb.logit_soft_cap <= 0.0f) {
    masked ? BlockSoftmax<true>(st, b, begin, nk, pb.scale)
           : BlockSoftmax<false>(st, b, begin, nk, pb.scale);
    return;
  }
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(DF()));
  for (int64_t half = 0; half < 2; ++half) {
    const int64_t lane0 = b * BlockLanes() + half * lanes;
    float* s = st.st + half * lanes;
    masked ? TwoPassSoftmax<true, true>(st, lane0, s, begin, nk, pb.scale, pb.logit_soft_cap)
           : TwoPassSoftmax<false, true>(st, lane0, s, begin, nk, pb.scale, pb.logit_soft_cap);
  }
}

// One m-block against one chunk of keys [c0, c0 + nc) whose V rows are v[];
// scores(first, nk, st) computes the unscaled scores of chunk keys
// [first, first + nk) against m-block b into st.
template <typename ScoresFn>
HWY_INLINE void BlockChunk(const Problem& pb, const PrefillScratch& st, int64_t b, int64_t rows,
                           int64_t c0, int64_t nc, const ScoresFn& scores, const float* const* v) {
  const int32_t* bounds = st.bounds + 4 * b;
  const int64_t begin = std::max<int64_t>(c0, bounds[0]);
  const int64_t end = std::min<int64_t>(c0 + nc, bounds[1]);
  if (begin >= end) return;
  const int64_t nk = end - begin;
  const int64_t bl = BlockLanes();
  scores(b, begin - c0, nk);
  ClippedBlockSoftmax(pb, st, b, begin, end);
  Accumulate(st.st, v + (begin - c0), nk, st.alpha + b * bl, std::min(bl, rows - b * bl),
             pb.head_dim, st.o + b * bl * pb.head_dim);
}

// Widens one cache row to f32; an fp8 row is also dequantized by `scale`.
template <typename T>
HWY_INLINE void WidenCacheRow(const T* HWY_RESTRICT row, float scale, int64_t dim,
                              float* HWY_RESTRICT dst) {
  if constexpr (kQuantized<T>) {
    const DF df;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
    const VF vscale = hn::Set(df, scale);
    for (int64_t d = 0; d < dim; d += lanes) {
      hn::StoreU(hn::Mul(rpa::HWY_NAMESPACE::LoadFp8(df, row + d), vscale), df, dst + d);
    }
  } else {
    WidenRow(row, dim, dst);
  }
}

// Runs one prefill chain: a Q tile against its items' keys, then the flush.
// TQ is q's element type, T the caches'.
template <typename TQ, typename T>
void RunPrefillChain(const CpuCall& call, const Chain& chain, const PrefillScratch& st) {
  const Problem& pb = *call.problem;
  const WorkItem& first = chain.items[0];
  const int64_t dim = pb.head_dim;
  const int64_t h = first.kv_head;
  const int64_t rows = int64_t{first.q_rows} * pb.heads_per_kv;
  const int64_t blocks = (rows + BlockLanes() - 1) / BlockLanes();
  // fp8 rows are dequantized as they are widened, once per chunk.
  const float k_scale = pb.k_scale_of(h);
  const float v_scale = pb.v_scale_of(h);
  PackTile<TQ>(call, first, rows, blocks, st);
  // Keys no lane of the tile sees are never read.
  const int64_t tile_lo = st.bounds[0];
  const int64_t tile_hi = st.bounds[4 * (blocks - 1) + 1];
  const float* k_rows[kChunkKeys];
  const float* v_rows[kChunkKeys];
  auto widened_scores = [&](int64_t b, int64_t first_key, int64_t nk) {
    Scores(st.qt + b * dim * BlockLanes(), k_rows + first_key, nk, dim, st.st);
  };
#if RPA_CPU_BF16_DOT_TARGET
  // With vdpbf16ps, bf16 K rows are scored in place and only V is widened.
  constexpr bool kBF16 = std::is_same_v<TQ, hwy::bfloat16_t> && std::is_same_v<T, TQ>;
  const bool dot = kBF16 && call.bf16_dot;
  const uint16_t* k_pairs[kChunkKeys];
  auto bf16_scores = [&](int64_t b, int64_t first_key, int64_t nk) {
    ScoresBF16(st.qp + b * dim * BlockLanes(), k_pairs + first_key, nk, dim, st.st);
  };
#endif
  ForEachChunk<T>(call, chain, tile_lo, tile_hi,
                  [&](int64_t c0, int64_t nc, const T* const* k, const T* const* v) {
    for (int64_t n = 0; n < nc; ++n) {
      WidenCacheRow(v[n], v_scale, dim, st.v + n * dim);
      v_rows[n] = st.v + n * dim;
#if RPA_CPU_BF16_DOT_TARGET
      if (dot) {
        k_pairs[n] = reinterpret_cast<const uint16_t*>(k[n]);
        continue;
      }
#endif
      WidenCacheRow(k[n], k_scale, dim, st.k + n * dim);
      k_rows[n] = st.k + n * dim;
    }
    for (int64_t b = 0; b < blocks; ++b) {
#if RPA_CPU_BF16_DOT_TARGET
      if (dot) {
        BlockChunk(pb, st, b, rows, c0, nc, bf16_scores, v_rows);
        continue;
      }
#endif
      BlockChunk(pb, st, b, rows, c0, nc, widened_scores, v_rows);
    }
  });
  flush_tile(call, chain.items[chain.count - 1], st.m, st.l, st.o);
}

}  // namespace rpa::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RPA_CPU_PREFILL_INL_H_

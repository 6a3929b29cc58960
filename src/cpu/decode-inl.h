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
#include "hwy/cache_control.h"
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

// Bytes per prefetch: the cache line of x86 and of most Arm cores.
inline constexpr int64_t kCacheLine = 64;

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

// The K and V rows to prefetch while a chain computes a key block: its rows of
// the next block, row n at k[n] + k_offset and v[n] + v_offset.
template <typename T>
struct AheadRows {
  const T* const* k = nullptr;
  const T* const* v = nullptr;
  int64_t k_offset = 0;
  int64_t v_offset = 0;
  int count = 0;
};

template <typename T>
HWY_INLINE void PrefetchRow(const T* row, int64_t dim) {
  const char* bytes = reinterpret_cast<const char*>(row);
  const int64_t size = dim * static_cast<int64_t>(sizeof(T));
  for (int64_t b = 0; b < size; b += kCacheLine) hwy::Prefetch(bytes + b);
}

// Scores of a block, pair of keys by pair of keys, each pair followed by the
// prefetch of the same keys' K rows of the next block. The V rows are
// prefetched during the accumulation (DecodeAccumulateBlock): spread evenly
// through all the FMAs of a block, the prefetches keep DRAM busy all along,
// where a burst of them in the scores alone filled the miss buffers and
// stalled the core, and left DRAM idle during the accumulation (decode-long
// single thread: 11% faster spread than in a burst).
template <int GB, typename T>
HWY_INLINE void DecodeScoresBlock(const float* q, int64_t dim, const T* const* k, int nb, float* s,
                                  const AheadRows<T>& ahead) {
  for (int n = 0; n < std::max(nb, ahead.count); n += 2) {
    if (n + 2 <= nb) {
      DecodeScores<GB, 2>(q, dim, k + n, s + n);
    } else if (n < nb) {
      DecodeScores<GB, 1>(q, dim, k + n, s + n);
    }
    for (int j = n; j < std::min(n + 2, ahead.count); ++j) {
      PrefetchRow(ahead.k[j] + ahead.k_offset, dim);
    }
  }
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

// The accumulation of a block, head_dim slice by slice, each slice followed by
// the prefetch of an equal share of the next block's V rows.
template <int GB, typename T>
HWY_INLINE void DecodeAccumulateBlock(const float* p, const T* const* v, int nb, const float* alpha,
                                      int64_t dim, float* o, const AheadRows<T>& ahead) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(DF()));
  const int64_t steps = (dim + 2 * lanes - 1) / (2 * lanes);
  const int per_step = static_cast<int>((ahead.count + steps - 1) / steps);
  int next = 0;
  int64_t d = 0;
  for (; d + 2 * lanes <= dim; d += 2 * lanes) {
    DecodeAccumulate<GB, 2>(p, v, nb, alpha, dim, d, o);
    for (const int end = std::min(next + per_step, ahead.count); next < end; ++next)
      PrefetchRow(ahead.v[next] + ahead.v_offset, dim);
  }
  if (d < dim) DecodeAccumulate<GB, 1>(p, v, nb, alpha, dim, d, o);
  for (; next < ahead.count; ++next) PrefetchRow(ahead.v[next] + ahead.v_offset, dim);
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
      const VF p = hn::Exp(df, hn::Sub(hn::LoadU(df, s + n), shift));
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
HWY_INLINE void RestoreNaNScores(const T* const* k, int nb, int64_t heads, int64_t dim,
                                 float* s) {
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
HWY_INLINE void RestoreNaNOutputs(const T* const* v, int nb, int64_t heads, int64_t dim,
                                  float* o) {
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

// One block of at most kDecodeKeys keys of a decode task: the K and V rows of
// kv head 0 of each key (kv head h's are h rows further), and the index in its
// chain of the item the keys belong to.
template <typename T>
struct KeyBlock {
  int32_t item = 0;
  int count = 0;
  const T* k[kDecodeKeys];
  const T* v[kDecodeKeys];
};

// Walks the key blocks of a decode task in order. Every chain of a task reads
// the same keys of the same items (call.cc), so one walk over the first
// chain's items serves them all.
template <typename T>
class KeyBlocks {
 public:
  KeyBlocks(const CpuCall& call, const Chain& chain, int64_t lo, int64_t hi)
      : call_(call),
        chain_(chain),
        lo_(lo),
        hi_(hi),
        cursor_(*call.plan, chain.items[0], chain.items[0].kv_begin) {}

  // Fills `block` with the next block; false once every key has been walked.
  bool next(KeyBlock<T>* block) {
    while (key_ >= end_) {
      if (++item_ >= chain_.count) return false;
      const WorkItem& item = chain_.items[item_];
      key_ = std::max<int64_t>(item.kv_begin, lo_);
      end_ = std::min<int64_t>(item.kv_end, hi_);
      if (key_ < end_) cursor_ = KeyCursor(*call_.plan, item, key_);
    }
    block->item = item_;
    block->count = static_cast<int>(std::min<int64_t>(kDecodeKeys, end_ - key_));
    for (int n = 0; n < block->count; ++n, cursor_.next()) {
      block->k[n] = call_.k_cache.row<const T>(cursor_.page(), cursor_.slot(), 0);
      block->v[n] = call_.v_cache.row<const T>(cursor_.page(), cursor_.slot(), 0);
    }
    key_ += block->count;
    return true;
  }

 private:
  const CpuCall& call_;
  const Chain& chain_;
  int64_t lo_, hi_;
  int32_t item_ = -1;
  int64_t key_ = 0, end_ = 0;
  KeyCursor cursor_;
};

// Runs one decode task: the chains of one query row and split for several kv
// heads (call.h), key block by key block, each chain with its own state, so
// that every page is read contiguously once. Flushes every chain. TQ is q's
// element type, T the caches'.
//
// An fp8 head's scales are folded out of the key loop: q . (k * k_scale) is
// (q * k_scale) . k, and sum p (v * v_scale) is v_scale * sum p v, so the K
// scale rides on q and the V scale is applied once to o before the flush;
// the 2^-120 of the raw fp8 decode is undone likewise, 2^60 on q, 2^60 on
// the scores and p (DecodeSoftmax), 2^60 on o.
template <typename TQ, typename T>
void RunDecodeTask(const CpuCall& call, const Chain* chains, int32_t count,
                   const DecodeScratch& scratch) {
  const Problem& pb = *call.problem;
  const WorkItem& first = chains[0].items[0];
  const int64_t heads = pb.heads_per_kv;
  const int64_t dim = pb.head_dim;
  float tmp[kMaxHeadDim];
  for (int32_t c = 0; c < count; ++c) {
    const DecodeScratch st = scratch.shifted(c * heads, dim);
    const int64_t h = chains[c].items[0].kv_head;
    const float k_factor = kQuantized<T> ? pb.k_scale_of(h) * kFp8RawHalfFactor : 1.0f;
    for (int64_t g = 0; g < heads; ++g) {
      WidenRow(call.q.row<const TQ>(first.q_row, h, g), pb.scale * k_factor, dim, st.q + g * dim);
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
  const int64_t k_head_stride = call.k_cache.s[2];
  const int64_t v_head_stride = call.v_cache.s[2];
  const T* k_rows[kDecodeKeys];
  const T* v_rows[kDecodeKeys];
  KeyBlocks<T> walk(call, chains[0], lo, hi);
  KeyBlock<T> blocks[2];
  bool more = walk.next(&blocks[0]);
  for (int cur = 0; more; cur ^= 1) {
    const KeyBlock<T>& block = blocks[cur];
    const KeyBlock<T>& ahead = blocks[cur ^ 1];
    more = walk.next(&blocks[cur ^ 1]);
    // A software prefetch that misses the TLB is dropped (measured on Zen 3
    // with 4 KiB pages: prefetching the next block gained nothing until the
    // pool sat on huge pages). One demand load per row of the next block walks
    // its pages into the TLB now, so that the prefetches below land; these
    // loads miss together, costing one DRAM latency per block.
    const int ahead_count = more ? ahead.count : 0;
    const int64_t h_touch = chains[0].items[ahead.item].kv_head;
    for (int n = 0; n < ahead_count; ++n) {
      static_cast<void>(
          *reinterpret_cast<const volatile char*>(ahead.k[n] + h_touch * k_head_stride));
      static_cast<void>(
          *reinterpret_cast<const volatile char*>(ahead.v[n] + h_touch * v_head_stride));
    }
    const int nb = block.count;
    for (int32_t c = 0; c < count; ++c) {
      const DecodeScratch st = scratch.shifted(c * heads, dim);
      const int64_t h = chains[c].items[block.item].kv_head;
      for (int n = 0; n < nb; ++n) {
        k_rows[n] = block.k[n] + h * k_head_stride;
        v_rows[n] = block.v[n] + h * v_head_stride;
      }
      const int64_t h_ahead = chains[c].items[ahead.item].kv_head;
      const AheadRows<T> ahead_rows{ahead.k, ahead.v, h_ahead * k_head_stride,
                                    h_ahead * v_head_stride, ahead_count};
      ForHeadBlocks(heads, [&](auto gb, int64_t g0) {
        DecodeScoresBlock<decltype(gb)::value>(st.q + g0 * dim, dim, k_rows, nb,
                                               st.s + g0 * kDecodeKeys,
                                               g0 == 0 ? ahead_rows : AheadRows<T>{});
      });
      RestoreNaNScores(k_rows, nb, heads, dim, st.s);
      DecodeSoftmax(heads, nb, pb.logit_soft_cap, kQuantized<T> ? kFp8RawHalfFactor : 1.0f, st);
      ForHeadBlocks(heads, [&](auto gb, int64_t g0) {
        DecodeAccumulateBlock<decltype(gb)::value>(st.s + g0 * kDecodeKeys, v_rows, nb,
                                                   st.alpha + g0, dim, st.o + g0 * dim,
                                                   g0 == 0 ? ahead_rows : AheadRows<T>{});
      });
      RestoreNaNOutputs(v_rows, nb, heads, dim, st.o);
    }
  }
  for (int32_t c = 0; c < count; ++c) {
    const DecodeScratch st = scratch.shifted(c * heads, dim);
    for (int64_t g = 0; g < heads; ++g) FromPairOrder<T>(st.o + g * dim, dim, tmp);
    if constexpr (kQuantized<T>) {
      const float v_factor = pb.v_scale_of(chains[c].items[0].kv_head) * kFp8RawHalfFactor;
      for (int64_t i = 0; i < heads * dim; ++i) st.o[i] *= v_factor;
    }
    flush_tile(call, chains[c].items[chains[c].count - 1], st.m, st.l, st.o);
  }
}

}  // namespace rpa::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RPA_CPU_DECODE_INL_H_

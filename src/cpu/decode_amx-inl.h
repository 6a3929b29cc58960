// The decode path of bf16 q on CPUs with AMX-BF16 (CpuCall::amx_decode): the
// key blocks and online softmax of decode-inl.h, with both products on tiles
// (amx_decode_tiles.h). With bf16 caches the tiles load straight from the
// pages: a block's run of 16 keys that lies in one page is read in place;
// one that does not (a row's first or last block, pages of fewer than 16
// keys) is copied first, zero past the row's keys. The copy changes where
// the tile reads, not what it computes: results do not depend on where pages
// lie. fp8 caches are widened run by run to bf16, exactly, and their scales
// applied outside the tiles (decode-long fp8 9.8-10.4 ms against 11.9-13.5
// on the FMA path, in cache 24.7 against 41 ns per (key, kv head): Intel
// Xeon, session 10).
//
// Against the FMA path this takes the per-key arithmetic off the vector
// units, whose 27-32 ns per (key, kv head) overlapped the 37 ns of DRAM time
// only in part: in cache 21-23 ns, decode-long 12.1-12.7 ms against 14.1
// (Intel Xeon, docs/benchmarks.md, session 8). As in the AMX prefill, P is
// rounded to bf16 for P V and m and l stay f32 from the unrounded
// probabilities; the scores are exact bf16 products summed in f32, scaled
// after.
//
// Only the AVX-512 targets compile it (16 f32 lanes, which the softmax
// below assumes): every AMX CPU has AVX-512.

#if defined(RPA_CPU_DECODE_AMX_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RPA_CPU_DECODE_AMX_INL_H_
#undef RPA_CPU_DECODE_AMX_INL_H_
#else
#define RPA_CPU_DECODE_AMX_INL_H_
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/fp8.h"
#include "core/online_softmax.h"
#include "core/row_mask.h"
#include "cpu/amx_decode_tiles.h"
#include "cpu/amx_tiles.h"
#include "cpu/bf16_dot-inl.h"
#include "cpu/call.h"
#include "cpu/epilogue-inl.h"
#include "cpu/exp-inl.h"
#include "cpu/key_blocks.h"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace rpa::cpu::HWY_NAMESPACE {

// G rounded up to a power of two: the score columns, so that a vector of 16
// scores holds whole keys.
inline int64_t AmxDecodePaddedHeads(int64_t heads) {
  int64_t padded = 1;
  while (padded < heads) padded *= 2;
  return padded;
}

// Per-thread scratch of the AMX decode path, per chain (kv head) of a task
// and per task. Every array starts on a 64-byte boundary.
struct AmxDecodeScratch {
  struct PerChain {
    uint32_t* qv;  // [head_dim / 32][16][Gp]: q in B-tile order
    float* o;      // [head_dim / 32][2 G][16]: unnormalized output, tile order
    float* s;      // [kDecodeKeys][Gp]: scores, then probabilities
    uint32_t* pa;  // [2][2 G][16]: the block's P as A tiles
    float* m;      // [G]
    float* l;      // [G]
    float* alpha;  // [G]
    float* shift;  // [G]
  };
  float* base = nullptr;
  int64_t heads = 0, padded = 0, dim = 0;
  uint16_t* rows = nullptr;  // [kDecodeKeys][head_dim]: a copied or widened run's rows

  static int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }
  static int64_t chain_floats(int64_t heads, int64_t padded, int64_t dim) {
    return round16(dim / 2 * padded) + round16(heads * dim) + round16(kDecodeKeys * padded) +
           round16(4 * heads * kAmxDecodeRun) + 4 * round16(heads);
  }
  static int64_t floats(int64_t chains, int64_t heads, int64_t dim) {
    const int64_t padded = AmxDecodePaddedHeads(heads);
    return round16(kDecodeKeys * dim / 2) + chains * chain_floats(heads, padded, dim);
  }
  static AmxDecodeScratch carve(float* p, int64_t heads, int64_t dim) {
    AmxDecodeScratch st;
    st.heads = heads;
    st.padded = AmxDecodePaddedHeads(heads);
    st.dim = dim;
    st.rows = reinterpret_cast<uint16_t*>(p);
    st.base = p + round16(kDecodeKeys * dim / 2);
    return st;
  }
  PerChain chain(int64_t c) const {
    float* p = base + c * chain_floats(heads, padded, dim);
    PerChain ch;
    ch.qv = reinterpret_cast<uint32_t*>(p);
    p += round16(dim / 2 * padded);
    ch.o = p;
    p += round16(heads * dim);
    ch.s = p;
    p += round16(kDecodeKeys * padded);
    ch.pa = reinterpret_cast<uint32_t*>(p);
    p += round16(4 * heads * kAmxDecodeRun);
    ch.m = p;
    ch.l = p + round16(heads);
    ch.alpha = p + 2 * round16(heads);
    ch.shift = p + 3 * round16(heads);
    return ch;
  }
};

// The element types the AMX decode takes: bf16 q, bf16 or fp8 caches.
template <typename TQ, typename T>
inline constexpr bool kAmxDecodeTypes = std::is_same_v<TQ, hwy::bfloat16_t> &&
                                        (std::is_same_v<T, TQ> || std::is_same_v<T, Fp8E4M3>);

// Whether decode tasks of these element types run on AMX tiles in this call.
template <typename TQ, typename T>
HWY_INLINE bool UsesAmxDecode(const CpuCall& call) {
#if RPA_CPU_BF16_DOT_TARGET
  return kAmxDecodeTypes<TQ, T> && call.amx_decode;
#else
  (void)call;
  return false;
#endif
}

#if RPA_CPU_BF16_DOT_TARGET

// Where a run of 16 keys of a block is read from: in place when its rows lie
// `slot_stride` elements apart (one page), else from `copy`, its live rows
// copied and the rest zero. `rows` are kv head 0's; `offset` moves to the
// chain's kv head.
struct AmxRun {
  const uint16_t* rows;
  int64_t stride_bytes;
};

// The rows of a pass unit: a chain's K or V rows of a block (kv head 0's
// rows moved by offset); the unit after the current one is requested ahead.
template <typename T>
struct AheadRows {
  const T* const* rows = nullptr;
  int nb = 0;
  int64_t offset = 0;
};

inline AmxRun AmxRunOf(const hwy::bfloat16_t* const* rows, int nb, int run, int64_t slot_stride,
                       int64_t offset, int64_t dim, uint16_t* copy,
                       const AheadRows<hwy::bfloat16_t>& /*ahead*/) {
  const int first = run * static_cast<int>(kAmxDecodeRun);
  const auto* start = reinterpret_cast<const uint16_t*>(rows[first]);
  bool in_place = first + kAmxDecodeRun <= nb;
  for (int n = 1; in_place && n < kAmxDecodeRun; ++n) {
    in_place = reinterpret_cast<const uint16_t*>(rows[first + n]) == start + n * slot_stride;
  }
  if (in_place) return {start + offset, slot_stride * 2};
  for (int n = 0; n < kAmxDecodeRun; ++n) {
    uint16_t* dst = copy + n * dim;
    if (first + n < nb) {
      std::memcpy(dst, reinterpret_cast<const uint16_t*>(rows[first + n]) + offset,
                  static_cast<size_t>(dim) * 2);
    } else {
      std::fill(dst, dst + dim, uint16_t{0});
    }
  }
  return {copy, dim * 2};
}

// fp8 caches: a run is always widened, exactly, into `copy`, and the next
// unit's rows are requested (into L1) row by row between the widening of
// this run's rows: spread out, they no longer stall the loop the way a burst
// of requests did (decode-long fp8, Intel Xeon, 2 threads: 10.4-11.4 ms
// against 11.9-12.5 with RequestRows' burst; docs/benchmarks.md).
inline AmxRun AmxRunOf(const Fp8E4M3* const* rows, int nb, int run, int64_t /*slot_stride*/,
                       int64_t offset, int64_t dim, uint16_t* copy,
                       const AheadRows<Fp8E4M3>& ahead) {
  const int first = run * static_cast<int>(kAmxDecodeRun);
  const uint8_t* run_rows[kAmxDecodeRun];
  const uint8_t* ahead_rows[kAmxDecodeRun];
  for (int n = 0; n < kAmxDecodeRun; ++n) {
    run_rows[n] = first + n < nb ? &(rows[first + n] + offset)->bits : nullptr;
    ahead_rows[n] = first + n < ahead.nb ? &(ahead.rows[first + n] + ahead.offset)->bits : nullptr;
  }
  amx_decode_widen_fp8(run_rows, kAmxDecodeRun, dim, copy, dim, ahead_rows);
  return {copy, dim * 2};
}

// Asks for the lines of one chain's rows of a block (kv head 0's rows moved
// by `offset`) into L2, one chain's tile products ahead of their tile loads:
// a tile product waits for all 16 rows of its tile, and the tile unit runs
// in order, so without the request each chain's first loads stall on DRAM.
// (decode-long, Intel Xeon, 2 threads: 12.1-12.5 ms against 12.7-12.8
// without in one sitting, 12.6 against 14.3-15.0 in another; a whole block
// ahead did no better, two chains ahead worse: docs/benchmarks.md.)
inline void RequestRows(const hwy::bfloat16_t* const* rows, int nb, int64_t offset, int64_t dim) {
  for (int n = 0; n < nb; ++n) {
    const char* row = reinterpret_cast<const char*>(rows[n] + offset);
    for (int64_t byte = 0; byte < dim * 2; byte += 64) __builtin_prefetch(row + byte, 0, 2);
  }
}

// The lane indices of RotateLanes by 8, 4, 2 and 1, as constants: built on
// the stack per call, each index vector's load waited for 16 scalar stores.
struct RotateIndices {
  alignas(64) int32_t lanes[4][16];
};
constexpr RotateIndices MakeRotateIndices() {
  RotateIndices r{};
  for (int k = 0; k < 4; ++k) {
    for (int i = 0; i < 16; ++i) r.lanes[k][i] = (i + (8 >> k)) & 15;
  }
  return r;
}
inline constexpr RotateIndices kRotateIndices = MakeRotateIndices();

// Lane i of the result holds lane (i + shift) mod 16 of v; shift is 8, 4, 2
// or 1.
HWY_INLINE VF RotateLanes(VF v, int shift) {
  const DF df;
  const int k = shift == 8 ? 0 : shift == 4 ? 1 : shift == 2 ? 2 : 3;
  return hn::TableLookupLanes(v, hn::SetTableIndices(df, kRotateIndices.lanes[k]));
}

// Folds the online-softmax state of one chain over a block's scores
// s[n][Gp] (keys n < nb live): scale, soft cap, m, l, alpha, and s becomes
// exp(s - m_new). Vectors of 16 scores hold 16 / Gp whole keys, so the
// per-head reductions are vertical, then folded across the keys of a vector.
HWY_INLINE void AmxDecodeSoftmax(const AmxDecodeScratch::PerChain& ch, int64_t heads,
                                 int64_t padded, int nb, float scale, float cap) {
  const DF df;
  constexpr int kLanes = 16;
  const int vectors = static_cast<int>(kDecodeKeys * padded / kLanes);
  const int live = nb * static_cast<int>(padded);
  const VF neg_inf = hn::Set(df, kNegInf);
  VF vmax = neg_inf;
  for (int i = 0; i < vectors; ++i) {
    VF x = hn::Mul(hn::LoadU(df, ch.s + i * kLanes), hn::Set(df, scale));
    if (cap > 0.0f)
      x = hn::Mul(hn::Set(df, cap), hn::Tanh(df, hn::Mul(x, hn::Set(df, 1.0f / cap))));
    x = hn::IfThenElse(
        hn::FirstN(df, static_cast<size_t>(std::clamp(live - i * kLanes, 0, kLanes))), x, neg_inf);
    hn::StoreU(x, df, ch.s + i * kLanes);
    vmax = hn::Max(vmax, x);
  }
  for (int s = kLanes / 2; s >= padded; s /= 2) vmax = hn::Max(vmax, RotateLanes(vmax, s));
  alignas(64) float lanes[kLanes];
  hn::Store(vmax, df, lanes);
  alignas(64) float shift_of_lane[kLanes];
  for (int64_t g = 0; g < padded; ++g) {
    float shift = 0.0f;
    if (g < heads) {
      const float m_new = std::max(ch.m[g], lanes[g]);
      // A state that saw only -inf keeps m = -inf; shifting by 0 then gives p = 0.
      shift = m_new == kNegInf ? 0.0f : m_new;
      ch.shift[g] = shift;
      ch.alpha[g] = rescale_factor(ch.m[g], m_new);
      ch.m[g] = m_new;
    }
    for (int i = static_cast<int>(g); i < kLanes; i += static_cast<int>(padded))
      shift_of_lane[i] = shift;
  }
  const VF shift = hn::Load(df, shift_of_lane);
  VF sum = hn::Zero(df);
  for (int i = 0; i < vectors; ++i) {
    const VF p = ExpNonPositive(df, hn::Sub(hn::LoadU(df, ch.s + i * kLanes), shift));
    hn::StoreU(p, df, ch.s + i * kLanes);
    sum = hn::Add(sum, p);
  }
  for (int s = kLanes / 2; s >= padded; s /= 2) sum = hn::Add(sum, RotateLanes(sum, s));
  hn::Store(sum, df, lanes);
  for (int64_t g = 0; g < heads; ++g) ch.l[g] = ch.l[g] * ch.alpha[g] + lanes[g];
}

// o *= alpha per head, in tile order (rows 2 h and 2 h + 1 are head h's).
HWY_INLINE void AmxDecodeRescale(const AmxDecodeScratch::PerChain& ch, int64_t heads, int64_t dim) {
  const DF df;
  for (int64_t g = 0; g < heads; ++g) {
    if (ch.alpha[g] == 1.0f) continue;
    const VF a = hn::Set(df, ch.alpha[g]);
    for (int64_t c = 0; c < dim / 32; ++c) {
      float* row = ch.o + (c * 2 * heads + 2 * g) * kAmxDecodeRun;
      hn::StoreU(hn::Mul(hn::LoadU(df, row), a), df, row);
      hn::StoreU(hn::Mul(hn::LoadU(df, row + 16), a), df, row + 16);
    }
  }
}

// Runs one decode task of bf16 q and bf16 or fp8 caches (T) on AMX tiles
// (RunDecodeTask's walk, state and flush): per key block, the scores of every
// chain (the K pass), their softmax, then the accumulation of every chain
// (the V pass). fp8's scales stay out of the tiles: K's multiplies the
// scores with the softmax scale, V's the output before the flush.
template <typename T>
HWY_NOINLINE void RunDecodeTaskAmx(const CpuCall& call, const Chain* chains, int32_t count,
                                   const AmxDecodeScratch& st) {
  const Problem& pb = *call.problem;
  const WorkItem& first = chains[0].items[0];
  const int64_t heads = pb.heads_per_kv;
  const int64_t padded = st.padded;
  const int64_t dim = pb.head_dim;
  for (int32_t c = 0; c < count; ++c) {
    const AmxDecodeScratch::PerChain ch = st.chain(c);
    const int64_t h = chains[c].items[0].kv_head;
    // Word `pair` of a bf16 row is dims 2 pair, +1: row r of block c is pair 16 c + r.
    std::fill(ch.qv, ch.qv + dim / 2 * padded, 0u);
    for (int64_t g = 0; g < heads; ++g) {
      const uint16_t* q = call.q.row<const uint16_t>(first.q_row, h, g);
      for (int64_t pair = 0; pair < dim / 2; ++pair) {
        std::memcpy(ch.qv + pair * padded + g, q + 2 * pair, sizeof(uint32_t));
      }
    }
    std::fill(ch.m, ch.m + heads, kNegInf);
    std::fill(ch.l, ch.l + heads, 0.0f);
    std::fill(ch.o, ch.o + heads * dim, 0.0f);
  }
  const RowMask mask{pb.sliding_window};
  const int64_t hi = mask.end_key(first.q_pos, first.seq_len);
  const int64_t lo = mask.first_key(first.q_pos);
  uint16_t* copy0 = st.rows;
  uint16_t* copy1 = st.rows + kAmxDecodeRun * dim;
  amx_decode_begin(heads, padded);
  // The walk runs one block ahead, so that the last chain of the V pass can
  // ask for the next block's first rows (RequestRows).
  KeyBlocks<T> walk(call, chains[0], lo, hi);
  KeyBlock<T> blocks[2];
  int cur = 0;
  bool have = walk.next(&blocks[0]);
  while (have) {
    const KeyBlock<T>& block = blocks[cur];
    const KeyBlock<T>& next = blocks[cur ^ 1];
    const bool have_next = walk.next(&blocks[cur ^ 1]);
    const int nb = block.count;
    const auto k_offset = [&](int32_t c) {
      return chains[c].items[block.item].kv_head * call.k_cache.s[2];
    };
    const auto v_offset = [&](int32_t c) {
      return chains[c].items[block.item].kv_head * call.v_cache.s[2];
    };
    // Pass unit w of the block: chain w's K rows (w < count), then chain
    // w - count's V rows; unit 2 count is the next block's first K rows.
    const auto unit = [&](int32_t w) {
      AheadRows<T> a;
      if (w < count) {
        a = {block.k, nb, k_offset(w)};
      } else if (w < 2 * count) {
        a = {block.v, nb, v_offset(w - count)};
      } else if (have_next) {
        a = {next.k, next.count, chains[0].items[next.item].kv_head * call.k_cache.s[2]};
      }
      return a;
    };
    for (int32_t c = 0; c < count; ++c) {
      const AheadRows<T> ahead = unit(c + 1);
      if constexpr (!kQuantized<T>) RequestRows(ahead.rows, ahead.nb, ahead.offset, dim);
      const AmxDecodeScratch::PerChain ch = st.chain(c);
      const AmxRun k0 = AmxRunOf(block.k, nb, 0, call.k_cache.s[1], k_offset(c), dim, copy0, ahead);
      const AmxRun k1 = AmxRunOf(block.k, nb, 1, call.k_cache.s[1], k_offset(c), dim, copy1, ahead);
      amx_decode_scores(k0.rows, k0.stride_bytes, k1.rows, k1.stride_bytes, ch.qv, dim, padded,
                        ch.s);
    }
    for (int32_t c = 0; c < count; ++c) {
      const AmxDecodeScratch::PerChain ch = st.chain(c);
      const float k_scale = kQuantized<T> ? pb.k_scale_of(chains[c].items[0].kv_head) : 1.0f;
      AmxDecodeSoftmax(ch, heads, padded, nb, pb.scale * k_scale, pb.logit_soft_cap);
      amx_decode_pack_probabilities(ch.s, heads, padded, ch.pa);
      AmxDecodeRescale(ch, heads, dim);
    }
    for (int32_t c = 0; c < count; ++c) {
      const AheadRows<T> ahead = unit(count + c + 1);
      if constexpr (!kQuantized<T>) RequestRows(ahead.rows, ahead.nb, ahead.offset, dim);
      const AmxDecodeScratch::PerChain ch = st.chain(c);
      const AmxRun v0 = AmxRunOf(block.v, nb, 0, call.v_cache.s[1], v_offset(c), dim, copy0, ahead);
      const AmxRun v1 = AmxRunOf(block.v, nb, 1, call.v_cache.s[1], v_offset(c), dim, copy1, ahead);
      amx_decode_accumulate(ch.pa, v0.rows, v0.stride_bytes, v1.rows, v1.stride_bytes, dim, heads,
                            ch.o);
    }
    cur ^= 1;
    have = have_next;
  }
  amx_end();
  // o from tile order into rows of head_dim (the copy rows serve as room).
  float* o = reinterpret_cast<float*>(st.rows);
  for (int32_t c = 0; c < count; ++c) {
    const AmxDecodeScratch::PerChain ch = st.chain(c);
    const float v_scale = kQuantized<T> ? pb.v_scale_of(chains[c].items[0].kv_head) : 1.0f;
    for (int64_t block32 = 0; block32 < dim / 32; ++block32) {
      for (int64_t g = 0; g < heads; ++g) {
        for (int64_t e = 0; e < 2; ++e) {
          const float* src = ch.o + (block32 * 2 * heads + 2 * g + e) * kAmxDecodeRun;
          float* dst = o + g * dim + 32 * block32 + e;
          for (int64_t j = 0; j < kAmxDecodeRun; ++j) dst[2 * j] = v_scale * src[j];
        }
      }
    }
    flush_tile(call, chains[c].items[chains[c].count - 1], ch.m, ch.l, o);
  }
}

#else

// Never called: UsesAmxDecode is false on the targets without AMX code.
template <typename T>
HWY_INLINE void RunDecodeTaskAmx(const CpuCall&, const Chain*, int32_t, const AmxDecodeScratch&) {}

#endif  // RPA_CPU_BF16_DOT_TARGET

}  // namespace rpa::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RPA_CPU_DECODE_AMX_INL_H_

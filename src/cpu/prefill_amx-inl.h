// The prefill path of bf16 inputs on CPUs with AMX-BF16 (CpuCall::amx): the
// chains, m-blocks, masks and vertical online softmax of prefill-inl.h, with
// both products on tiles (amx_tiles.h). The tile's q is packed into B-tile
// order once; each chunk's K rows are copied and its V packed once, and serve
// every m-block. P is rounded to bf16 for P V (to nearest even), as
// tensor-core kernels do; m and l stay f32 from the unrounded probabilities.
//
// Only the AVX-512 targets compile it: every AMX CPU has AVX-512.

#if defined(RPA_CPU_PREFILL_AMX_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RPA_CPU_PREFILL_AMX_INL_H_
#undef RPA_CPU_PREFILL_AMX_INL_H_
#else
#define RPA_CPU_PREFILL_AMX_INL_H_
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cpu/amx_tiles.h"
#include "cpu/bf16_dot-inl.h"
#include "cpu/call.h"
#include "cpu/epilogue-inl.h"
#include "cpu/prefill-inl.h"
#include "cpu/prefill_tile-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace rpa::cpu::HWY_NAMESPACE {

// Whether chains of these element types run on AMX tiles in this call.
template <typename TQ, typename T>
HWY_INLINE bool UsesAmx(const CpuCall& call) {
#if RPA_CPU_BF16_DOT_TARGET
  return std::is_same_v<TQ, hwy::bfloat16_t> && std::is_same_v<T, TQ> && call.amx;
#else
  (void)call;
  return false;
#endif
}

#if RPA_CPU_BF16_DOT_TARGET

static_assert(kAmxKeys <= kStKeys, "st holds the scores of an AMX chunk");
static_assert(kAmxLanes * 2 == 32, "an m-block of the AVX-512 targets is two A tiles of lanes");

// The tile's q rows as bf16 rows qa[lanes][padded_dim], zero past head_dim
// and for padding lanes, then in B-tile order (qv).
HWY_INLINE void PackAmxQ(const CpuCall& call, const WorkItem& first, int64_t rows, int64_t lanes,
                         int64_t padded_dim, const PrefillScratch& st) {
  const int64_t heads = call.problem->heads_per_kv;
  const int64_t dim = call.problem->head_dim;
  for (int64_t i = 0; i < lanes; ++i) {
    uint16_t* row = st.qa + i * padded_dim;
    std::fill(row, row + padded_dim, uint16_t{0});
    if (i >= rows) continue;
    const auto* q = call.q.row<const uint16_t>(first.q_row + i / heads, first.kv_head, i % heads);
    std::memcpy(row, q, dim * sizeof(uint16_t));
  }
  amx_pack_queries(st.qa, lanes, padded_dim, st.qv);
}

// Every m-block of the tile against one packed chunk of keys [c0, c0 + nc):
// BlockChunk's clipping and softmax with the products on tiles, in three
// phases (all blocks' scores, then all softmaxes, then all P V), not block by
// block. Tile instructions and the vector code do not overlap here, and a
// switch from one to the other waits for the stores before it to land: the
// phases make 3 switches per chunk instead of 3 per block (the prefill
// scenarios ran 6-7% faster).
HWY_INLINE void AmxChunk(const Problem& pb, const PrefillScratch& st, int64_t blocks, int64_t c0,
                         int64_t nc, int64_t padded_dim) {
  const int64_t bl = BlockLanes();
  const int64_t dim = pb.head_dim;
  // The block's keys in the chunk, [begin, end); false when it sees none.
  auto clip = [&](int64_t b, int64_t& begin, int64_t& end) {
    const int32_t* bounds = st.bounds + 4 * b;
    begin = std::max<int64_t>(c0, bounds[0]);
    end = std::min<int64_t>(c0 + nc, bounds[1]);
    return begin < end;
  };
  auto scores_of = [&](int64_t b) { return st.st + b * kAmxKeys * bl; };
  auto p_of = [&](int64_t b) { return st.pa + b * bl * kAmxKeys; };
  int64_t begin, end;
  for (int64_t b = 0; b < blocks; ++b) {
    if (!clip(b, begin, end)) continue;
    amx_scores(st.kc, st.qv + b * 2 * (padded_dim / kAmxDims) * 256, padded_dim, end - c0,
               scores_of(b));
  }
  const DF df;
  for (int64_t b = 0; b < blocks; ++b) {
    if (!clip(b, begin, end)) continue;
    // The softmax walks the block's scores from the clipped range's first key on.
    PrefillScratch clipped = st;
    clipped.st = scores_of(b) + (begin - c0) * bl;
    ClippedBlockSoftmax(pb, clipped, b, begin, end);
    for (int64_t half = 0; half < 2; ++half) {
      const int64_t lane0 = b * bl + half * kAmxLanes;
      float* o = st.o + lane0 * dim;
      // o *= alpha, lane by lane, where the lane's max moved.
      for (int64_t i = 0; i < kAmxLanes; ++i) {
        const float alpha = st.alpha[lane0 + i];
        if (alpha == 1.0f) continue;
        const VF va = hn::Set(df, alpha);
        float* row = o + i * dim;
        for (int64_t d = 0; d < dim; d += static_cast<int64_t>(hn::Lanes(df))) {
          hn::StoreU(hn::Mul(hn::LoadU(df, row + d), va), df, row + d);
        }
      }
      amx_pack_probabilities(scores_of(b), begin - c0, end - c0, half,
                             p_of(b) + half * kAmxLanes * kAmxKeys);
    }
  }
  for (int64_t b = 0; b < blocks; ++b) {
    if (!clip(b, begin, end)) continue;
    amx_accumulate(p_of(b), st.vt, dim, end - c0, st.o + b * bl * dim);
  }
}

// Runs one prefill chain of bf16 q and caches on AMX tiles, then the flush.
HWY_NOINLINE void RunPrefillChainAmx(const CpuCall& call, const Chain& chain,
                                     const PrefillScratch& st) {
  const Problem& pb = *call.problem;
  const WorkItem& first = chain.items[0];
  const int64_t dim = pb.head_dim;
  const int64_t padded_dim = amx_padded_dim(dim);
  const int64_t rows = int64_t{first.q_rows} * pb.heads_per_kv;
  const int64_t blocks = (rows + BlockLanes() - 1) / BlockLanes();
  // The lanes' key ranges and empty states; PackAmxQ lays out q.
  PackTile<hwy::bfloat16_t>(call, first, rows, blocks, st, /*widen_q=*/false);
  PackAmxQ(call, first, rows, blocks * BlockLanes(), padded_dim, st);
  const int64_t tile_lo = st.bounds[0];
  const int64_t tile_hi = st.bounds[4 * (blocks - 1) + 1];
  amx_begin();
  ForEachChunk<uint16_t, kAmxKeys>(call, chain, tile_lo, tile_hi,
                                   [&](int64_t c0, int64_t nc, const uint16_t* const* k,
                                       const uint16_t* const* v) {
    amx_copy_keys(k, nc, dim, padded_dim, st.kc);
    amx_pack_values(v, nc, dim, st.vt);
    AmxChunk(pb, st, blocks, c0, nc, padded_dim);
  });
  amx_end();
  flush_tile(call, chain.items[chain.count - 1], st.m, st.l, st.o);
}

#else

// Never called: UsesAmx is false on the targets without AMX code.
HWY_INLINE void RunPrefillChainAmx(const CpuCall&, const Chain&, const PrefillScratch&) {}

#endif  // RPA_CPU_BF16_DOT_TARGET

}  // namespace rpa::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RPA_CPU_PREFILL_AMX_INL_H_

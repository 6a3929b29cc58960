// The prefill tile's per-thread state: its q packed for the micro-kernels,
// its lanes' visible key ranges and its online-softmax state (m, l, o).

#if defined(RPA_CPU_PREFILL_TILE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RPA_CPU_PREFILL_TILE_INL_H_
#undef RPA_CPU_PREFILL_TILE_INL_H_
#else
#define RPA_CPU_PREFILL_TILE_INL_H_
#endif

#include <algorithm>
#include <climits>
#include <cstdint>
#include <type_traits>

#include "core/online_softmax.h"
#include "core/row_mask.h"
#include "cpu/amx_tiles.h"
#include "cpu/bf16_dot-inl.h"
#include "cpu/call.h"
#include "cpu/load-inl.h"
#include "cpu/tile_kernels-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace rpa::cpu::HWY_NAMESPACE {

// Keys widened and scored per step. 64 keys of K and V in f32 (64 KiB at
// head_dim 128) stay in L2 while every m-block of the tile reuses them.
inline constexpr int64_t kChunkKeys = 64;
// Keys of one m-block's scores in st: the AMX path's chunks are longer.
inline constexpr int64_t kStKeys = std::max(kChunkKeys, kAmxKeys);

// Per-thread scratch of the prefill path, sized for the largest tile of the
// call (BL = BlockLanes(), M = lanes of the tile rounded up to BL, D = head_dim).
struct PrefillScratch {
  float* qt;        // [M / BL][D][BL]: the tile's q, transposed per m-block
  uint16_t* qp;     // [M / BL][D / 2][BL][2]: the same as bf16 pairs (CpuCall::bf16_dot)
  float* o;         // [M][D]: unnormalized output
  float* m;         // [M]
  float* l;         // [M]
  float* alpha;     // [M]: the current chunk's rescale factor of o
  int32_t* lo_m1;   // [M]: lane j sees keys lo_m1[j] < key < hi[j]
  int32_t* hi;      // [M]
  int32_t* bounds;  // [M / BL][4]: per m-block min lo, max hi, max lo, min hi
  float* st;        // [M / BL][kStKeys][BL]: scores, then probabilities, per m-block
                    // (the AMX path keeps every block's; the others use the first)
  float* k;         // [kChunkKeys][D]: K rows widened to f32
  float* v;         // [kChunkKeys][D]
  // CpuCall::amx (prefill_amx-inl.h, amx_tiles.h; P = padded_dim(D)):
  uint16_t* qa;     // [M][P]: the tile's q as bf16 rows
  uint32_t* qv;     // [M / 16][P / 32][16][16]: the same in B-tile order
  uint16_t* kc;     // [kAmxKeys][P]: a chunk's K rows
  uint32_t* vt;     // [kAmxKeys / 2][D]: a chunk's V in B-tile order
  uint16_t* pa;     // [M / BL][2][kAmxLanes][kAmxKeys]: each m-block's P as bf16, by halves

  // Every array starts on a 64-byte boundary of an aligned buffer.
  static int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }
  static int64_t floats(int64_t lanes, int64_t dim) {
    const int64_t blocks = lanes / BlockLanes();
    const int64_t padded = amx_padded_dim(dim);
    return round16(lanes * dim) * 2 + round16(lanes * dim / 2) + round16(lanes) * 5 +
           round16(blocks * 4) + round16(kStKeys * lanes) +
           round16(kChunkKeys * dim) * 2 + round16(lanes * padded / 2) * 2 +
           round16(kAmxKeys * padded / 2) + round16(kAmxKeys / 2 * dim) +
           round16(lanes * kAmxKeys / 2);
  }
  static PrefillScratch carve(float* p, int64_t lanes, int64_t dim) {
    PrefillScratch s;
    auto take = [&p](int64_t n) {
      float* start = p;
      p += round16(n);
      return start;
    };
    s.qt = take(lanes * dim);
    s.qp = reinterpret_cast<uint16_t*>(take(lanes * dim / 2));
    s.o = take(lanes * dim);
    s.m = take(lanes);
    s.l = take(lanes);
    s.alpha = take(lanes);
    s.lo_m1 = reinterpret_cast<int32_t*>(take(lanes));
    s.hi = reinterpret_cast<int32_t*>(take(lanes));
    s.bounds = reinterpret_cast<int32_t*>(take(lanes / BlockLanes() * 4));
    s.st = take(kStKeys * lanes);
    s.k = take(kChunkKeys * dim);
    s.v = take(kChunkKeys * dim);
    const int64_t padded = amx_padded_dim(dim);
    s.qa = reinterpret_cast<uint16_t*>(take(lanes * padded / 2));
    s.qv = reinterpret_cast<uint32_t*>(take(lanes * padded / 2));
    s.kc = reinterpret_cast<uint16_t*>(take(kAmxKeys * padded / 2));
    s.vt = reinterpret_cast<uint32_t*>(take(kAmxKeys / 2 * dim));
    s.pa = reinterpret_cast<uint16_t*>(take(lanes * kAmxKeys / 2));
    return s;
  }
};

// Lays out the tile's q (transposed; the scale is applied to the scores), its
// lanes' key ranges and an empty state. Lanes past rows are padding: q = 0 and
// the last row's range, so they never force a mask; they are never written.
// The AMX path lays out its own q (widen_q = false).
template <typename T>
void PackTile(const CpuCall& call, const WorkItem& first, int64_t rows, int64_t blocks,
              const PrefillScratch& st, bool widen_q = true) {
  const Problem& pb = *call.problem;
  const int64_t heads = pb.heads_per_kv;
  const int64_t dim = pb.head_dim;
  const int64_t bl = BlockLanes();
  for (int64_t i = 0; i < blocks * bl; ++i) {
    float* qt = st.qt + (i / bl) * dim * bl + i % bl;
    float* o = st.o + i * dim;
    const int64_t r = std::min(i, rows - 1) / heads;
    const T* q =
        i < rows ? call.q.row<const T>(first.q_row + r, first.kv_head, i % heads) : nullptr;
    if (widen_q && q != nullptr) {
      WidenRow(q, dim, o);
      for (int64_t d = 0; d < dim; ++d) qt[d * bl] = o[d];
    } else if (widen_q) {
      for (int64_t d = 0; d < dim; ++d) qt[d * bl] = 0.0f;
    }
#if RPA_CPU_BF16_DOT_TARGET
    if constexpr (std::is_same_v<T, hwy::bfloat16_t>) {
      if (call.bf16_dot) PackBF16Pairs(q, i % bl, dim, st.qp + (i / bl) * dim * bl);
    }
#endif
    std::fill(o, o + dim, 0.0f);
    st.m[i] = kNegInf;
    st.l[i] = 0.0f;
    const int64_t pos = first.q_pos + r;
    const RowMask mask{pb.sliding_window};
    st.lo_m1[i] = static_cast<int32_t>(mask.first_key(pos) - 1);
    st.hi[i] = static_cast<int32_t>(mask.end_key(pos, first.seq_len));
  }
  for (int64_t b = 0; b < blocks; ++b) {
    int32_t* bounds = st.bounds + 4 * b;
    bounds[0] = bounds[3] = INT32_MAX;
    bounds[1] = bounds[2] = INT32_MIN;
    for (int64_t i = b * bl; i < (b + 1) * bl; ++i) {
      const int32_t lo = st.lo_m1[i] + 1;
      bounds[0] = std::min(bounds[0], lo);
      bounds[1] = std::max(bounds[1], st.hi[i]);
      bounds[2] = std::max(bounds[2], lo);
      bounds[3] = std::min(bounds[3], st.hi[i]);
    }
  }
}

// Walks the keys of a chain's items that some lane of the tile sees,
// [tile_lo, tile_hi), in order and in chunks of at most kKeys keys:
// fn(c0, nc, k, v) gets the chunk's first key, its length and its K and V
// rows of the chain's kv head, straight from their pages.
template <typename T, int64_t kKeys = kChunkKeys, typename Fn>
HWY_INLINE void ForEachChunk(const CpuCall& call, const Chain& chain, int64_t tile_lo,
                             int64_t tile_hi, const Fn& fn) {
  const int64_t h = chain.items[0].kv_head;
  const T* k[kKeys];
  const T* v[kKeys];
  for (int32_t it = 0; it < chain.count; ++it) {
    const WorkItem& item = chain.items[it];
    const int64_t begin = std::max<int64_t>(item.kv_begin, tile_lo);
    const int64_t end = std::min<int64_t>(item.kv_end, tile_hi);
    if (begin >= end) continue;
    KeyCursor cursor(*call.plan, item, begin);
    for (int64_t c0 = begin; c0 < end; c0 += kKeys) {
      const int64_t nc = std::min(kKeys, end - c0);
      for (int64_t n = 0; n < nc; ++n, cursor.next()) {
        k[n] = call.k_cache.row<const T>(cursor.page(), cursor.slot(), h);
        v[n] = call.v_cache.row<const T>(cursor.page(), cursor.slot(), h);
      }
      fn(c0, nc, k, v);
    }
  }
}

}  // namespace rpa::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RPA_CPU_PREFILL_TILE_INL_H_

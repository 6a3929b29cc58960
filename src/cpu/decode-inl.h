// The decode path: one query row per item (q_rows == 1) whose heads_per_kv (G)
// heads share every K and V load. Decode moves far more bytes than it does
// flops, so the kernel reads each live K/V row of the item's kv head exactly
// once, straight from its page, keeps the dot products in registers and o in
// L1. (On the 2-core AVX2 machine of record its arithmetic, 41 ns per key and
// kv head on a core, still exceeds the DRAM time, 32 ns: docs/benchmarks.md.)
//
// A task's chains (one per kv head) walk the same pages, and the kernel reads
// them in address order, key by key and kv head by kv head within a key, in a
// pass for K (the scores) and one for V (the accumulation) per key block: the
// hardware prefetchers then stream the pages at a core's full DRAM rate.
// Software prefetches did worse (one that misses the TLB is dropped, and
// added to this order they slowed the hardware streams down); see
// docs/benchmarks.md, "Decode against the DRAM rate".

#if defined(RPA_CPU_DECODE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef RPA_CPU_DECODE_INL_H_
#undef RPA_CPU_DECODE_INL_H_
#else
#define RPA_CPU_DECODE_INL_H_
#endif

#include <algorithm>
#include <cstdint>

#include "core/fp8.h"
#include "core/row_mask.h"
#include "cpu/call.h"
#include "cpu/decode_block-inl.h"
#include "cpu/epilogue-inl.h"
#include "cpu/key_blocks.h"
#include "cpu/load-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace rpa::cpu::HWY_NAMESPACE {

// The K (or V) rows of a key block for each chain of a task: kv head 0's row
// of key n at head0[n], kv head h's h * head_stride elements further.
template <typename T>
struct BlockRows {
  const T* const* head0;
  int64_t head_stride;
  int nb;
  const Chain* chains;
  int32_t count;
  int32_t item;  // the block's item, in every chain's list

  // Chain c's rows of all the block's keys.
  void of_chain(int32_t c, const T** rows) const {
    const int64_t offset = chains[c].items[item].kv_head * head_stride;
    for (int n = 0; n < nb; ++n) rows[n] = head0[n] + offset;
  }

  // One pass over the block in address order, key by key and, within a key,
  // chain by chain (ForKeyGroups): fn(c, rows, i, stride, KB) on chain c's
  // KB rows of keys i, i + stride, ...; fp8 rows are then folded into the
  // NaN scan (largest, tail_nan), right after use, while they sit in L1.
  template <int kRuns, typename Fn>
  HWY_INLINE void each(int64_t dim, hn::Vec<DU8>& largest, bool& tail_nan, const Fn& fn) const {
    ForKeyGroups<kRuns>(nb, [&](int i, int stride, auto n) {
      constexpr int KB = decltype(n)::value;
      for (int32_t c = 0; c < count; ++c) {
        const int64_t offset = chains[c].items[item].kv_head * head_stride;
        const T* rows[KB];
        for (int j = 0; j < KB; ++j) rows[j] = head0[i + j * stride] + offset;
        fn(c, rows, i, stride, n);
        if constexpr (kQuantized<T>) {
          for (int j = 0; j < KB; ++j) largest = Fp8FoldMagnitudes(rows[j], dim, largest, tail_nan);
        }
      }
    });
  }
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
  const RowMask mask{pb.sliding_window};
  const int64_t hi = mask.end_key(first.q_pos, first.seq_len);
  const int64_t lo = mask.first_key(first.q_pos);
  const int64_t k_head_stride = call.k_cache.s[2];
  const int64_t v_head_stride = call.v_cache.s[2];
  KeyBlocks<T> walk(call, chains[0], lo, hi);
  KeyBlock<T> block;
  while (walk.next(&block)) {
    const int nb = block.count;
    // fp8: the NaN scans of the block's K and V rows (RestoreNaN*).
    auto k_largest = hn::Zero(DU8());
    auto v_largest = hn::Zero(DU8());
    bool k_tail_nan = false;
    bool v_tail_nan = false;
    // The scores take two keys per q load; the accumulation four keys per
    // load and store of o.
    const BlockRows<T> k_pass{block.k, k_head_stride, nb, chains, count, block.item};
    const BlockRows<T> v_pass{block.v, v_head_stride, nb, chains, count, block.item};
    const auto scores = [&](int32_t c, const T* const* rows, int i, int stride, auto n) {
      const DecodeScratch st = scratch.shifted(c * heads, dim);
      ForHeadBlocks(heads, [&](auto gb, int64_t g0) {
        DecodeScores<decltype(gb)::value, decltype(n)::value>(st.q + g0 * dim, dim, rows, stride,
                                                              st.s + g0 * kDecodeKeys + i);
      });
    };
    k_pass.template each<2>(dim, k_largest, k_tail_nan, scores);
    const bool k_nan = kQuantized<T> && Fp8ScanFoundNaN(k_largest, k_tail_nan);
    for (int32_t c = 0; c < count; ++c) {
      const DecodeScratch st = scratch.shifted(c * heads, dim);
      if (k_nan) {
        const T* k_rows[kDecodeKeys];
        k_pass.of_chain(c, k_rows);
        RestoreNaNScores(k_rows, nb, heads, dim, st.s);
      }
      DecodeSoftmax(heads, nb, pb.logit_soft_cap, kQuantized<T> ? kFp8RawHalfFactor : 1.0f, st);
      DecodeRescale(heads, dim, st);
    }
    const auto accumulate = [&](int32_t c, const T* const* rows, int i, int stride, auto n) {
      const DecodeScratch st = scratch.shifted(c * heads, dim);
      ForHeadBlocks(heads, [&](auto gb, int64_t g0) {
        DecodeAccumulate<decltype(gb)::value, decltype(n)::value>(
            st.s + g0 * kDecodeKeys + i, stride, rows, dim, st.o + g0 * dim);
      });
    };
    v_pass.template each<4>(dim, v_largest, v_tail_nan, accumulate);
    if (kQuantized<T> && Fp8ScanFoundNaN(v_largest, v_tail_nan)) {
      for (int32_t c = 0; c < count; ++c) {
        const T* v_rows[kDecodeKeys];
        v_pass.of_chain(c, v_rows);
        RestoreNaNOutputs(v_rows, nb, heads, dim, scratch.shifted(c * heads, dim).o);
      }
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

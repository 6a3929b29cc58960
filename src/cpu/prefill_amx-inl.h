// The prefill path of bf16 inputs on CPUs with AMX-BF16 (CpuCall::amx): the
// same chains, masks and online softmax as prefill-inl.h, with both products
// on tiles (amx_tiles.h). A tile's lanes are taken 16 at a time (an A tile's
// rows); each chunk of kAmxKeys keys is packed once into B-tile order and
// serves every 16-lane block. P is rounded to bf16 for P V (to nearest even),
// as tensor-core kernels do; m and l stay f32 from the unrounded scores.
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

#include "core/online_softmax.h"
#include "cpu/amx_tiles.h"
#include "cpu/bf16_dot-inl.h"
#include "cpu/call.h"
#include "cpu/decode-inl.h"
#include "cpu/epilogue.h"
#include "cpu/load-inl.h"
#include "cpu/prefill_tile-inl.h"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace rpa::cpu::HWY_NAMESPACE {

#if RPA_CPU_BF16_DOT_TARGET

// The tile's q rows as bf16 A-tile rows, [lanes][padded_dim], zero past
// head_dim and for padding lanes.
HWY_INLINE void PackAmxQ(const CpuCall& call, const WorkItem& first, int64_t rows, int64_t lanes,
                         int64_t padded_dim, uint16_t* qa) {
  const int64_t heads = call.problem->heads_per_kv;
  const int64_t dim = call.problem->head_dim;
  for (int64_t i = 0; i < lanes; ++i) {
    uint16_t* row = qa + i * padded_dim;
    std::fill(row, row + padded_dim, uint16_t{0});
    if (i >= rows) continue;
    const auto* q = call.q.row<const uint16_t>(first.q_row + i / heads, first.kv_head, i % heads);
    std::memcpy(row, q, dim * sizeof(uint16_t));
  }
}

// Rounds 16 f32 lanes to bf16, to nearest even (NaN stays NaN).
HWY_INLINE void StoreBF16(VF p, uint16_t* HWY_RESTRICT out) {
  const hn::RebindToUnsigned<DF> du32;
  const hn::Rebind<uint16_t, DF> du16;
  const auto bits = hn::BitCast(du32, p);
  const auto odd = hn::And(hn::ShiftRight<16>(bits), hn::Set(du32, 1u));
  const auto rounded = hn::Add(bits, hn::Add(odd, hn::Set(du32, 0x7FFFu)));
  // The high halves fit an int32 and a uint16 without saturating.
  hn::StoreU(hn::DemoteTo(du16, hn::BitCast(DI(), hn::ShiftRight<16>(rounded))), du16, out);
}

// Folds one 16-lane block's scores s[16][kAmxKeys] (keys c0 + n, n < nc) into
// its lanes' states and writes p[16][kAmxKeys] as bf16: scale, soft cap, the
// lane's visible keys, new max m, rescale of o by alpha, l. Lanes are rows
// here, so each lane reduces its own 64 scores.
HWY_INLINE void AmxSoftmax(const Problem& pb, const PrefillScratch& st, int64_t lane0, int64_t c0,
                           int64_t nc, float* HWY_RESTRICT s, uint16_t* HWY_RESTRICT p) {
  const DF df;
  const DI di;
  constexpr int64_t kLanes = 16;
  static_assert(kAmxKeys % kLanes == 0, "a chunk is whole vectors");
  const int64_t dim = pb.head_dim;
  const VF neg_inf = hn::Set(df, kNegInf);
  const VF scale = hn::Set(df, pb.scale);
  const float cap = pb.logit_soft_cap;
  const auto iota = hn::Iota(di, 0);
  for (int64_t i = 0; i < kAmxLanes; ++i) {
    const int64_t lane = lane0 + i;
    float* x_row = s + i * kAmxKeys;
    // The lane sees chunk keys [a, e).
    const int64_t a = std::clamp<int64_t>(st.lo_m1[lane] + 1 - c0, 0, nc);
    const int64_t e = std::clamp<int64_t>(st.hi[lane] - c0, 0, nc);
    const auto a_m1 = hn::Set(di, static_cast<int32_t>(a - 1));
    const auto ve = hn::Set(di, static_cast<int32_t>(e));
    VF vmax = neg_inf;
    for (int64_t n = 0; n < kAmxKeys; n += kLanes) {
      VF x = hn::Mul(hn::LoadU(df, x_row + n), scale);
      if (cap > 0.0f) {
        x = hn::Mul(hn::Set(df, cap), hn::Tanh(df, hn::Mul(x, hn::Set(df, 1.0f / cap))));
      }
      const auto key = hn::Add(iota, hn::Set(di, static_cast<int32_t>(n)));
      const auto visible = hn::And(hn::Lt(a_m1, key), hn::Lt(key, ve));
      x = hn::IfThenElse(hn::RebindMask(df, visible), x, neg_inf);
      hn::StoreU(x, df, x_row + n);
      vmax = hn::Max(vmax, x);
    }
    const float m_old = st.m[lane];
    const float m_new = std::max(m_old, hn::GetLane(hn::MaxOfLanes(df, vmax)));
    // A lane that has seen no key keeps m = -inf; shifting by 0 gives p = 0.
    const float shift = m_new == kNegInf ? 0.0f : m_new;
    const float alpha = rescale_factor(m_old, m_new);
    const VF vshift = hn::Set(df, shift);
    VF sum = hn::Zero(df);
    for (int64_t n = 0; n < kAmxKeys; n += kLanes) {
      const VF pv = ExpNonPositive(df, hn::Sub(hn::LoadU(df, x_row + n), vshift));
      sum = hn::Add(sum, pv);
      StoreBF16(pv, p + i * kAmxKeys + n);
    }
    st.m[lane] = m_new;
    st.l[lane] = st.l[lane] * alpha + hn::GetLane(hn::SumOfLanes(df, sum));
    if (alpha != 1.0f) {
      float* o = st.o + lane * dim;
      const VF valpha = hn::Set(df, alpha);
      for (int64_t d = 0; d < dim; d += kLanes) {
        hn::StoreU(hn::Mul(hn::LoadU(df, o + d), valpha), df, o + d);
      }
    }
  }
}

// Runs one prefill chain of bf16 q and caches on AMX tiles, then the flush.
HWY_NOINLINE void RunPrefillChainAmx(const CpuCall& call, const Chain& chain,
                                     const PrefillScratch& st) {
  const Problem& pb = *call.problem;
  const WorkItem& first = chain.items[0];
  const int64_t dim = pb.head_dim;
  const int64_t padded_dim = amx_padded_dim(dim);
  const int64_t h = first.kv_head;
  const int64_t rows = int64_t{first.q_rows} * pb.heads_per_kv;
  const int64_t blocks = (rows + BlockLanes() - 1) / BlockLanes();
  // PackTile lays out the lanes' key ranges and empty states (its f32 q goes
  // unused); the AMX blocks of 16 lanes cover the same lanes.
  PackTile<hwy::bfloat16_t>(call, first, rows, blocks, st);
  const int64_t amx_blocks = (rows + kAmxLanes - 1) / kAmxLanes;
  PackAmxQ(call, first, rows, amx_blocks * kAmxLanes, padded_dim, st.qa);
  const int64_t tile_lo = st.bounds[0];
  const int64_t tile_hi = st.bounds[4 * (blocks - 1) + 1];
  const uint16_t* k_rows[kAmxKeys];
  const uint16_t* v_rows[kAmxKeys];
  amx_begin();
  for (int32_t it = 0; it < chain.count; ++it) {
    const WorkItem& item = chain.items[it];
    const int64_t begin = std::max<int64_t>(item.kv_begin, tile_lo);
    const int64_t end = std::min<int64_t>(item.kv_end, tile_hi);
    if (begin >= end) continue;
    KeyCursor cursor(*call.plan, item, begin);
    for (int64_t c0 = begin; c0 < end; c0 += kAmxKeys) {
      const int64_t nc = std::min(kAmxKeys, end - c0);
      for (int64_t n = 0; n < nc; ++n, cursor.next()) {
        k_rows[n] = call.k_cache.row<const uint16_t>(cursor.page(), cursor.slot(), h);
        v_rows[n] = call.v_cache.row<const uint16_t>(cursor.page(), cursor.slot(), h);
      }
      amx_pack_keys(k_rows, nc, dim, padded_dim, st.kt);
      amx_pack_values(v_rows, nc, dim, st.vt);
      for (int64_t b = 0; b < amx_blocks; ++b) {
        // Skip a block none of whose lanes sees a key of the chunk.
        const int64_t lane0 = b * kAmxLanes;
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        for (int64_t i = lane0; i < lane0 + kAmxLanes; ++i) {
          lo = std::min<int64_t>(lo, st.lo_m1[i] + 1);
          hi = std::max<int64_t>(hi, st.hi[i]);
        }
        if (hi <= c0 || lo >= c0 + nc) continue;
        amx_scores(st.qa + lane0 * padded_dim, st.kt, padded_dim, st.sa);
        AmxSoftmax(pb, st, lane0, c0, nc, st.sa, st.pa);
        amx_accumulate(st.pa, st.vt, dim, st.o + lane0 * dim);
      }
    }
  }
  amx_end();
  flush_tile(call, chain.items[chain.count - 1], st.m, st.l, st.o);
}

#endif  // RPA_CPU_BF16_DOT_TARGET

}  // namespace rpa::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // RPA_CPU_PREFILL_AMX_INL_H_

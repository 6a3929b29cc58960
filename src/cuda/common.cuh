// Device helpers shared by the kernels: element loads and stores by dtype, the
// logit transform, warp reductions and the end of a row (docs/contract.md §5: the same
// online-softmax state as core/online_softmax.h, m = -inf when empty).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>
#include <type_traits>

#include "core/online_softmax.h"
#include "core/row_mask.h"
#include "core/support.h"
#include "cuda/kernel_args.h"
#include "plan/item_decode.h"

namespace rpa::cuda {

inline constexpr unsigned kFullMask = 0xffffffffu;
inline constexpr int kMaxHeadDim = static_cast<int>(kMaxSupportedHeadDim);

// The CTA's dynamic shared memory: one declaration serves every kernel, since
// all extern __shared__ arrays of a translation unit must agree in type.
__device__ __forceinline__ unsigned char* dynamic_smem() {
  extern __shared__ __align__(128) unsigned char rpa_dynamic_smem[];
  return rpa_dynamic_smem;
}

__device__ __forceinline__ float neg_inf() { return -__int_as_float(0x7f800000); }

// Eight elements of a K/V row as loaded, not yet widened to f32.
template <typename KV>
struct RawRow {
  static constexpr int kWords = 2 * static_cast<int>(sizeof(KV));
  uint32_t w[kWords];
};

// The row's elements as f32, exactly (bf16 -> f32 is the 16 bits moved to
// the top, NaN kept; f16 and fp8 e4m3 widen through f16).
template <typename KV>
__device__ __forceinline__ void widen(const RawRow<KV>& r, float (&x)[8]) {
  if constexpr (std::is_same_v<KV, float>) {
#pragma unroll
    for (int i = 0; i < 8; ++i) x[i] = __uint_as_float(r.w[i]);
  } else if constexpr (std::is_same_v<KV, __nv_bfloat16>) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      x[2 * i] = __uint_as_float(r.w[i] << 16);
      x[2 * i + 1] = __uint_as_float(r.w[i] & 0xffff0000u);
    }
  } else if constexpr (std::is_same_v<KV, __half>) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      __half2 h;
      *reinterpret_cast<uint32_t*>(&h) = r.w[i];
      const float2 f = __half22float2(h);
      x[2 * i] = f.x;
      x[2 * i + 1] = f.y;
    }
  } else {
    static_assert(std::is_same_v<KV, __nv_fp8_e4m3>);
#pragma unroll
    for (int i = 0; i < 2; ++i) {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const __nv_fp8x2_storage_t pair = static_cast<__nv_fp8x2_storage_t>(r.w[i] >> (16 * j));
        const __half2 h = __half2(__nv_cvt_fp8x2_to_halfraw2(pair, __NV_E4M3));
        const float2 f = __half22float2(h);
        x[4 * i + 2 * j] = f.x;
        x[4 * i + 2 * j + 1] = f.y;
      }
    }
  }
}

// A raw row from global or shared memory, by 16-byte loads (one 8-byte load
// for fp8); p is aligned to them.
template <typename KV>
__device__ __forceinline__ void load_raw(const void* p, RawRow<KV>& r) {
  if constexpr (RawRow<KV>::kWords == 2) {
    const uint2 u = *static_cast<const uint2*>(p);
    r.w[0] = u.x, r.w[1] = u.y;
  } else {
#pragma unroll
    for (int c = 0; c < RawRow<KV>::kWords / 4; ++c) {
      const uint4 u = static_cast<const uint4*>(p)[c];
      r.w[4 * c] = u.x, r.w[4 * c + 1] = u.y, r.w[4 * c + 2] = u.z, r.w[4 * c + 3] = u.w;
    }
  }
}

// Eight consecutive elements of a K/V row as f32. The row pointer is aligned
// to the load (16 bytes; 8 for fp8): runtime.cc checks the cache layout.
template <typename KV>
__device__ __forceinline__ void load8(const KV* p, float (&x)[8]) {
  RawRow<KV> r;
  load_raw(p, r);
  widen(r, x);
}

// Writes one element of out, rounded to nearest even for bf16 and f16.
__device__ __forceinline__ void store_out(const KernelArgs& a, int64_t row, int64_t h, int64_t g,
                                          int64_t d, float value) {
  const int64_t i = row * a.out.s[0] + h * a.out.s[1] + g * a.out.s[2] + d;
  switch (a.out_dtype) {
    case DType::kBF16:
      static_cast<__nv_bfloat16*>(a.out.data)[i] = __float2bfloat16_rn(value);
      break;
    case DType::kF16:
      static_cast<__half*>(a.out.data)[i] = __float2half_rn(value);
      break;
    default:
      static_cast<float*>(a.out.data)[i] = value;
      break;
  }
}

// The K/V row of key `key` of an item, kv head h: the page comes from the
// plan's page list (item.page_index holds the page of item.kv_begin).
template <typename KV>
__device__ __forceinline__ const KV* kv_row(const DeviceStrided3& cache, const int32_t* pages,
                                            const WorkItem& item, int page_size, int key, int h) {
  const int64_t page = pages[page_list_index(item, key, page_size)];
  const int64_t slot = key % page_size;
  return static_cast<const KV*>(cache.data) + page * cache.s[0] + slot * cache.s[1] + h * cache.s[2];
}

// An f32 value as an element of a staged shared-memory tile: f32 as is,
// bf16/f16 rounded to nearest even (exact for K/V values, which are bf16,
// f16 or fp8 already).
template <typename T>
__device__ __forceinline__ T stage_value(float x);
template <>
__device__ __forceinline__ float stage_value<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __nv_bfloat16 stage_value<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
template <>
__device__ __forceinline__ __half stage_value<__half>(float x) {
  return __float2half_rn(x);
}

// What q of kv head h is multiplied by: scale, and the fp8 K scale folded in.
__device__ __forceinline__ float q_factor(const KernelArgs& a, int h) {
  return a.scale * (a.k_scale != nullptr ? a.k_scale[h] : 1.0f);
}

inline constexpr float kLog2e = 1.4426950408889634f;

// How a tensor-core kernel's raw scores (q . k, q exact) become logits.
// With no soft cap and scale > 0 the row max of the raw scores is the max of
// the logits, so the softmax runs on raw scores, m in raw units, and scale
// rides in the exponent's multiplier: one FFMA per score, no FMUL. Else the
// scores are scaled (and capped) first, and unit is 1.
struct ScoreUnits {
  float scale;        // q_factor of the kv head
  bool scaled_first;  // scores are scaled (and capped) before the softmax
  float unit;         // raw score x unit = logit
  float unit_log2;    // unit x log2(e): the exponent's multiplier
};

__device__ __forceinline__ ScoreUnits score_units(const KernelArgs& a, int h) {
  const float scale = q_factor(a, h);
  const bool scaled_first = a.logit_soft_cap > 0.0f || !(scale > 0.0f);
  const float unit = scaled_first ? 1.0f : scale;
  return {scale, scaled_first, unit, unit * kLog2e};
}

// What o of kv head h is multiplied by: the fp8 V scale, folded into o.
__device__ __forceinline__ float v_factor(const KernelArgs& a, int h) {
  return a.v_scale != nullptr ? a.v_scale[h] : 1.0f;
}

// Whether the query row at absolute position `pos` sees key `key`: the
// causal bound and the sliding window (docs/contract.md §1).
__device__ __forceinline__ bool row_sees(const KernelArgs& a, int pos, int key) {
  return key >= RowMask{a.sliding_window}.first_key(pos) && key <= pos;
}

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }

// stage_q for q of element type Q: the dtype is dispatched once, outside the
// loop, so the loop's loads are independent and many are in flight (a load
// behind a per-element dtype branch waits for the one before it).
template <typename Q, typename T>
__device__ __forceinline__ void stage_q_of(const KernelArgs& a, const WorkItem& tile, int row0,
                                           int rows, float factor, T* dst, int ld) {
  const Q* q = static_cast<const Q*>(a.q.data);
  const int dim = a.head_dim;
  const int heads = a.heads_per_kv;
  const int packed_rows = tile.q_rows * heads;
#pragma unroll 8
  for (int x = threadIdx.x; x < rows * dim; x += blockDim.x) {
    const int ii = x / dim, d = x % dim;
    const int pr = row0 + ii;
    const int64_t i = (tile.q_row + pr / heads) * a.q.s[0] + tile.kv_head * a.q.s[1] +
                      (pr % heads) * a.q.s[2] + d;
    dst[ii * ld + d] = stage_value<T>(pr < packed_rows ? to_float(q[i]) * factor : 0.0f);
  }
}

// Stages the packed rows [row0, row0 + rows) (row x heads_per_kv) of a prefill
// tile's q, times `factor`, into dst (ld elements per row); rows past the
// tile are zeros. All threads of the CTA take part.
template <typename T>
__device__ __forceinline__ void stage_q(const KernelArgs& a, const WorkItem& tile, int row0,
                                        int rows, float factor, T* dst, int ld) {
  switch (a.q_dtype) {
    case DType::kBF16:
      return stage_q_of<__nv_bfloat16>(a, tile, row0, rows, factor, dst, ld);
    case DType::kF16:
      return stage_q_of<__half>(a, tile, row0, rows, factor, dst, ld);
    default:
      return stage_q_of<float>(a, tile, row0, rows, factor, dst, ld);
  }
}

// Stages keys [kb, kb + keys) of `item`'s kv head into k_dst and v_dst (ld
// elements per key row). Rows from n on (past the item's end) are zeros,
// never read from the cache: they may hold NaN. All threads take part.
template <typename KV, typename T>
__device__ __forceinline__ void stage_kv(const KernelArgs& a, const WorkItem& item, int kb, int n,
                                         int keys, T* k_dst, T* v_dst, int ld) {
  const int chunks_per_row = a.head_dim / 8;
  for (int c = threadIdx.x; c < keys * chunks_per_row; c += blockDim.x) {
    const int kk = c / chunks_per_row;
    const int d0 = (c % chunks_per_row) * 8;
    float k[8], v[8];
    if (kk < n) {
      load8(kv_row<KV>(a.k_cache, a.pages, item, a.page_size, kb + kk, item.kv_head) + d0, k);
      load8(kv_row<KV>(a.v_cache, a.pages, item, a.page_size, kb + kk, item.kv_head) + d0, v);
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) k[e] = v[e] = 0.0f;
    }
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      k_dst[kk * ld + d0 + e] = stage_value<T>(k[e]);
      v_dst[kk * ld + d0 + e] = stage_value<T>(v[e]);
    }
  }
}

// A key's score as the softmax takes it: soft-capped when the row sees the
// key, -inf when it does not.
__device__ __forceinline__ float masked_score(const KernelArgs& a, bool seen, float score) {
  return seen ? soft_cap(score, a.logit_soft_cap) : neg_inf();
}

// The weight exp(x - m) of a score under the running max m; 0 while m is
// still -inf (every key so far masked).
__device__ __forceinline__ float softmax_weight(float x, float m) {
  return m == neg_inf() ? 0.0f : expf(x - m);
}

// A prefill CTA's share of the plan: chain blockIdx.x of the prefill list
// (items [first, end), `head` its first item) and packed rows [row0, row0 +
// rows) of its tile of packed_rows = q_rows x heads_per_kv.
struct ChainTile {
  int first, end;
  WorkItem head;
  int packed_rows;
  int row0;
};

__device__ __forceinline__ ChainTile chain_tile(const KernelArgs& a, int rows) {
  ChainTile t;
  t.first = a.prefill_chains[2 * blockIdx.x];
  t.end = a.prefill_chains[2 * blockIdx.x + 1];
  t.head = a.prefill_items[t.first];
  t.packed_rows = t.head.q_rows * a.heads_per_kv;
  t.row0 = blockIdx.y * rows;
  return t;
}

// Packed row `packed` of a tile: query row r, head g, at absolute position
// pos; live when the tile has it.
struct PackedRow {
  bool live;
  int r, g, pos;
};

__device__ __forceinline__ PackedRow packed_row(const KernelArgs& a, const ChainTile& t, int packed) {
  PackedRow row;
  row.live = packed < t.packed_rows;
  row.r = packed / a.heads_per_kv;
  row.g = packed % a.heads_per_kv;
  row.pos = t.head.q_pos + row.r;
  return row;
}

__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
  for (int off = 16; off > 0; off /= 2) x = fmaxf(x, __shfl_xor_sync(kFullMask, x, off));
  return x;
}

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int off = 16; off > 0; off /= 2) x += __shfl_xor_sync(kFullMask, x, off);
  return x;
}

// The end of a row whose state is (m, l): out = o * o_factor, and its lse.
// A sink logit joins the denominator only.
struct RowEnd {
  float o_factor;
  float lse;
};

__device__ __forceinline__ RowEnd end_row(float m, float l, const float* sink) {
  if (sink != nullptr) {
    const float s = *sink;
    const float m2 = fmaxf(m, s);
    const float f = rescale_factor(m, m2);
    l = l * f + expf(s - m2);
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    return {f * inv, l > 0.0f ? m2 + logf(l) : neg_inf()};
  }
  return {l > 0.0f ? 1.0f / l : 0.0f, l > 0.0f ? m + logf(l) : neg_inf()};
}

__device__ __forceinline__ const float* sink_of(const KernelArgs& a, int h, int g) {
  return a.sinks != nullptr ? a.sinks + h * a.heads_per_kv + g : nullptr;
}

__device__ __forceinline__ float* lse_at(const KernelArgs& a, int64_t row, int64_t h, int64_t g) {
  return a.lse + row * a.lse_s[0] + h * a.lse_s[1] + g * a.lse_s[2];
}

// Record packed_row (= row * heads_per_kv + head) of the chain whose partial
// rows start at `partial` (plan.h).
__device__ __forceinline__ float* partial_record(const KernelArgs& a, int64_t partial, int64_t packed_row) {
  return a.partials + partial_record_offset(partial, packed_row, a.heads_per_kv, a.head_dim);
}

// Stores o (already times v_scale) for query row `row_in_tile`, head g of a
// chain's last item: finalized into out and lse, or as a split's partial
// record. Called once per element d; the lse/m/l once per row (d == 0).
__device__ __forceinline__ void flush_element(const KernelArgs& a, const WorkItem& last,
                                              int row_in_tile, int g, int d, float m, float l,
                                              float o) {
  const int h = last.kv_head;
  if (last.partial < 0) {
    const RowEnd end = end_row(m, l, sink_of(a, h, g));
    store_out(a, last.q_row + row_in_tile, h, g, d, o * end.o_factor);
    if (d == 0 && a.lse != nullptr) *lse_at(a, last.q_row + row_in_tile, h, g) = end.lse;
  } else {
    float* record = partial_record(a, last.partial, int64_t{row_in_tile} * a.heads_per_kv + g);
    if (d == 0) {
      record[0] = m;
      record[1] = l;
    }
    record[2 + d] = o;
  }
}

// A chain's last item flushed one row at a time, then one element at a
// time (flush_element split in two, for epilogues that stage O): the row's
// lse, or its partial record's m and l, and in *factor what each of its o
// elements (not yet times v_scale) is multiplied by.
__device__ __forceinline__ void flush_row_state(const KernelArgs& a, const WorkItem& last,
                                                const PackedRow& row, float m, float l,
                                                float v_scale, float* factor) {
  if (!row.live) return;
  const int h = last.kv_head;
  if (last.partial < 0) {
    const RowEnd end = end_row(m, l, sink_of(a, h, row.g));
    *factor = v_scale * end.o_factor;
    if (a.lse != nullptr) *lse_at(a, last.q_row + row.r, h, row.g) = end.lse;
  } else {
    float* record = partial_record(a, last.partial, int64_t{row.r} * a.heads_per_kv + row.g);
    record[0] = m;
    record[1] = l;
    *factor = v_scale;
  }
}

// Element d of a flushed row, `value` already times the row's factor.
__device__ __forceinline__ void flush_value(const KernelArgs& a, const WorkItem& last,
                                            const PackedRow& row, int d, float value) {
  if (last.partial < 0) {
    store_out(a, last.q_row + row.r, last.kv_head, row.g, d, value);
  } else {
    partial_record(a, last.partial, int64_t{row.r} * a.heads_per_kv + row.g)[2 + d] = value;
  }
}

// The end of a prefill CTA whose O (kRows x kDim f32, not yet times
// v_scale) and rows' m and l are staged in shared memory: each row's state,
// then every element by one short loop (an unrolled flush from registers is
// thousands of instructions run once per warp, each an instruction-cache
// miss), consecutive threads on consecutive elements of a row. f_s: kRows
// floats of scratch. All threads of the CTA take part.
template <int kRows, int kDim>
__device__ __forceinline__ void flush_staged_tile(const KernelArgs& a, const ChainTile& tile,
                                                  const float* o_s, const float* m_s,
                                                  const float* l_s, float* f_s) {
  const WorkItem last = a.prefill_items[tile.end - 1];
  if (threadIdx.x < kRows) {
    flush_row_state(a, last, packed_row(a, tile, tile.row0 + threadIdx.x), m_s[threadIdx.x],
                    l_s[threadIdx.x], v_factor(a, last.kv_head), &f_s[threadIdx.x]);
  }
  __syncthreads();
#pragma unroll 1
  for (int x = threadIdx.x; x < kRows * kDim; x += blockDim.x) {
    const int i = x / kDim;
    const PackedRow row = packed_row(a, tile, tile.row0 + i);
    if (row.live) flush_value(a, last, row, x % kDim, o_s[x] * f_s[i]);
  }
}

}  // namespace rpa::cuda

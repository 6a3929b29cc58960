// The prefill kernel: one CTA per prefill chain (Q tile, kv head, split) and
// block of 64 packed rows (row x heads_per_kv): every packed row of a tile
// shares each K/V block that the CTA stages in shared memory as f32.
//
// Thread t serves packed row i = (warp % 2) * 32 + lane and quarter
// part = warp / 2: the scores of keys [8 part, 8 part + 8) of each 32-key block
// and the output dims [part * D/4, (part + 1) * D/4). Rows are padded to
// D + 1 floats so the 32 rows of a warp fall in 32 banks; K and V rows are
// read by a warp at one address (a broadcast). Masks (causal diagonal, window
// edge, the block's tail) are one comparison per score.
//
// f32 arithmetic throughout: the path for f32 q (with f32 or fp8 caches),
// which docs/contract.md §5 holds to 2e-5; bf16 and f16 q take prefill_mma.cuh.
#pragma once

#include "cuda/common.cuh"

namespace rpa::cuda {

inline constexpr int kPrefillThreads = 256;
inline constexpr int kPrefillRows = 64;  // packed rows per CTA
inline constexpr int kPrefillKeys = 32;  // keys per staged K/V block
inline constexpr int kScoreStride = kPrefillKeys + 1;

// Dynamic shared memory of one CTA, in floats, for head_dim `dim`.
__host__ __device__ constexpr int prefill_smem_floats(int dim) {
  return 2 * kPrefillRows * (dim + 1)        // Q, O
         + 2 * kPrefillKeys * dim            // K, V
         + 2 * kPrefillRows * kScoreStride;  // scores, probabilities
}

template <typename KV>
__global__ void __launch_bounds__(kPrefillThreads) prefill_kernel(const KernelArgs a) {
  float* smem = reinterpret_cast<float*>(dynamic_smem());
  const int dim = a.head_dim;
  const int row_stride = dim + 1;
  float* q_s = smem;
  float* o_s = q_s + kPrefillRows * row_stride;
  float* k_s = o_s + kPrefillRows * row_stride;
  float* v_s = k_s + kPrefillKeys * dim;
  float* s_s = v_s + kPrefillKeys * dim;
  float* p_s = s_s + kPrefillRows * kScoreStride;

  const ChainTile tile = chain_tile(a, kPrefillRows);
  if (tile.row0 >= tile.packed_rows) return;  // the whole CTA: this tile has fewer rows
  const int h = tile.head.kv_head;

  const int warp = threadIdx.x / 32;
  const int i = (warp % 2) * 32 + threadIdx.x % 32;
  const int part = warp / 2;
  const PackedRow row = packed_row(a, tile, tile.row0 + i);
  const int quarter = dim / 4;
  const int d_begin = part * quarter;

  stage_q(a, tile.head, tile.row0, kPrefillRows, q_factor(a, h), q_s, row_stride);
  for (int j = 0; j < quarter; ++j) o_s[i * row_stride + d_begin + j] = 0.0f;
  float m = neg_inf(), l = 0.0f;
  __syncthreads();

  for (int it = tile.first; it < tile.end; ++it) {
    const WorkItem item = a.prefill_items[it];
    for (int kb = item.kv_begin; kb < item.kv_end; kb += kPrefillKeys) {
      const int n = min(kPrefillKeys, item.kv_end - kb);

      stage_kv<KV>(a, item, kb, n, kPrefillKeys, k_s, v_s, dim);
      __syncthreads();

      // Scores of this thread's 8 keys, masked to what row i sees.
      float s[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) s[j] = 0.0f;
      const float* q_row = q_s + i * row_stride;
      const float* k_rows = k_s + part * 8 * dim;
      for (int d = 0; d < dim; ++d) {
        const float qd = q_row[d];
#pragma unroll
        for (int j = 0; j < 8; ++j) s[j] = fmaf(qd, k_rows[j * dim + d], s[j]);
      }
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const int kk = part * 8 + j;
        const int key = kb + kk;
        const bool seen = row.live && kk < n && row_sees(a, row.pos, key);
        s_s[i * kScoreStride + kk] = masked_score(a, seen, s[j]);
      }
      __syncthreads();

      // The row's online-softmax step; the 4 threads of a row compute it alike.
      float block_max = neg_inf();
      for (int kk = 0; kk < kPrefillKeys; ++kk) block_max = fmaxf(block_max, s_s[i * kScoreStride + kk]);
      const float m_new = fmaxf(m, block_max);
      const float alpha = rescale_factor(m, m_new);
      float sum = 0.0f;
      for (int kk = 0; kk < kPrefillKeys; ++kk) {
        const float x = s_s[i * kScoreStride + kk];
        const float p = softmax_weight(x, m_new);
        sum += p;
        if (kk / 8 == part) p_s[i * kScoreStride + kk] = p;
      }
      l = l * alpha + sum;
      m = m_new;
      __syncthreads();

      // o = o * alpha + p . V over this thread's dims.
      for (int j = 0; j < quarter; ++j) {
        const int d = d_begin + j;
        float acc = o_s[i * row_stride + d] * alpha;
        for (int kk = 0; kk < n; ++kk) acc = fmaf(p_s[i * kScoreStride + kk], v_s[kk * dim + d], acc);
        o_s[i * row_stride + d] = acc;
      }
      __syncthreads();
    }
  }

  if (!row.live) return;
  const WorkItem last = a.prefill_items[tile.end - 1];
  const float o_factor = v_factor(a, h);
  for (int j = 0; j < quarter; ++j) {
    const int d = d_begin + j;
    flush_element(a, last, row.r, row.g, d, m, l, o_s[i * row_stride + d] * o_factor);
  }
}

}  // namespace rpa::cuda

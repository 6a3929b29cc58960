// The tensor-core prefill kernel, for bf16 and f16 q (K/V in q's dtype or
// fp8, which widens exactly to either): one CTA of 4 warps per prefill chain
// and block of 64 packed rows (row x heads_per_kv), as prefill.cuh, with both
// products on WMMA 16x16x16 tiles:
//   S = Q K^T   warp w: rows [16w, 16w + 16) x the block's 64 keys
//   O += P V    warp w: rows [16w, 16w + 16) x head_dim, one 16-wide tile at a time
// S goes through shared memory for the softmax step (two threads per row,
// 32 keys each), P back as q's dtype, and O lives in shared memory in f32, so
// the per-row rescale is plain code (a WMMA fragment's layout is opaque).
// q is staged unscaled (exact) and scale is applied to S in f32.
#pragma once

#include <mma.h>

#include "cuda/common.cuh"

namespace rpa::cuda {

inline constexpr int kMmaThreads = 128;
inline constexpr int kMmaRows = 64;  // packed rows per CTA
inline constexpr int kMmaKeys = 64;  // keys per staged K/V block
inline constexpr int kMmaPad = 8;    // 16 bytes per 16-bit row: spreads ldmatrix rows over banks

struct MmaLayout {
  int ld_qkv;  // 16-bit elements per Q, K and V row
  int ld_s;    // floats per S row
  int ld_p;    // 16-bit elements per P row
  int ld_o;    // floats per O row
  int q, k, v, s, p, o, bytes;  // byte offsets, all 128-byte aligned, and the total

  __host__ __device__ static constexpr int align(int n) { return (n + 127) / 128 * 128; }
  __host__ __device__ constexpr explicit MmaLayout(int dim)
      : ld_qkv(dim + kMmaPad), ld_s(kMmaKeys + 4), ld_p(kMmaKeys + kMmaPad), ld_o(dim + 4),
        q(0),
        k(align(q + kMmaRows * ld_qkv * 2)),
        v(align(k + kMmaKeys * ld_qkv * 2)),
        s(align(v + kMmaKeys * ld_qkv * 2)),
        p(align(s + kMmaRows * ld_s * 4)),
        o(align(p + kMmaRows * ld_p * 2)),
        bytes(align(o + kMmaRows * ld_o * 4)) {}
};

template <typename KV, typename C>
__global__ void __launch_bounds__(kMmaThreads) prefill_mma_kernel(const KernelArgs a) {
  namespace wmma = nvcuda::wmma;
  unsigned char* smem = dynamic_smem();
  const int dim = a.head_dim;
  const MmaLayout lay(dim);
  C* q_s = reinterpret_cast<C*>(smem + lay.q);
  C* k_s = reinterpret_cast<C*>(smem + lay.k);
  C* v_s = reinterpret_cast<C*>(smem + lay.v);
  float* s_s = reinterpret_cast<float*>(smem + lay.s);
  C* p_s = reinterpret_cast<C*>(smem + lay.p);
  float* o_s = reinterpret_cast<float*>(smem + lay.o);

  const ChainTile tile = chain_tile(a, kMmaRows);
  if (tile.row0 >= tile.packed_rows) return;  // the whole CTA: this tile has fewer rows
  const int h = tile.head.kv_head;
  const int warp = threadIdx.x / 32;

  // The softmax step's thread: row i, keys [32 half, 32 half + 32), and the
  // same half of O's columns for the rescale and the flush.
  const int i = threadIdx.x / 2;
  const int half = threadIdx.x % 2;
  const PackedRow row = packed_row(a, tile, tile.row0 + i);
  const int d_half = dim / 2;

  stage_q(a, tile.head, tile.row0, kMmaRows, 1.0f, q_s, lay.ld_qkv);
  for (int d = half * d_half; d < (half + 1) * d_half; ++d) o_s[i * lay.ld_o + d] = 0.0f;
  const float scale = q_factor(a, h);  // applied to S in f32: q is staged exact
  float m = neg_inf(), l = 0.0f;
  __syncthreads();

  for (int it = tile.first; it < tile.end; ++it) {
    const WorkItem item = a.prefill_items[it];
    for (int kb = item.kv_begin; kb < item.kv_end; kb += kMmaKeys) {
      const int n = min(kMmaKeys, item.kv_end - kb);

      stage_kv<KV>(a, item, kb, n, kMmaKeys, k_s, v_s, lay.ld_qkv);
      __syncthreads();

      // S = Q K^T for this warp's 16 rows and the 64 keys.
      {
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kMmaKeys / 16];
#pragma unroll
        for (int c = 0; c < kMmaKeys / 16; ++c) wmma::fill_fragment(acc[c], 0.0f);
        for (int k0 = 0; k0 < dim; k0 += 16) {
          wmma::fragment<wmma::matrix_a, 16, 16, 16, C, wmma::row_major> qf;
          wmma::load_matrix_sync(qf, q_s + warp * 16 * lay.ld_qkv + k0, lay.ld_qkv);
#pragma unroll
          for (int c = 0; c < kMmaKeys / 16; ++c) {
            // K^T as a col-major (dim x keys) matrix is K's rows as they lie.
            wmma::fragment<wmma::matrix_b, 16, 16, 16, C, wmma::col_major> kf;
            wmma::load_matrix_sync(kf, k_s + c * 16 * lay.ld_qkv + k0, lay.ld_qkv);
            wmma::mma_sync(acc[c], qf, kf, acc[c]);
          }
        }
#pragma unroll
        for (int c = 0; c < kMmaKeys / 16; ++c) {
          wmma::store_matrix_sync(s_s + warp * 16 * lay.ld_s + c * 16, acc[c], lay.ld_s,
                                  wmma::mem_row_major);
        }
      }
      __syncthreads();

      // The row's online-softmax step, two threads per row.
      float x[kMmaKeys / 2];
      float block_max = neg_inf();
#pragma unroll
      for (int j = 0; j < kMmaKeys / 2; ++j) {
        const int kk = half * (kMmaKeys / 2) + j;
        const int key = kb + kk;
        const bool seen = row.live && kk < n && row_sees(a, row.pos, key);
        x[j] = masked_score(a, seen, s_s[i * lay.ld_s + kk] * scale);
        block_max = fmaxf(block_max, x[j]);
      }
      block_max = fmaxf(block_max, __shfl_xor_sync(kFullMask, block_max, 1));
      const float m_new = fmaxf(m, block_max);
      const float alpha = rescale_factor(m, m_new);
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < kMmaKeys / 2; ++j) {
        const float p = softmax_weight(x[j], m_new);
        sum += p;
        p_s[i * lay.ld_p + half * (kMmaKeys / 2) + j] = stage_value<C>(p);
      }
      sum += __shfl_xor_sync(kFullMask, sum, 1);
      l = l * alpha + sum;
      m = m_new;
      for (int d = half * d_half; d < (half + 1) * d_half; ++d) o_s[i * lay.ld_o + d] *= alpha;
      __syncthreads();

      // O += P V, one 16-column tile of this warp's rows at a time.
      for (int c0 = 0; c0 < dim; c0 += 16) {
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> of;
        float* o_tile = o_s + warp * 16 * lay.ld_o + c0;
        wmma::load_matrix_sync(of, o_tile, lay.ld_o, wmma::mem_row_major);
#pragma unroll
        for (int k0 = 0; k0 < kMmaKeys; k0 += 16) {
          wmma::fragment<wmma::matrix_a, 16, 16, 16, C, wmma::row_major> pf;
          wmma::fragment<wmma::matrix_b, 16, 16, 16, C, wmma::row_major> vf;
          wmma::load_matrix_sync(pf, p_s + warp * 16 * lay.ld_p + k0, lay.ld_p);
          wmma::load_matrix_sync(vf, v_s + k0 * lay.ld_qkv + c0, lay.ld_qkv);
          wmma::mma_sync(of, pf, vf, of);
        }
        wmma::store_matrix_sync(o_tile, of, lay.ld_o, wmma::mem_row_major);
      }
      __syncthreads();
    }
  }

  if (!row.live) return;
  const WorkItem last = a.prefill_items[tile.end - 1];
  const float o_factor = v_factor(a, h);
  for (int d = half * d_half; d < (half + 1) * d_half; ++d) {
    flush_element(a, last, row.r, row.g, d, m, l, o_s[i * lay.ld_o + d] * o_factor);
  }
}

}  // namespace rpa::cuda

// The f32 prefill kernel, for f32 q (with f32 or fp8 caches), which
// docs/contract.md §5 holds to 2e-5, so f32 arithmetic throughout (no TF32):
// one CTA of 256 threads per prefill chain and block of 64 packed rows (row x
// heads_per_kv), which share every 32-key K/V block staged in shared memory.
//
// Register tiles, as an SGEMM's: thread t owns rows [4 (t / 16), +4) and
// - of S, keys t % 16 and t % 16 + 16 of the block (4 x 2 scores from 16-byte
//   loads of q and K along head_dim: 6 loads per 32 FMAs);
// - of O, dims 4 (t % 16) + 64 c, 4 wide, for every 64-wide column chunk c
//   (4 x 4 per chunk, in registers for the whole chain).
// A row's 32 scores lie in the 16 threads of a half warp: max and sum by
// shuffles, so every thread of the row knows m, l and the rescale of its own
// O. P goes through shared memory, since O's threads need every key's p.
// Rows are padded to dim + 4 floats: a quarter warp's 16-byte loads of 8
// consecutive K rows fall in distinct banks.
#pragma once

#include "cuda/common.cuh"

namespace rpa::cuda {

inline constexpr int kPrefillThreads = 256;
inline constexpr int kPrefillRows = 64;  // packed rows per CTA
inline constexpr int kPrefillKeys = 32;  // keys per staged K/V block
inline constexpr int kPStride = kPrefillKeys + 1;

// Dynamic shared memory of one CTA, in floats, for head_dim `dim`.
__host__ __device__ constexpr int prefill_smem_floats(int dim) {
  return kPrefillRows * (dim + 4)         // Q
         + 2 * kPrefillKeys * (dim + 4)   // K, V
         + kPrefillRows * kPStride;       // P
}

__device__ __forceinline__ float4 load4(const float* p) { return *reinterpret_cast<const float4*>(p); }

// Blocks per SM the compiler sizes registers for (0: its choice, 128 here):
// d256's O tile needs more, at one CTA per SM.
template <int kDim>
inline constexpr int kPrefillMinBlocks = kDim > 128 ? 1 : 0;

template <typename KV, int kDim>
__global__ void __launch_bounds__(kPrefillThreads, kPrefillMinBlocks<kDim>)
    prefill_kernel(const KernelArgs a) {
  constexpr int ld = kDim + 4;
  constexpr int kChunks = (kDim + 63) / 64;  // 64-wide column chunks of O
  float* smem = reinterpret_cast<float*>(dynamic_smem());
  float* q_s = smem;
  float* k_s = q_s + kPrefillRows * ld;
  float* v_s = k_s + kPrefillKeys * ld;
  float* p_s = v_s + kPrefillKeys * ld;

  const ChainTile tile = chain_tile(a, kPrefillRows);
  if (tile.row0 >= tile.packed_rows) return;  // the whole CTA: this tile has fewer rows
  const int h = tile.head.kv_head;
  const int r0 = (threadIdx.x / 16) * 4;  // first of this thread's 4 rows
  const int col = threadIdx.x % 16;       // key col and col + 16; dims 4 col + 64 c
  // The keys each of the 4 rows sees: [first_key, last_key] (dead rows none).
  int first_key[4], last_key[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const PackedRow row = packed_row(a, tile, tile.row0 + r0 + i);
    first_key[i] = static_cast<int>(RowMask{a.sliding_window}.first_key(row.pos));
    last_key[i] = row.live ? row.pos : -1;
  }

  stage_q(a, tile.head, tile.row0, kPrefillRows, q_factor(a, h), q_s, ld);
  float o[4][kChunks][4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int c = 0; c < kChunks; ++c) o[i][c][0] = o[i][c][1] = o[i][c][2] = o[i][c][3] = 0.0f;
  }
  float m[4], l[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) m[i] = neg_inf(), l[i] = 0.0f;

  for (int it = tile.first; it < tile.end; ++it) {
    const WorkItem item = a.prefill_items[it];
    for (int kb = item.kv_begin; kb < item.kv_end; kb += kPrefillKeys) {
      const int n = min(kPrefillKeys, item.kv_end - kb);
      __syncthreads();  // the previous block's K, V and P are no longer read
      stage_kv<KV>(a, item, kb, n, kPrefillKeys, k_s, v_s, ld);
      __syncthreads();

      // S: 4 rows x keys col, col + 16.
      float s[4][2];
#pragma unroll
      for (int i = 0; i < 4; ++i) s[i][0] = s[i][1] = 0.0f;
#pragma unroll 4
      for (int d = 0; d < kDim; d += 4) {
        const float4 k0 = load4(k_s + col * ld + d);
        const float4 k1 = load4(k_s + (col + 16) * ld + d);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const float4 q = load4(q_s + (r0 + i) * ld + d);
          s[i][0] = fmaf(q.x, k0.x, s[i][0]);
          s[i][0] = fmaf(q.y, k0.y, s[i][0]);
          s[i][0] = fmaf(q.z, k0.z, s[i][0]);
          s[i][0] = fmaf(q.w, k0.w, s[i][0]);
          s[i][1] = fmaf(q.x, k1.x, s[i][1]);
          s[i][1] = fmaf(q.y, k1.y, s[i][1]);
          s[i][1] = fmaf(q.z, k1.z, s[i][1]);
          s[i][1] = fmaf(q.w, k1.w, s[i][1]);
        }
      }

      // The online-softmax step of the 4 rows; a row's keys lie in the 16
      // threads of this half warp.
      float alpha[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        float block_max = neg_inf();
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          const int kk = col + 16 * j;
          const bool seen = kk < n && kb + kk >= first_key[i] && kb + kk <= last_key[i];
          s[i][j] = masked_score(a, seen, s[i][j]);
          block_max = fmaxf(block_max, s[i][j]);
        }
#pragma unroll
        for (int off = 8; off > 0; off /= 2) {
          block_max = fmaxf(block_max, __shfl_xor_sync(kFullMask, block_max, off));
        }
        const float m_new = fmaxf(m[i], block_max);
        alpha[i] = rescale_factor(m[i], m_new);
        float sum = 0.0f;
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          const float p = softmax_weight(s[i][j], m_new);
          sum += p;
          p_s[(r0 + i) * kPStride + col + 16 * j] = p;
        }
#pragma unroll
        for (int off = 8; off > 0; off /= 2) sum += __shfl_xor_sync(kFullMask, sum, off);
        l[i] = l[i] * alpha[i] + sum;
        m[i] = m_new;
      }
      __syncthreads();

      // O = O * alpha + P V over this thread's dims; keys past n have p = 0
      // and zero V rows.
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
#pragma unroll
          for (int e = 0; e < 4; ++e) o[i][c][e] *= alpha[i];
        }
      }
      for (int kk = 0; kk < n; ++kk) {
        float p[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) p[i] = p_s[(r0 + i) * kPStride + kk];
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
          const int d = 4 * col + 64 * c;
          if (d >= kDim) continue;
          const float4 v = load4(v_s + kk * ld + d);
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            o[i][c][0] = fmaf(p[i], v.x, o[i][c][0]);
            o[i][c][1] = fmaf(p[i], v.y, o[i][c][1]);
            o[i][c][2] = fmaf(p[i], v.z, o[i][c][2]);
            o[i][c][3] = fmaf(p[i], v.w, o[i][c][3]);
          }
        }
      }
    }
  }

  // The epilogue through shared memory (flush_staged_tile says why): O into
  // Q's rows, each row's m, l and factor into P's.
  __syncthreads();  // the last block's P V is done with P; Q is no longer read
  float* o_s = q_s;  // [kPrefillRows][kDim]
  float* m_s = p_s;
  float* l_s = m_s + kPrefillRows;
  float* f_s = l_s + kPrefillRows;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if (col == 0) m_s[r0 + i] = m[i], l_s[r0 + i] = l[i];
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const int d = 4 * col + 64 * c;
      if (d < kDim) {
        *reinterpret_cast<float4*>(o_s + (r0 + i) * kDim + d) =
            make_float4(o[i][c][0], o[i][c][1], o[i][c][2], o[i][c][3]);
      }
    }
  }
  __syncthreads();
  flush_staged_tile<kPrefillRows, kDim>(a, tile, o_s, m_s, l_s, f_s);
}

}  // namespace rpa::cuda

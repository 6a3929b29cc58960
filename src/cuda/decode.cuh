// The decode kernel: one CTA per decode chain (slot, kv head, split) and block
// of up to GM of its heads_per_kv query heads, which share every K and V load.
//
// Each warp owns whole tiles of 32 keys. Within a warp, a key is read by L
// lanes, 8 elements each (a 16-byte load for 16-bit caches), so a warp reads
// 32 / L keys side by side. Per tile: the scores of its keys (the L lanes of a
// key reduce their partial dots by shuffles), one online-softmax step per
// head with one exp per key, then the V rows weighted into the lanes' o.
// At the end the warps' states are merged in shared memory and the chain's
// last item flushes them (out and lse, or a split's partial record).
#pragma once

#include "cuda/common.cuh"

namespace rpa::cuda {

inline constexpr int kDecodeWarps = 4;
inline constexpr int kDecodeTileKeys = 32;

template <typename KV, int L, int GM>
__global__ void __launch_bounds__(kDecodeWarps * 32) decode_kernel(const KernelArgs a) {
  constexpr int kKeysPerStep = 32 / L;  // keys a warp reads side by side
  constexpr int kSteps = kDecodeTileKeys / kKeysPerStep;
  __shared__ float s_p[kDecodeWarps][GM][kDecodeTileKeys];
  __shared__ float s_o[kDecodeWarps][GM][kMaxHeadDim];
  __shared__ float s_m[kDecodeWarps][GM];
  __shared__ float s_l[kDecodeWarps][GM];

  const int first = a.decode_chains[blockIdx.x];
  const int end = a.decode_chains[blockIdx.x + 1];
  const WorkItem head_item = a.decode_items[first];
  const int h = head_item.kv_head;
  const int g0 = blockIdx.y * GM;
  const int heads = min(GM, a.heads_per_kv - g0);
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int group = lane / L;  // which of the step's keys this lane reads
  const int d0 = (lane % L) * 8;
  const bool has_dims = d0 < a.head_dim;

  // q times scale (and the fp8 K scale), in registers for the whole chain.
  const float q_scale = q_factor(a, h);
  float q[GM][8];
#pragma unroll
  for (int g = 0; g < GM; ++g) {
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      q[g][e] = (g < heads && has_dims) ? load_q(a, head_item.q_row, h, g0 + g, d0 + e) * q_scale
                                        : 0.0f;
    }
  }
  float o[GM][8];
  float m[GM], l[GM];
#pragma unroll
  for (int g = 0; g < GM; ++g) {
    m[g] = neg_inf();
    l[g] = 0.0f;
#pragma unroll
    for (int e = 0; e < 8; ++e) o[g][e] = 0.0f;
  }

  for (int it = first; it < end; ++it) {
    const WorkItem item = a.decode_items[it];
    const int keys = item.kv_end - item.kv_begin;
    for (int t0 = warp * kDecodeTileKeys; t0 < keys; t0 += kDecodeWarps * kDecodeTileKeys) {
      const int tile_keys = min(kDecodeTileKeys, keys - t0);

      // Scores. Keys past the tile's end are -inf and never read.
#pragma unroll
      for (int step = 0; step < kSteps; ++step) {
        const int kk = step * kKeysPerStep + group;
        const bool live = kk < tile_keys;
        float dot[GM];
#pragma unroll
        for (int g = 0; g < GM; ++g) dot[g] = 0.0f;
        if (live && has_dims) {
          float k[8];
          load8(kv_row<KV>(a.k_cache, a.pages, item, a.page_size, item.kv_begin + t0 + kk, h) + d0, k);
#pragma unroll
          for (int g = 0; g < GM; ++g) {
#pragma unroll
            for (int e = 0; e < 8; ++e) dot[g] = fmaf(q[g][e], k[e], dot[g]);
          }
        }
#pragma unroll
        for (int off = L / 2; off > 0; off /= 2) {
#pragma unroll
          for (int g = 0; g < GM; ++g) dot[g] += __shfl_xor_sync(kFullMask, dot[g], off);
        }
        if (lane % L == 0) {
#pragma unroll
          for (int g = 0; g < GM; ++g)
            s_p[warp][g][kk] = masked_score(a, live, dot[g]);
        }
      }
      __syncwarp();

      // One online-softmax step per head: lane = key of the tile.
#pragma unroll
      for (int g = 0; g < GM; ++g) {
        const float x = s_p[warp][g][lane];
        const float m_new = fmaxf(m[g], warp_max(x));
        const float alpha = rescale_factor(m[g], m_new);
        const float p = softmax_weight(x, m_new);
        l[g] = l[g] * alpha + warp_sum(p);
        m[g] = m_new;
        s_p[warp][g][lane] = p;
#pragma unroll
        for (int e = 0; e < 8; ++e) o[g][e] *= alpha;
      }
      __syncwarp();

      // o += p * v over the tile's live keys.
#pragma unroll
      for (int step = 0; step < kSteps; ++step) {
        const int kk = step * kKeysPerStep + group;
        if (kk < tile_keys && has_dims) {
          float v[8];
          load8(kv_row<KV>(a.v_cache, a.pages, item, a.page_size, item.kv_begin + t0 + kk, h) + d0, v);
#pragma unroll
          for (int g = 0; g < GM; ++g) {
            const float p = s_p[warp][g][kk];
#pragma unroll
            for (int e = 0; e < 8; ++e) o[g][e] = fmaf(p, v[e], o[g][e]);
          }
        }
      }
      __syncwarp();
    }
  }

  // The key groups of a warp share m and l: their o add up.
#pragma unroll
  for (int off = L; off < 32; off *= 2) {
#pragma unroll
    for (int g = 0; g < GM; ++g) {
#pragma unroll
      for (int e = 0; e < 8; ++e) o[g][e] += __shfl_xor_sync(kFullMask, o[g][e], off);
    }
  }
  if (group == 0 && has_dims) {
#pragma unroll
    for (int g = 0; g < GM; ++g) {
#pragma unroll
      for (int e = 0; e < 8; ++e) s_o[warp][g][d0 + e] = o[g][e];
    }
  }
  if (lane == 0) {
#pragma unroll
    for (int g = 0; g < GM; ++g) {
      s_m[warp][g] = m[g];
      s_l[warp][g] = l[g];
    }
  }
  __syncthreads();

  // Merge the warps' states, in warp order, and flush.
  const WorkItem last = a.decode_items[end - 1];
  const float o_factor = v_factor(a, h);
  for (int i = threadIdx.x; i < heads * a.head_dim; i += blockDim.x) {
    const int g = i / a.head_dim;
    const int d = i % a.head_dim;
    float m_all = neg_inf();
#pragma unroll
    for (int w = 0; w < kDecodeWarps; ++w) m_all = fmaxf(m_all, s_m[w][g]);
    float l_all = 0.0f, o_all = 0.0f;
#pragma unroll
    for (int w = 0; w < kDecodeWarps; ++w) {
      const float f = rescale_factor(s_m[w][g], m_all);
      l_all += s_l[w][g] * f;
      o_all += s_o[w][g][d] * f;
    }
    flush_element(a, last, 0, g0 + g, d, m_all, l_all, o_all * o_factor);
  }
}

}  // namespace rpa::cuda

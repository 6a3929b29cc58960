// The tensor-core decode kernel, for bf16 and f16 q and caches at head_dim up
// to 128: one CTA of 4 warps per decode chain (slot, kv head, split) and
// block of up to 16 query heads of that kv head, which share every K and V
// load (GQA packing), the heads being the rows of mma.sync m16n8k16.
//
// The f32 kernel (decode.cuh) spends 32 FFMAs per key and kv head at GQA 4
// (q . k and p v for 4 heads, head_dim 128): on the H200 its issue slots,
// not HBM, bounded it. Here 16 keys cost 16 mma for S = Q K^T and 16 for
// O += P V whatever the head count up to 16, with the softmax on the
// accumulators in registers as in prefill_mma.cuh (q exact, scale applied to
// S in f32, P rounded to q's dtype).
//
// Warp w takes the chain's tiles of 16 keys w, w + W, ... across item
// boundaries (decode.cuh's cursor), each into its own ring of kStages tiles
// in shared memory by cp.async: while a warp multiplies tile i, tiles i + 1
// and i + 2 are in flight and the page indices of the tile after them are
// being fetched. The warps' states merge in shared memory in warp order at
// the end, and the chain's last item flushes them (out and lse, or a split's
// partial record).
#pragma once

#include "cuda/common.cuh"
#include "cuda/decode.cuh"
#include "cuda/mma.cuh"

namespace rpa::cuda {

inline constexpr int kDecodeMmaWarps = 4;
inline constexpr int kDecodeMmaRows = 16;  // query heads per CTA: the mma's M
inline constexpr int kDecodeMmaKeys = 16;  // keys per tile
inline constexpr int kDecodeMmaStages = 3;

// Whether the tensor-core kernel takes a call of these dtypes and head_dim.
__host__ __device__ constexpr bool decode_on_mma(DType q, DType kv, int head_dim) {
  return (q == DType::kBF16 || q == DType::kF16) && kv == q && head_dim <= 128 && head_dim % 16 == 0;
}

// Dynamic shared memory of a CTA at head_dim `dim` (DecodeMmaLayout): each
// warp's ring of K and V tiles, 16-bit rows of dim + 8 elements, which the
// warps' m, l and o of every row overlay at the end. 104,448 bytes at head_dim
// 128: more than GPUs with 99 KiB per block (sm_86, sm_89) offer, where the
// CUDA-core kernel runs instead (launch_decode).
__host__ __device__ constexpr int decode_mma_smem_bytes(int dim) {
  const int rings = kDecodeMmaWarps * kDecodeMmaStages * 2 * kDecodeMmaKeys * (dim + 8) * 2;
  const int states = kDecodeMmaWarps * kDecodeMmaRows * (dim + 2) * static_cast<int>(sizeof(float));
  return rings > states ? rings : states;
}

// The rings' layout: rows of kDim + 8 elements, so the 8 rows of an ldmatrix
// fall in distinct banks.
template <int kDim>
struct DecodeMmaLayout {
  static constexpr int kLd = kDim + 8;
  static constexpr int kTileBytes = kDecodeMmaKeys * kLd * 2;  // K or V of a tile
  static constexpr int kStageBytes = 2 * kTileBytes;
  static constexpr int kWarpBytes = kDecodeMmaStages * kStageBytes;
  static constexpr int kBytes = decode_mma_smem_bytes(kDim);
  static_assert(kBytes >= kDecodeMmaWarps * kWarpBytes);
  // 16-byte copies per lane of a K (or V) tile: chunk j * 32 + lane.
  static constexpr int kCopies = kDecodeMmaKeys * (kDim / 8) / 32;
  static_assert(kDecodeMmaKeys * (kDim / 8) % 32 == 0);
};

template <typename C, int kDim>
__global__ void __launch_bounds__(kDecodeMmaWarps * 32, 2) decode_mma_kernel(const KernelArgs a) {
  using Lay = DecodeMmaLayout<kDim>;
  constexpr int kQSteps = kDim / 16;   // k-steps of Q K^T
  constexpr int kDimTiles = kDim / 8;  // 8-wide column tiles of O
  constexpr int kChunks = kDim / 8;    // 16-byte chunks of a row
  constexpr int kStages = kDecodeMmaStages;
  constexpr int kLd = Lay::kLd;

  const int first = a.decode_chains[blockIdx.x];
  const int end = a.decode_chains[blockIdx.x + 1];
  const int h = __ldg(&a.decode_items[first].kv_head);
  const int q_row = __ldg(&a.decode_items[first].q_row);
  const int g0 = blockIdx.y * kDecodeMmaRows;
  const int heads = min(kDecodeMmaRows, a.heads_per_kv - g0);
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int quad_col = 2 * (lane % 4);  // first of this lane's two columns of an 8-wide tile
  // ldmatrix row addresses: K (key, 8-column half) and V transposed.
  const int a_row = lane % 8 + ((lane / 8) % 2) * 8, a_col = (lane / 16) * 8;
  const int b_row = lane % 8 + (lane / 16) * 8, b_col = ((lane / 8) % 2) * 8;
  const int shift = __ffs(a.page_size) - 1;
  const int slot_mask = a.page_size - 1;

  unsigned char* const ring = dynamic_smem() + warp * Lay::kWarpBytes;
  const auto k_tile = [&](int stage) { return reinterpret_cast<C*>(ring + stage * Lay::kStageBytes); };
  const auto v_tile = [&](int stage) {
    return reinterpret_cast<C*>(ring + stage * Lay::kStageBytes + Lay::kTileBytes);
  };
  // The page of the key of each of the lane's copies of tile t; -1 past its
  // keys (those rows become zeros, never read: they may hold NaN).
  const auto load_pages = [&](const DecodeTile& t, int (&pages)[Lay::kCopies]) {
#pragma unroll
    for (int j = 0; j < Lay::kCopies; ++j) {
      const int kk = (j * 32 + lane) / kChunks;
      pages[j] = kk < t.n ? __ldg(a.pages + t.page_base + ((t.key0 + kk) >> shift)) : -1;
    }
  };
  // Puts tile t's K and V rows in flight to ring stage `stage` (nothing past
  // the chain) and commits them as one group.
  const auto stage_tile = [&](const DecodeTile& t, const int (&pages)[Lay::kCopies], int stage) {
    if (t.n > 0) {
      C* const k_s = k_tile(stage);
      C* const v_s = v_tile(stage);
      const C* const k_base = static_cast<const C*>(a.k_cache.data);
      const C* const v_base = static_cast<const C*>(a.v_cache.data);
#pragma unroll
      for (int j = 0; j < Lay::kCopies; ++j) {
        const int chunk = j * 32 + lane;
        const int kk = chunk / kChunks;
        const int d0 = (chunk % kChunks) * 8;
        const bool live = pages[j] >= 0;
        const uint32_t page = static_cast<uint32_t>(pages[j]);
        const uint32_t in_page = static_cast<uint32_t>((t.key0 + kk) & slot_mask);
        const int64_t k_off = page * a.k_cache.s[0] + in_page * a.k_cache.s[1] +
                              static_cast<uint32_t>(h) * a.k_cache.s[2] + d0;
        const int64_t v_off = page * a.v_cache.s[0] + in_page * a.v_cache.s[1] +
                              static_cast<uint32_t>(h) * a.v_cache.s[2] + d0;
        cp_async_or_zero<16>(k_s + kk * kLd + d0, live ? k_base + k_off : k_base, live);
        cp_async_or_zero<16>(v_s + kk * kLd + d0, live ? v_base + v_off : v_base, live);
      }
    }
    cp_async_commit();
  };

  // Prologue: the warp's first kStages - 1 tiles in flight; the pages of the
  // one after them fetched. ahead[j] is the key count of tile i + j (0 past
  // the chain), tile i being the one multiplied.
  DecodeCursor cursor;
  cursor.it = first;
  cursor.tile = warp;
  load_item(a, shift, cursor);
  settle<kDecodeMmaKeys>(a, end, shift, cursor);
  int ahead[kStages - 1];
  int pages[Lay::kCopies];
#pragma unroll
  for (int j = 0; j < kStages - 1; ++j) {
    const DecodeTile t = tile_at<kDecodeMmaKeys>(cursor, end);
    load_pages(t, pages);
    stage_tile(t, pages, j);
    ahead[j] = t.n;
    cursor.tile += kDecodeMmaWarps;
    settle<kDecodeMmaKeys>(a, end, shift, cursor);
  }
  DecodeTile next = tile_at<kDecodeMmaKeys>(cursor, end);
  load_pages(next, pages);

  // q as the A operand, straight from global memory (once per CTA): register
  // r of k-step ks holds head lane/4 (+ 8 for odd r), dims ks * 16 +
  // quad_col (+ 8 for r >= 2) and the one after; heads past the block are
  // zeros. q is exact; scale is applied to S in f32.
  uint32_t q_frag[kQSteps][4];
  {
    const uint16_t* q = static_cast<const uint16_t*>(a.q.data) + q_row * a.q.s[0] + h * a.q.s[1];
#pragma unroll
    for (int ks = 0; ks < kQSteps; ++ks) {
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int row = lane / 4 + 8 * (r % 2);
        const int col = ks * 16 + quad_col + 8 * (r / 2);
        const uint16_t* p = q + (g0 + row) * a.q.s[2] + col;
        q_frag[ks][r] = row < heads ? static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 16 : 0u;
      }
    }
  }

  const auto [scale, scaled_first, unit, unit_log2] = score_units(a, h);
  float o[kDimTiles][4];
#pragma unroll
  for (int t = 0; t < kDimTiles; ++t) o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.0f;
  // This lane's two rows: heads lane/4 and lane/4 + 8.
  float m[2] = {neg_inf(), neg_inf()};
  float l[2] = {0.0f, 0.0f};

  int stage = 0;  // of tile i; tile i + kStages - 1 goes where tile i - 1 was
  while (ahead[0] > 0) {
    const int n = ahead[0];
    // Tile i has landed once at most kStages - 2 groups of this lane are
    // pending; the warp barrier shows every lane's copies to all, and keeps
    // the refill below behind every lane's reads of tile i - 1.
    cp_async_wait<kStages - 2>();
    __syncwarp();
    stage_tile(next, pages, stage == 0 ? kStages - 1 : stage - 1);
#pragma unroll
    for (int j = 0; j + 1 < kStages - 1; ++j) ahead[j] = ahead[j + 1];
    ahead[kStages - 2] = next.n;
    cursor.tile += kDecodeMmaWarps;
    settle<kDecodeMmaKeys>(a, end, shift, cursor);
    next = tile_at<kDecodeMmaKeys>(cursor, end);
    load_pages(next, pages);
    const C* const k_s = k_tile(stage);
    const C* const v_s = v_tile(stage);

    // S = Q K^T: 16 heads x 16 keys, two 8-key tiles.
    float s[2][4];
#pragma unroll
    for (int t = 0; t < 2; ++t) s[t][0] = s[t][1] = s[t][2] = s[t][3] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < kQSteps; ++ks) {
      uint32_t kf[4];
      ldmatrix_x4(kf, k_s + b_row * kLd + ks * 16 + b_col);
      mma_16816<C>(s[0], q_frag[ks], kf[0], kf[1]);
      mma_16816<C>(s[1], q_frag[ks], kf[2], kf[3]);
    }

    // The online-softmax step of the lane's two rows; a row's 16 scores lie
    // in the 4 lanes of a quad (register e of tile t: row e / 2, key 8t +
    // quad_col + e % 2).
    if (scaled_first) {
#pragma unroll
      for (int t = 0; t < 2; ++t) {
#pragma unroll
        for (int e = 0; e < 4; ++e) s[t][e] = soft_cap(s[t][e] * scale, a.logit_soft_cap);
      }
    }
    if (n < kDecodeMmaKeys) {
#pragma unroll
      for (int t = 0; t < 2; ++t) {
#pragma unroll
        for (int e = 0; e < 4; ++e) s[t][e] = t * 8 + quad_col + e % 2 < n ? s[t][e] : neg_inf();
      }
    }
    float alpha[2], m_log2[2];
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      float tile_max = fmaxf(fmaxf(s[0][2 * j], s[0][2 * j + 1]), fmaxf(s[1][2 * j], s[1][2 * j + 1]));
      tile_max = fmaxf(tile_max, __shfl_xor_sync(kFullMask, tile_max, 1));
      tile_max = fmaxf(tile_max, __shfl_xor_sync(kFullMask, tile_max, 2));
      const float m_new = fmaxf(m[j], tile_max);
      alpha[j] = m[j] == neg_inf() ? 0.0f : fast_exp2((m[j] - m_new) * unit_log2);
      m[j] = m_new;
      m_log2[j] = m_new == neg_inf() ? 0.0f : m_new * unit_log2;
    }
#pragma unroll
    for (int t = 0; t < 2; ++t) {
#pragma unroll
      for (int e = 0; e < 4; ++e) s[t][e] = fast_exp2(fmaf(s[t][e], unit_log2, -m_log2[e / 2]));
    }
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      // The lane's share of the row sum; the quad's shares add up at the end.
      l[j] = l[j] * alpha[j] + ((s[0][2 * j] + s[0][2 * j + 1]) + (s[1][2 * j] + s[1][2 * j + 1]));
    }
    // Once the rows' maxima settle, alpha is 1 and the rescale is skipped.
    if (__any_sync(kFullMask, alpha[0] != 1.0f || alpha[1] != 1.0f)) {
#pragma unroll
      for (int t = 0; t < kDimTiles; ++t) {
        o[t][0] *= alpha[0], o[t][1] *= alpha[0];
        o[t][2] *= alpha[1], o[t][3] *= alpha[1];
      }
    }

    // O += P V, P as the A operand straight from S's registers.
    const uint32_t pa[4] = {pack2<C>(s[0][0], s[0][1]), pack2<C>(s[0][2], s[0][3]),
                            pack2<C>(s[1][0], s[1][1]), pack2<C>(s[1][2], s[1][3])};
#pragma unroll
    for (int t = 0; t < kDimTiles; t += 2) {
      uint32_t vf[4];
      ldmatrix_x4_trans(vf, v_s + a_row * kLd + t * 8 + a_col);
      mma_16816<C>(o[t], pa, vf[0], vf[1]);
      mma_16816<C>(o[t + 1], pa, vf[2], vf[3]);
    }
    stage = stage == kStages - 1 ? 0 : stage + 1;
  }

  // The groups left are empty (past the chain); the states below overlay
  // every warp's ring. m goes in logit units, as a split's record holds it.
  cp_async_wait<0>();
  __syncthreads();
  float* const s_m = reinterpret_cast<float*>(dynamic_smem());
  float* const s_l = s_m + kDecodeMmaWarps * kDecodeMmaRows;
  float* const s_o = s_l + kDecodeMmaWarps * kDecodeMmaRows;  // [warp][row][dim]
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    l[j] += __shfl_xor_sync(kFullMask, l[j], 1);
    l[j] += __shfl_xor_sync(kFullMask, l[j], 2);
    const int row = warp * kDecodeMmaRows + lane / 4 + 8 * j;
    if (lane % 4 == 0) {
      s_m[row] = m[j] == neg_inf() ? m[j] : m[j] * unit;
      s_l[row] = l[j];
    }
#pragma unroll
    for (int t = 0; t < kDimTiles; ++t) {
      *reinterpret_cast<float2*>(s_o + row * kDim + t * 8 + quad_col) =
          make_float2(o[t][2 * j], o[t][2 * j + 1]);
    }
  }
  __syncthreads();

  // Merge the warps' states, in warp order, and flush.
  const WorkItem last = a.decode_items[end - 1];
  for (int i = threadIdx.x; i < heads * kDim; i += blockDim.x) {
    const int g = i / kDim;
    const int d = i % kDim;
    float m_all = neg_inf();
#pragma unroll
    for (int w = 0; w < kDecodeMmaWarps; ++w) m_all = fmaxf(m_all, s_m[w * kDecodeMmaRows + g]);
    float l_all = 0.0f, o_all = 0.0f;
#pragma unroll
    for (int w = 0; w < kDecodeMmaWarps; ++w) {
      const int row = w * kDecodeMmaRows + g;
      const float f = rescale_factor(s_m[row], m_all);
      l_all += s_l[row] * f;
      o_all += s_o[row * kDim + d] * f;
    }
    flush_element(a, last, 0, g0 + g, d, m_all, l_all, o_all);
  }
}

}  // namespace rpa::cuda

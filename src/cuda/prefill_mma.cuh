// The tensor-core prefill kernel, for bf16 and f16 q (K/V in q's dtype or
// fp8, which widens exactly to either): one CTA of 4 warps per prefill chain
// and block of 64 packed rows (row x heads_per_kv), which share every K/V
// block (GQA packing). Warp w owns packed rows [16w, 16w + 16):
//   S = Q K^T   16 rows x 64 keys on mma.sync m16n8k16, accumulators in registers
//   softmax     on those registers: a row lives in one quad of lanes
//   O += P V    P rounded to q's dtype straight from S's registers (the m16n8
//               accumulator layout is the m16k16 A operand's), O in registers
// K/V blocks of 64 keys are copied to shared memory with cp.async, two
// stages deep, so the next block's pages load while this one is multiplied;
// fragments come from shared memory by ldmatrix (rows padded by 16 bytes, so
// the 8 rows of a matrix fall in distinct banks). q is staged unscaled
// (exact) and scale is applied to S in f32.
#pragma once

#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/mma.cuh"

namespace rpa::cuda {

inline constexpr int kMmaThreads = 128;
inline constexpr int kMmaRows = 64;  // packed rows per CTA
inline constexpr int kMmaKeys = 64;  // keys per K/V block
inline constexpr int kMmaPad = 8;    // 16-bit elements past each shared row

// Shared memory of one CTA at head_dim `dim`: Q, then two stages of K and V,
// 16-bit rows of dim + kMmaPad elements (every offset 16-byte aligned).
struct MmaLayout {
  int ld;     // elements per row
  int stage;  // bytes of one stage: K then V
  int bytes;

  __host__ __device__ constexpr explicit MmaLayout(int dim)
      : ld(dim + kMmaPad), stage(2 * kMmaKeys * ld * 2), bytes(kMmaRows * ld * 2 + 2 * stage) {}
  // Byte offsets; Q is at 0.
  __host__ __device__ constexpr int k(int s) const { return kMmaRows * ld * 2 + s * stage; }
  __host__ __device__ constexpr int v(int s) const { return k(s) + kMmaKeys * ld * 2; }
};

// The next K/V block of a chain: keys [kb, kb + kMmaKeys) of item `it`,
// clipped to the item's end; items run in chain order.
struct BlockCursor {
  int it, end;
  int kb;
  WorkItem item;

  __device__ __forceinline__ bool valid() const { return it < end; }
  __device__ __forceinline__ int keys() const { return min(kMmaKeys, item.kv_end - kb); }

  // Moves to the first key at or after kb, skipping items with none left.
  __device__ __forceinline__ void settle(const KernelArgs& a) {
    while (it < end && kb >= item.kv_end) {
      if (++it < end) {
        item = a.prefill_items[it];
        kb = item.kv_begin;
      }
    }
  }
  __device__ __forceinline__ void advance(const KernelArgs& a) {
    kb += kMmaKeys;
    settle(a);
  }
};

// Copies per thread of one K/V block: kDim / 8 16-byte chunks per row.
template <int kDim>
inline constexpr int kCopiesPerThread = kMmaKeys * (kDim / 8) / kMmaThreads;

// The page of each key this thread copies in block `c` (copy j: chunk
// threadIdx.x + j * kMmaThreads), fetched a block ahead so that the page
// list's latency is not paid before each copy; -1 past the block's keys.
template <int kDim>
__device__ __forceinline__ void fetch_pages(const KernelArgs& a, const BlockCursor& c,
                                            int32_t (&page)[kCopiesPerThread<kDim>]) {
  constexpr int kChunks = kDim / 8;
  const int n = c.valid() ? c.keys() : 0;
  // page_list_index in 32 bits, by shifts: page sizes are powers of two
  // (decode.cuh asserts it) and a 64-bit division is a long subroutine.
  const int shift = __ffs(a.page_size) - 1;
  const int base = c.item.page_index - (c.item.kv_begin >> shift);
#pragma unroll
  for (int j = 0; j < kCopiesPerThread<kDim>; ++j) {
    const int kk = (threadIdx.x + j * kMmaThreads) / kChunks;
    page[j] = kk < n ? a.pages[base + ((c.kb + kk) >> shift)] : -1;
  }
}

// Issues the copy of block `c` (its pages from fetch_pages) into k_s and v_s
// (ld elements per row); rows past its keys become zeros, never read from
// the cache (they may hold NaN, and P V would carry it). A 16-bit cache goes
// by cp.async; fp8 widens through registers.
template <typename KV, typename C, int kDim>
__device__ __forceinline__ void load_kv_block(const KernelArgs& a, const BlockCursor& c,
                                              const int32_t (&page)[kCopiesPerThread<kDim>],
                                              C* k_s, C* v_s, int ld) {
  constexpr int kChunks = kDim / 8;  // 8 elements per copy
  const int h = c.item.kv_head;
#pragma unroll
  for (int j = 0; j < kCopiesPerThread<kDim>; ++j) {
    const int chunk = threadIdx.x + j * kMmaThreads;
    const int kk = chunk / kChunks;
    const int d0 = (chunk % kChunks) * 8;
    C* k_dst = k_s + kk * ld + d0;
    C* v_dst = v_s + kk * ld + d0;
    if (page[j] >= 0) {
      const int64_t slot = (c.kb + kk) & (a.page_size - 1);
      const KV* k_src = static_cast<const KV*>(a.k_cache.data) + page[j] * a.k_cache.s[0] +
                        slot * a.k_cache.s[1] + h * a.k_cache.s[2] + d0;
      const KV* v_src = static_cast<const KV*>(a.v_cache.data) + page[j] * a.v_cache.s[0] +
                        slot * a.v_cache.s[1] + h * a.v_cache.s[2] + d0;
      if constexpr (std::is_same_v<KV, C>) {
        cp_async16(k_dst, k_src);
        cp_async16(v_dst, v_src);
      } else {
        float k[8], v[8];
        load8(k_src, k);
        load8(v_src, v);
        uint4 kw, vw;
        kw.x = pack2<C>(k[0], k[1]), kw.y = pack2<C>(k[2], k[3]);
        kw.z = pack2<C>(k[4], k[5]), kw.w = pack2<C>(k[6], k[7]);
        vw.x = pack2<C>(v[0], v[1]), vw.y = pack2<C>(v[2], v[3]);
        vw.z = pack2<C>(v[4], v[5]), vw.w = pack2<C>(v[6], v[7]);
        *reinterpret_cast<uint4*>(k_dst) = kw;
        *reinterpret_cast<uint4*>(v_dst) = vw;
      }
    } else {
      *reinterpret_cast<uint4*>(k_dst) = make_uint4(0, 0, 0, 0);
      *reinterpret_cast<uint4*>(v_dst) = make_uint4(0, 0, 0, 0);
    }
  }
}

// Stages the tile's packed rows [row0, row0 + kMmaRows) of q into q_s by
// cp.async when every q row is 16-byte aligned (the usual contiguous q),
// else through registers (stage_q); rows past the tile are zeros.
template <typename C, int kDim>
__device__ __forceinline__ void stage_q_async(const KernelArgs& a, const WorkItem& tile, int row0,
                                              C* q_s, int ld) {
  const uintptr_t bits = reinterpret_cast<uintptr_t>(a.q.data) |
                         static_cast<uintptr_t>((a.q.s[0] | a.q.s[1] | a.q.s[2]) * 2);
  if (bits % 16 != 0) {
    stage_q(a, tile, row0, kMmaRows, 1.0f, q_s, ld);
    return;
  }
  constexpr int kChunks = kDim / 8;
  const int heads = a.heads_per_kv;
  const int packed_rows = tile.q_rows * heads;
  const C* q = static_cast<const C*>(a.q.data);
#pragma unroll
  for (int c = threadIdx.x; c < kMmaRows * kChunks; c += kMmaThreads) {
    const int ii = c / kChunks, d0 = (c % kChunks) * 8;
    const int pr = row0 + ii;
    C* dst = q_s + ii * ld + d0;
    if (pr < packed_rows) {
      cp_async16(dst, q + (tile.q_row + pr / heads) * a.q.s[0] + tile.kv_head * a.q.s[1] +
                          (pr % heads) * a.q.s[2] + d0);
    } else {
      *reinterpret_cast<uint4*>(dst) = make_uint4(0, 0, 0, 0);
    }
  }
}

// Whether `row` sees every key of [kb, kb + kMmaKeys): no mask to apply.
__device__ __forceinline__ bool sees_whole_block(const KernelArgs& a, const PackedRow& row, int kb) {
  return row.live && kb + kMmaKeys - 1 <= row.pos && row_sees(a, row.pos, kb);
}

template <typename KV, typename C, int kDim>
__global__ void __launch_bounds__(kMmaThreads, 2) prefill_mma_kernel(const KernelArgs a) {
  constexpr int kQSteps = kDim / 16;        // k-steps of Q K^T
  constexpr int kDimTiles = kDim / 8;       // 8-wide column tiles of O
  constexpr int kKeyTiles = kMmaKeys / 8;   // 8-wide column tiles of S
  constexpr int kPSteps = kMmaKeys / 16;    // k-steps of P V
  // d256's accumulators leave too few registers to hold q or the next pages.
  constexpr bool kQInRegisters = kDim <= 128;
  constexpr bool kPagesAhead = kDim <= 128;
  constexpr MmaLayout lay(kDim);
  unsigned char* smem = dynamic_smem();
  C* const q_s = reinterpret_cast<C*>(smem);

  const ChainTile tile = chain_tile(a, kMmaRows);
  if (tile.row0 >= tile.packed_rows) return;  // the whole CTA: this tile has fewer rows
  const int h = tile.head.kv_head;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int quad_col = 2 * (lane % 4);  // first of this lane's two columns of an 8-wide tile
  // The two rows of this lane's accumulators: packed rows 16w + lane/4 and 8 below.
  const PackedRow rows[2] = {packed_row(a, tile, tile.row0 + warp * 16 + lane / 4),
                             packed_row(a, tile, tile.row0 + warp * 16 + lane / 4 + 8)};
  // The keys each row sees: [first_key, last_key] (dead rows see none).
  int first_key[2], last_key[2];
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    first_key[j] = static_cast<int>(RowMask{a.sliding_window}.first_key(rows[j].pos));
    last_key[j] = rows[j].live ? rows[j].pos : -1;
  }
  // ldmatrix row addresses: Q and K (row, 8-column half) and V transposed.
  const int a_row = lane % 8 + ((lane / 8) % 2) * 8, a_col = (lane / 16) * 8;
  const int b_row = lane % 8 + (lane / 16) * 8, b_col = ((lane / 8) % 2) * 8;

  // Block i is multiplied while block i + 1 copies and (kPagesAhead) the
  // pages of block i + 2 load.
  BlockCursor cursor{tile.first, tile.end, tile.head.kv_begin, tile.head};
  cursor.settle(a);
  int32_t pages[kCopiesPerThread<kDim>];
  fetch_pages<kDim>(a, cursor, pages);
  stage_q_async<C, kDim>(a, tile.head, tile.row0, q_s, lay.ld);
  load_kv_block<KV, C, kDim>(a, cursor, pages, reinterpret_cast<C*>(smem + lay.k(0)),
                             reinterpret_cast<C*>(smem + lay.v(0)), lay.ld);
  cp_async_commit();
  BlockCursor next = cursor;
  next.advance(a);
  if constexpr (kPagesAhead) fetch_pages<kDim>(a, next, pages);
  int stage = 0;
  cp_async_wait<0>();  // q (and block 0): the fragments below read q
  __syncthreads();

  uint32_t q_frag[kQInRegisters ? kQSteps : 1][4];
  if constexpr (kQInRegisters) {
#pragma unroll
    for (int ks = 0; ks < kQSteps; ++ks) {
      ldmatrix_x4(q_frag[ks], q_s + (warp * 16 + a_row) * lay.ld + ks * 16 + a_col);
    }
  }

  // scale is applied to S in f32 (q is staged exact), in the exponent where
  // that is exact (score_units).
  const auto [scale, scaled_first, unit, unit_log2] = score_units(a, h);
  float o[kDimTiles][4];
#pragma unroll
  for (int t = 0; t < kDimTiles; ++t) o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.0f;
  float m[2] = {neg_inf(), neg_inf()};
  float l[2] = {0.0f, 0.0f};

  while (cursor.valid()) {
    const int kb = cursor.kb;
    const int n = cursor.keys();
    if constexpr (!kPagesAhead) fetch_pages<kDim>(a, next, pages);
    if (next.valid()) {
      load_kv_block<KV, C, kDim>(a, next, pages, reinterpret_cast<C*>(smem + lay.k(stage ^ 1)),
                                 reinterpret_cast<C*>(smem + lay.v(stage ^ 1)), lay.ld);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    BlockCursor after = next;
    after.advance(a);
    if constexpr (kPagesAhead) fetch_pages<kDim>(a, after, pages);  // the next copy's
    __syncthreads();
    const C* k_s = reinterpret_cast<const C*>(smem + lay.k(stage));
    const C* v_s = reinterpret_cast<const C*>(smem + lay.v(stage));

    // S = Q K^T: this warp's 16 rows x the block's 64 keys.
    float s[kKeyTiles][4];
#pragma unroll
    for (int t = 0; t < kKeyTiles; ++t) s[t][0] = s[t][1] = s[t][2] = s[t][3] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < kQSteps; ++ks) {
      uint32_t qa[4];
      if constexpr (kQInRegisters) {
#pragma unroll
        for (int r = 0; r < 4; ++r) qa[r] = q_frag[ks][r];
      } else {
        ldmatrix_x4(qa, q_s + (warp * 16 + a_row) * lay.ld + ks * 16 + a_col);
      }
#pragma unroll
      for (int t = 0; t < kKeyTiles; t += 2) {
        uint32_t kf[4];
        ldmatrix_x4(kf, k_s + (t * 8 + b_row) * lay.ld + ks * 16 + b_col);
        mma_16816<C>(s[t], qa, kf[0], kf[1]);
        mma_16816<C>(s[t + 1], qa, kf[2], kf[3]);
      }
    }

    // The online-softmax step of this lane's two rows; a row's 64 scores
    // lie in the 4 lanes of a quad (register e of tile t: row e / 2, key
    // 8t + quad_col + e % 2). Branches are per block, not per score, and
    // the max and sum are trees: the unrolled body must stay small enough
    // for the instruction cache and short of serial dependency chains.
    if (scaled_first) {
#pragma unroll
      for (int t = 0; t < kKeyTiles; ++t) {
#pragma unroll
        for (int e = 0; e < 4; ++e) s[t][e] = soft_cap(s[t][e] * scale, a.logit_soft_cap);
      }
    }
    if (!(n == kMmaKeys && sees_whole_block(a, rows[0], kb) && sees_whole_block(a, rows[1], kb))) {
#pragma unroll
      for (int t = 0; t < kKeyTiles; ++t) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int j = e / 2;
          const int kk = t * 8 + quad_col + e % 2;
          const bool seen = kk < n && kb + kk >= first_key[j] && kb + kk <= last_key[j];
          s[t][e] = seen ? s[t][e] : neg_inf();
        }
      }
    }
    float alpha[2], m_log2[2];
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      float mx[4];
#pragma unroll
      for (int t = 0; t < 4; ++t) mx[t] = fmaxf(s[t][2 * j], s[t][2 * j + 1]);
#pragma unroll
      for (int t = 4; t < kKeyTiles; ++t) {
        mx[t % 4] = fmaxf(mx[t % 4], fmaxf(s[t][2 * j], s[t][2 * j + 1]));
      }
      float block_max = fmaxf(fmaxf(mx[0], mx[1]), fmaxf(mx[2], mx[3]));
      block_max = fmaxf(block_max, __shfl_xor_sync(kFullMask, block_max, 1));
      block_max = fmaxf(block_max, __shfl_xor_sync(kFullMask, block_max, 2));
      const float m_new = fmaxf(m[j], block_max);
      alpha[j] = m[j] == neg_inf() ? 0.0f : fast_exp2((m[j] - m_new) * unit_log2);
      m[j] = m_new;
      // exp(unit (x - m)) as 2^(x u - m u), u = unit log2e; while m is -inf
      // every x is too.
      m_log2[j] = m_new == neg_inf() ? 0.0f : m_new * unit_log2;
    }
#pragma unroll
    for (int t = 0; t < kKeyTiles; ++t) {
#pragma unroll
      for (int e = 0; e < 4; ++e) s[t][e] = fast_exp2(fmaf(s[t][e], unit_log2, -m_log2[e / 2]));
    }
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      float sum[4];
#pragma unroll
      for (int t = 0; t < 4; ++t) sum[t] = s[t][2 * j] + s[t][2 * j + 1];
#pragma unroll
      for (int t = 4; t < kKeyTiles; ++t) sum[t % 4] += s[t][2 * j] + s[t][2 * j + 1];
      // The lane's share of the row sum; the quad's shares add up at the end.
      l[j] = l[j] * alpha[j] + ((sum[0] + sum[1]) + (sum[2] + sum[3]));
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
#pragma unroll
    for (int ps = 0; ps < kPSteps; ++ps) {
      const uint32_t pa[4] = {pack2<C>(s[2 * ps][0], s[2 * ps][1]),
                              pack2<C>(s[2 * ps][2], s[2 * ps][3]),
                              pack2<C>(s[2 * ps + 1][0], s[2 * ps + 1][1]),
                              pack2<C>(s[2 * ps + 1][2], s[2 * ps + 1][3])};
#pragma unroll
      for (int t = 0; t < kDimTiles; t += 2) {
        uint32_t vf[4];
        ldmatrix_x4_trans(vf, v_s + (ps * 16 + a_row) * lay.ld + t * 8 + a_col);
        mma_16816<C>(o[t], pa, vf[0], vf[1]);
        mma_16816<C>(o[t + 1], pa, vf[2], vf[3]);
      }
    }
    __syncthreads();  // the next iteration's copy reuses this stage
    stage ^= 1;
    cursor = next;
    next = after;
  }

  // The epilogue goes through shared memory (flush_staged_tile says why);
  // the K/V stages are free now.
  float* o_s = reinterpret_cast<float*>(smem + lay.k(0));  // [kMmaRows][kDim]
  float* m_s = o_s + kMmaRows * kDim;
  float* l_s = m_s + kMmaRows;
  float* f_s = l_s + kMmaRows;
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    l[j] += __shfl_xor_sync(kFullMask, l[j], 1);
    l[j] += __shfl_xor_sync(kFullMask, l[j], 2);
    const int i = warp * 16 + lane / 4 + 8 * j;
    if (lane % 4 == 0) m_s[i] = m[j] == neg_inf() ? m[j] : m[j] * unit, l_s[i] = l[j];
#pragma unroll
    for (int t = 0; t < kDimTiles; ++t) {
      *reinterpret_cast<float2*>(o_s + i * kDim + t * 8 + quad_col) =
          make_float2(o[t][2 * j], o[t][2 * j + 1]);
    }
  }
  __syncthreads();
  flush_staged_tile<kMmaRows, kDim>(a, tile, o_s, m_s, l_s, f_s);
}

}  // namespace rpa::cuda

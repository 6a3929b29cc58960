// The decode kernel on CUDA cores, for what the tensor-core kernel
// (decode_mma.cuh) does not take: f32 q, fp8 caches, head_dim 256. One CTA
// per decode chain (slot, kv head, split) and block of up to GM of its
// heads_per_kv query heads, which share every K and V load.
//
// Decode is bound by memory latency, so the kernel's shape is set by keeping
// loads in flight. The chain's keys are cut into tiles of kTileKeys, numbered
// item by item (an item's last tile may be short); warp w takes tiles w, w + W,
// w + 2W, ... across item boundaries. A key row is read by L lanes, 8 elements
// each, so a warp reads 32 / L keys side by side and a tile is kSteps steps.
// Each lane copies its own K and V row pieces by cp.async into a ring of
// kStages tiles in shared memory: while a warp computes on tile i, tiles i + 1
// and i + 2 are in flight (twice what rows held in registers allowed), and
// the page indices of the tile after them are being fetched. Lanes read back
// only their own slots, so no warp waits for another until the end.
//
// The partial dots of a key's L lanes are summed by a transposing butterfly:
// afterwards each lane holds whole scores of one head (kHeld of them), so the
// softmax takes one exp per score, not one per lane; each lane then fetches
// the weights of its key by shuffles. The running max of a head is the same in
// every lane of the warp, so the lanes' l and o add up at the end. The warps'
// states merge in shared memory in warp order, and the chain's last item
// flushes them (out and lse, or a split's partial record).
#pragma once

#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/mma.cuh"

namespace rpa::cuda {

inline constexpr int kDecodeWarps = 8;

// Keys map to pages by shift and mask.
static_assert([] {
  for (const int64_t p : kSupportedPageSizes) {
    if (p <= 0 || (p & (p - 1)) != 0) return false;
  }
  return true;
}());

__host__ __device__ constexpr int exact_log2(int x) {
  int r = 0;
  while ((1 << r) < x) ++r;
  return r;
}

__host__ __device__ constexpr int min_of(int x, int y) { return x < y ? x : y; }

// Steps per tile of a lane whose share of a key row is row_bytes (8
// elements): 64 bytes of K rows a tile (4 steps of 16-bit rows, 2 of f32), at
// most 4 (fp8: its kSteps x GM partial dots take registers).
__host__ __device__ constexpr int decode_steps(int row_bytes) { return min_of(4, 64 / row_bytes); }

inline constexpr int kDecodeStages = 3;

// Dynamic shared memory of a CTA: the warps' rings, which the warps' m, l
// and o of gm heads overlay once the keys are done.
__host__ __device__ constexpr int decode_smem_bytes(int row_bytes, int gm, int head_dim) {
  const int rings = kDecodeStages * kDecodeWarps * 2 * decode_steps(row_bytes) * 32 * row_bytes;
  const int states = kDecodeWarps * gm * (head_dim + 2) * static_cast<int>(sizeof(float));
  return states > rings ? states : rings;
}

template <typename KV, int L, int GM>
struct DecodeShape {
  static constexpr int kKeysPerStep = 32 / L;
  // A lane's share of a key row: 8 elements, read as one raw row.
  static constexpr int kRowBytes = 8 * static_cast<int>(sizeof(KV));
  static constexpr int kSteps = decode_steps(kRowBytes);
  static constexpr int kTileKeys = kSteps * kKeysPerStep;
  // Tiles a warp has in flight while it computes on one: its K and V rows go
  // by cp.async into a ring of kStages tiles in shared memory (each lane its
  // own slots, so no warp or CTA waits on another). Two tiles ahead keep
  // about twice the bytes in flight of rows held in registers, and the
  // ring of a CTA of GM <= 4 heads (96 KiB at 16-bit rows) lets two CTAs
  // share an SM.
  static constexpr int kStages = kDecodeStages;
  // The butterfly: kValues partial dots per lane (head g, step s at g * kSteps
  // + s), kLevels halving levels, kHeld whole scores left per lane; the low
  // kRepBits lane bits of a key's lanes then hold copies of the same scores.
  static constexpr int kValues = kSteps * GM;
  static constexpr int kLevels = min_of(exact_log2(kValues), exact_log2(L));
  static constexpr int kHeld = kValues >> kLevels;
  static constexpr int kRepBits = exact_log2(L) - kLevels;
  // Lanes of a key that hold one head's scores: head = (lane % L) / kHeadLanes.
  static constexpr int kHeadLanes = L / GM;

  static_assert(L == 8 || L == 16 || L == 32);
  static_assert(GM == 1 || GM == 4 || GM == 8);
  static_assert(GM <= L && (1 << kLevels) >= GM && kSteps % kHeld == 0);
  static_assert(kRowBytes == 8 || kRowBytes % 16 == 0);
};

// Copies a lane's raw row (8 elements) to its ring slot when `live`, else
// zeros there (keys past a tile's end are never read: they may hold NaN).
template <typename KV>
__device__ __forceinline__ void stage_raw(unsigned char* slot, const KV* p, bool live) {
  constexpr int kBytes = static_cast<int>(sizeof(RawRow<KV>));
  if constexpr (kBytes == 8) {
    cp_async_or_zero<8>(slot, p, live);
  } else {
#pragma unroll
    for (int c = 0; c < kBytes / 16; ++c) {
      cp_async_or_zero<16>(slot + 16 * c, reinterpret_cast<const char*>(p) + 16 * c, live);
    }
  }
}

// Sums v across the L lanes of a key group (start: C = N, Off = L / 2). A
// level keeps half the values (the upper half in lanes with bit `Off` set)
// and adds the partner's copy of them; once one is left, levels add copies.
// A lane ends with kHeld whole sums: value j = kHeld * ((lane % L) >>
// kRepBits) + t in slot t (DecodeShape).
template <int C, int Off, int N>
__device__ __forceinline__ void butterfly_sum(float (&v)[N], int lane) {
  if constexpr (Off > 0) {
    if constexpr (C > 1) {
      const bool upper = (lane & Off) != 0;
#pragma unroll
      for (int i = 0; i < C / 2; ++i) {
        const float send = upper ? v[i] : v[i + C / 2];
        const float keep = upper ? v[i + C / 2] : v[i];
        v[i] = keep + __shfl_xor_sync(kFullMask, send, Off);
      }
      butterfly_sum<C / 2, Off / 2>(v, lane);
    } else {
      v[0] += __shfl_xor_sync(kFullMask, v[0], Off);
      butterfly_sum<1, Off / 2>(v, lane);
    }
  }
}

// The lane's 8 elements of q for each of heads g0 .. g0 + GM - 1, times
// `scale` (the conversions of to_float): 0 for heads past `heads` and lanes
// without dims. All loads are issued before any is used.
template <typename Q, int GM>
__device__ __forceinline__ void load_q_block(const KernelArgs& a, int row, int h, int g0, int heads,
                                             int d0, bool has_dims, float scale,
                                             float (&q)[GM][8]) {
  using Bits = std::conditional_t<std::is_same_v<Q, float>, float, unsigned short>;
  const Bits* base = static_cast<const Bits*>(a.q.data) + row * a.q.s[0] + h * a.q.s[1] + d0;
  Bits raw[GM][8];
#pragma unroll
  for (int g = 0; g < GM; ++g) {
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      raw[g][e] = g < heads && has_dims ? base[(g0 + g) * a.q.s[2] + e] : 0;
    }
  }
#pragma unroll
  for (int g = 0; g < GM; ++g) {
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      float x;
      if constexpr (std::is_same_v<Q, float>) {
        x = raw[g][e];
      } else if constexpr (std::is_same_v<Q, __nv_bfloat16>) {
        x = __bfloat162float(__ushort_as_bfloat16(raw[g][e]));
      } else {
        x = __half2float(__ushort_as_half(raw[g][e]));
      }
      q[g][e] = g < heads && has_dims ? x * scale : 0.0f;
    }
  }
}

// Where a warp is in its chain: tile `tile` of item `it` (it == end: past the
// chain), and that item's key range and page_base (page list index of key k
// = page_base + k / page_size).
struct DecodeCursor {
  int it, tile;
  int kv_begin, kv_end, page_base;
};

// A tile: keys [key0, key0 + n) of one item; n == 0 past the chain.
struct DecodeTile {
  int key0, n, page_base;
};

__device__ __forceinline__ void load_item(const KernelArgs& a, int shift, DecodeCursor& c) {
  const WorkItem* item = a.decode_items + c.it;
  c.kv_begin = __ldg(&item->kv_begin);
  c.kv_end = __ldg(&item->kv_end);
  c.page_base = __ldg(&item->page_index) - (c.kv_begin >> shift);
}

// Moves past whole items until `tile` falls in one (or the chain ends).
template <int T>
__device__ __forceinline__ void settle(const KernelArgs& a, int end, int shift, DecodeCursor& c) {
  while (c.it < end) {
    const int tiles = (c.kv_end - c.kv_begin + T - 1) / T;
    if (c.tile < tiles) return;
    c.tile -= tiles;
    if (++c.it < end) load_item(a, shift, c);
  }
}

template <int T>
__device__ __forceinline__ DecodeTile tile_at(const DecodeCursor& c, int end) {
  if (c.it >= end) return {0, 0, 0};
  const int key0 = c.kv_begin + c.tile * T;
  return {key0, min(T, c.kv_end - key0), c.page_base};
}

template <typename KV, int L, int GM>
__global__ void __launch_bounds__(kDecodeWarps * 32, GM <= 4 ? 2 : 1)
    decode_kernel(const KernelArgs a) {
  using Shape = DecodeShape<KV, L, GM>;
  constexpr int kSteps = Shape::kSteps;
  constexpr int kKeysPerStep = Shape::kKeysPerStep;
  constexpr int kTileKeys = Shape::kTileKeys;
  constexpr int kHeld = Shape::kHeld;
  constexpr int kRepBits = Shape::kRepBits;
  constexpr int kHeadLanes = Shape::kHeadLanes;

  const int first = a.decode_chains[blockIdx.x];
  const int end = a.decode_chains[blockIdx.x + 1];
  const int h = __ldg(&a.decode_items[first].kv_head);
  const int q_row = __ldg(&a.decode_items[first].q_row);
  const int g0 = blockIdx.y * GM;
  const int heads = min(GM, a.heads_per_kv - g0);
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int group = lane / L;  // which of a step's keys this lane reads
  const int d0 = (lane % L) * 8;
  const bool has_dims = d0 < a.head_dim;
  // The butterfly leaves this lane the scores of steps [step0, step0 + kHeld).
  const int step0 = (kHeld * ((lane % L) >> kRepBits)) % kSteps;

  float o[GM][8];
#pragma unroll
  for (int g = 0; g < GM; ++g) {
#pragma unroll
    for (int e = 0; e < 8; ++e) o[g][e] = 0.0f;
  }
  // The state of this lane's head: m is the same in all its lanes; l sums
  // this lane's weights only.
  float m = neg_inf(), l = 0.0f;

  const int shift = __ffs(a.page_size) - 1;
  const int slot_mask = a.page_size - 1;

  // Page of each of the lane's keys of tile t (0 where it reads none: past
  // the tile's end, which may be past the item's, or no dims).
  const auto load_pages = [&](const DecodeTile& t, int (&pages)[kSteps]) {
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
      const int kk = s * kKeysPerStep + group;
      pages[s] = kk < t.n && has_dims ? __ldg(a.pages + t.page_base + ((t.key0 + kk) >> shift)) : 0;
    }
  };
  // The lane's ring slots: [stage][K, V][step], the 32 lanes of a slot row
  // side by side (16-byte rows: conflict-free accesses; f32's 32-byte rows
  // conflict two ways, fp8's 8-byte copies go through L1).
  constexpr int kRaw = static_cast<int>(sizeof(RawRow<KV>));
  constexpr int kStages = Shape::kStages;
  unsigned char* const ring =
      dynamic_smem() + warp * (kStages * 2 * kSteps * 32 * kRaw) + lane * kRaw;
  const auto slot = [&](int stage, int kind, int s) {
    return ring + ((stage * 2 + kind) * kSteps + s) * 32 * kRaw;
  };
  // Puts the K and V rows of the lane's keys of tile t in flight to ring
  // stage `stage` (nothing past the chain) and commits them as one group.
  const auto stage_tile = [&](const DecodeTile& t, const int (&pages)[kSteps], int stage) {
    if (t.n > 0) {
#pragma unroll
      for (int s = 0; s < kSteps; ++s) {
        const int kk = s * kKeysPerStep + group;
        const bool live = kk < t.n && has_dims;
        const uint32_t in_page = static_cast<uint32_t>((t.key0 + kk) & slot_mask);
        const int64_t row = static_cast<uint32_t>(pages[s]) * a.k_cache.s[0] +
                            in_page * a.k_cache.s[1] + static_cast<uint32_t>(h) * a.k_cache.s[2] + d0;
        const int64_t v_row = static_cast<uint32_t>(pages[s]) * a.v_cache.s[0] +
                              in_page * a.v_cache.s[1] + static_cast<uint32_t>(h) * a.v_cache.s[2] + d0;
        const KV* k_base = static_cast<const KV*>(a.k_cache.data);
        const KV* v_base = static_cast<const KV*>(a.v_cache.data);
        stage_raw(slot(stage, 0, s), live ? k_base + row : k_base, live);
        stage_raw(slot(stage, 1, s), live ? v_base + v_row : v_base, live);
      }
    }
    cp_async_commit();
  };

  // Prologue: the warp's first kStages - 1 tiles in flight; the pages of the
  // one after them fetched. ahead[j] is the key count of tile i + j (0 past
  // the chain), tile i being the one computed on.
  DecodeCursor cursor;
  cursor.it = first;
  cursor.tile = warp;
  load_item(a, shift, cursor);
  settle<kTileKeys>(a, end, shift, cursor);
  int ahead[kStages - 1];
  int pages[kSteps];
#pragma unroll
  for (int j = 0; j < kStages - 1; ++j) {
    const DecodeTile t = tile_at<kTileKeys>(cursor, end);
    load_pages(t, pages);
    stage_tile(t, pages, j);
    ahead[j] = t.n;
    cursor.tile += kDecodeWarps;
    settle<kTileKeys>(a, end, shift, cursor);
  }
  DecodeTile next = tile_at<kTileKeys>(cursor, end);
  load_pages(next, pages);

  // q times scale (and the fp8 K scale), in registers for the whole chain;
  // loaded while the first rows are in flight.
  const float q_scale = q_factor(a, h);
  float q[GM][8];
  switch (a.q_dtype) {
    case DType::kBF16:
      load_q_block<__nv_bfloat16>(a, q_row, h, g0, heads, d0, has_dims, q_scale, q);
      break;
    case DType::kF16:
      load_q_block<__half>(a, q_row, h, g0, heads, d0, has_dims, q_scale, q);
      break;
    default:
      load_q_block<float>(a, q_row, h, g0, heads, d0, has_dims, q_scale, q);
      break;
  }

  int stage = 0;  // of tile i; tile i + kStages - 1 goes where tile i - 1 was
  while (ahead[0] > 0) {
    const int n = ahead[0];
    // Tile i's rows have landed once at most kStages - 2 groups are pending.
    cp_async_wait<kStages - 2>();
    // The tile kStages - 1 ahead goes into the stage computed on last (this
    // lane's own slots, read before this point), and the pages of the one
    // after it are fetched.
    const int refill = stage == 0 ? kStages - 1 : stage - 1;
    stage_tile(next, pages, refill);
#pragma unroll
    for (int j = 0; j + 1 < kStages - 1; ++j) ahead[j] = ahead[j + 1];
    ahead[kStages - 2] = next.n;
    cursor.tile += kDecodeWarps;
    settle<kTileKeys>(a, end, shift, cursor);
    next = tile_at<kTileKeys>(cursor, end);
    load_pages(next, pages);

    // Partial dots of the lane's 8 dims, then whole scores by the butterfly.
    float dot[Shape::kValues];
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
      RawRow<KV> k;
      load_raw(slot(stage, 0, s), k);
      float kf[8];
      widen(k, kf);
#pragma unroll
      for (int g = 0; g < GM; ++g) {
        float acc = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; ++e) acc = fmaf(q[g][e], kf[e], acc);
        dot[g * kSteps + s] = acc;
      }
    }
    butterfly_sum<Shape::kValues, L / 2>(dot, lane);

    // One online-softmax step of the lane's head over the whole warp's keys.
    float x[kHeld];
    float tile_max = neg_inf();
#pragma unroll
    for (int t = 0; t < kHeld; ++t) {
      const int kk = (step0 + t) * kKeysPerStep + group;
      x[t] = masked_score(a, kk < n, dot[t]);
      tile_max = fmaxf(tile_max, x[t]);
    }
#pragma unroll
    for (int off = 1; off < kHeadLanes; off *= 2) {
      tile_max = fmaxf(tile_max, __shfl_xor_sync(kFullMask, tile_max, off));
    }
#pragma unroll
    for (int off = L; off < 32; off *= 2) {
      tile_max = fmaxf(tile_max, __shfl_xor_sync(kFullMask, tile_max, off));
    }
    const float m_new = fmaxf(m, tile_max);
    const float alpha = rescale_factor(m, m_new);
    m = m_new;
    float p[kHeld];
    float p_sum = 0.0f;
#pragma unroll
    for (int t = 0; t < kHeld; ++t) {
      p[t] = softmax_weight(x[t], m_new);
      p_sum += p[t];
    }
    l = l * alpha + p_sum;

    // o of head g takes the alpha of the lanes holding head g (all 1, and
    // skipped, unless some head's max rose), then p * v with each weight
    // from the lane of the key's group that holds it.
    if (__any_sync(kFullMask, alpha != 1.0f)) {
#pragma unroll
      for (int g = 0; g < GM; ++g) {
        const float alpha_g = __shfl_sync(kFullMask, alpha, g * kHeadLanes);
#pragma unroll
        for (int e = 0; e < 8; ++e) o[g][e] *= alpha_g;
      }
    }
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
      RawRow<KV> v;
      load_raw(slot(stage, 1, s), v);
      float vf[8];
      widen(v, vf);
#pragma unroll
      for (int g = 0; g < GM; ++g) {
        const int j = g * kSteps + s;
        const float w = __shfl_sync(kFullMask, p[j % kHeld], (j / kHeld) << kRepBits, L);
#pragma unroll
        for (int e = 0; e < 8; ++e) o[g][e] = fmaf(w, vf[e], o[g][e]);
      }
    }
    stage = stage == kStages - 1 ? 0 : stage + 1;
  }
  // The groups left are empty (past the chain); the states below overlay
  // every warp's ring.
  cp_async_wait<0>();
  __syncthreads();

  // The key groups of a warp share m: their o add up, and l over the lanes
  // of a head that hold distinct scores (not the copies).
#pragma unroll
  for (int off = L; off < 32; off *= 2) {
#pragma unroll
    for (int g = 0; g < GM; ++g) {
#pragma unroll
      for (int e = 0; e < 8; ++e) o[g][e] += __shfl_xor_sync(kFullMask, o[g][e], off);
    }
  }
#pragma unroll
  for (int off = 1 << kRepBits; off < kHeadLanes; off *= 2) {
    l += __shfl_xor_sync(kFullMask, l, off);
  }
#pragma unroll
  for (int off = L; off < 32; off *= 2) l += __shfl_xor_sync(kFullMask, l, off);

  const int dim = a.head_dim;
  float* s_m = reinterpret_cast<float*>(dynamic_smem());
  float* s_l = s_m + kDecodeWarps * GM;
  float* s_o = s_l + kDecodeWarps * GM;  // [warp][head][dim]
  if (lane < L && lane % kHeadLanes == 0) {
    s_m[warp * GM + lane / kHeadLanes] = m;
    s_l[warp * GM + lane / kHeadLanes] = l;
  }
  if (group == 0 && has_dims) {
#pragma unroll
    for (int g = 0; g < GM; ++g) {
#pragma unroll
      for (int e = 0; e < 8; ++e) s_o[(warp * GM + g) * dim + d0 + e] = o[g][e];
    }
  }
  __syncthreads();

  // Merge the warps' states, in warp order, and flush.
  const WorkItem last = a.decode_items[end - 1];
  const float o_factor = v_factor(a, last.kv_head);
  for (int i = threadIdx.x; i < heads * dim; i += blockDim.x) {
    const int g = i / dim;
    const int d = i % dim;
    float m_all = neg_inf();
#pragma unroll
    for (int w = 0; w < kDecodeWarps; ++w) m_all = fmaxf(m_all, s_m[w * GM + g]);
    float l_all = 0.0f, o_all = 0.0f;
#pragma unroll
    for (int w = 0; w < kDecodeWarps; ++w) {
      const float f = rescale_factor(s_m[w * GM + g], m_all);
      l_all += s_l[w * GM + g] * f;
      o_all += s_o[(w * GM + g) * dim + d] * f;
    }
    flush_element(a, last, 0, g0 + g, d, m_all, l_all, o_all * o_factor);
  }
}

}  // namespace rpa::cuda

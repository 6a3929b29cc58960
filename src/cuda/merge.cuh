// The merge kernel: one CTA per merge group, which combines a tile's split
// partials in split order (the CPU's order, so results do not depend on how
// splits were scheduled) and writes out and lse.
//
// A warp takes one packed row (row x head) at a time, warp w rows w, w + W,
// ...: its lanes read the splits' m and l side by side, with the o rows of
// the first kMergeBatch splits already on their way (the merge is a few
// round trips of latency, not bandwidth), then each lane sums its head_dim
// elements over the splits in split order, the factors passed round by
// shuffles.
#pragma once

#include "cuda/common.cuh"

namespace rpa::cuda {

inline constexpr int kMergeThreads = 256;

// Splits whose o rows a lane has in flight at once.
inline constexpr int kMergeBatch = 8;

__global__ void __launch_bounds__(kMergeThreads) merge_kernel(const KernelArgs a) {
  constexpr int kWarps = kMergeThreads / 32;
  constexpr int kDims = kMaxHeadDim / 32;  // elements of a row per lane, at most
  const MergeGroup group = a.merges[blockIdx.x];
  const int rows = group.q_rows * a.heads_per_kv;
  const int count = group.count;
  const int lane = threadIdx.x % 32;
  for (int i = threadIdx.x / 32; i < rows; i += kWarps) {
    const int r = i / a.heads_per_kv;
    const int g = i % a.heads_per_kv;
    // Split s left its rows from partial row first_partial + s * q_rows on:
    // its record of this row lies s strides past split 0's.
    const float* const first = partial_record(a, group.first_partial, i);
    const int64_t stride = partial_record(a, group.first_partial + group.q_rows, i) - first;
    const auto record_of = [&](int s) { return first + s * stride; };
    // o of splits [b, b + kMergeBatch), zeros past the group and head_dim.
    float ov[kMergeBatch][kDims];
    const auto load_o = [&](int b) {
#pragma unroll
      for (int k = 0; k < kMergeBatch; ++k) {
#pragma unroll
        for (int c = 0; c < kDims; ++c) {
          const int d = lane + 32 * c;
          ov[k][c] = b + k < count && d < a.head_dim ? record_of(b + k)[2 + d] : 0.0f;
        }
      }
    };
    // The first batch's o loads go out with the m and l loads, before m is
    // known: the row costs one round trip, not one per pass.
    load_o(0);
    const bool has0 = lane < count;
    const float m0 = has0 ? record_of(lane)[0] : neg_inf();
    const float l0 = has0 ? record_of(lane)[1] : 0.0f;
    float m = m0;
    for (int s = lane + 32; s < count; s += 32) m = fmaxf(m, record_of(s)[0]);
    m = warp_max(m);
    // f_s = exp(m_s - m) of split base + lane, for base a multiple of 32.
    const auto factor_of = [&](int base) {
      if (base == 0) return has0 ? rescale_factor(m0, m) : 0.0f;
      return base + lane < count ? rescale_factor(record_of(base + lane)[0], m) : 0.0f;
    };

    // l = sum of l_s * f_s, then o = sum of o_s * f_s, each in split order.
    float l = 0.0f;
    for (int base = 0; base < count; base += 32) {
      const float f = factor_of(base);
      const float ls = base == 0 ? l0 : base + lane < count ? record_of(base + lane)[1] : 0.0f;
      const int splits = min(32, count - base);
      for (int k = 0; k < splits; ++k) {
        l = fmaf(__shfl_sync(kFullMask, ls, k), __shfl_sync(kFullMask, f, k), l);
      }
    }
    // Before o is live: end_row's division may call a slow path.
    const RowEnd row_end = end_row(m, l, sink_of(a, group.kv_head, g));
    if (lane == 0 && a.lse != nullptr) *lse_at(a, group.q_row + r, group.kv_head, g) = row_end.lse;

    float o[kDims];
#pragma unroll
    for (int c = 0; c < kDims; ++c) o[c] = 0.0f;
    for (int base = 0; base < count; base += 32) {
      const float f = factor_of(base);
      for (int b = base; b < min(count, base + 32); b += kMergeBatch) {
        if (b != 0) load_o(b);
#pragma unroll
        for (int k = 0; k < kMergeBatch; ++k) {
          // Past the group, ov is 0 and the factor unused: the sum is unchanged.
          const float fk = __shfl_sync(kFullMask, f, (b - base + k) % 32);
          if (b + k < count) {
#pragma unroll
            for (int c = 0; c < kDims; ++c) o[c] = fmaf(ov[k][c], fk, o[c]);
          }
        }
      }
    }
#pragma unroll
    for (int c = 0; c < kDims; ++c) {
      const int d = lane + 32 * c;
      if (d < a.head_dim) {
        store_out(a, group.q_row + r, group.kv_head, g, d, o[c] * row_end.o_factor);
      }
    }
  }
}

}  // namespace rpa::cuda

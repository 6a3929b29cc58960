// The merge kernel: one CTA per merge group, which combines a tile's split
// partials in split order (the CPU's order, so results do not depend on how
// splits were scheduled) and writes out and lse.
//
// A warp takes one packed row (row x head) at a time, warp w rows w, w + W,
// ...: its lanes read the splits' m and l side by side (one round trip, not
// one per split), then each lane sums its head_dim elements over the splits
// in split order, the factors passed round by shuffles.
#pragma once

#include "cuda/common.cuh"

namespace rpa::cuda {

inline constexpr int kMergeThreads = 256;

__global__ void __launch_bounds__(kMergeThreads) merge_kernel(const KernelArgs a) {
  constexpr int kWarps = kMergeThreads / 32;
  constexpr int kDims = kMaxHeadDim / 32;  // elements of a row per lane, at most
  const MergeGroup group = a.merges[blockIdx.x];
  const int rows = group.q_rows * a.heads_per_kv;
  const int lane = threadIdx.x % 32;
  for (int i = threadIdx.x / 32; i < rows; i += kWarps) {
    const int r = i / a.heads_per_kv;
    const int g = i % a.heads_per_kv;
    // Split s left its rows from partial row first_partial + s * q_rows on:
    // its record of this row lies s strides past split 0's.
    const float* const first = partial_record(a, group.first_partial, i);
    const int64_t stride = partial_record(a, group.first_partial + group.q_rows, i) - first;
    const auto record_of = [&](int s) { return first + s * stride; };
    float m = neg_inf();
    for (int s = lane; s < group.count; s += 32) m = fmaxf(m, record_of(s)[0]);
    m = warp_max(m);

    // l = sum of l_s * f_s, then o = sum of o_s * f_s, f_s = exp(m_s - m),
    // each in split order; split base + lane's f_s and l_s sit in lane.
    float l = 0.0f;
    for (int base = 0; base < group.count; base += 32) {
      float f = 0.0f, ls = 0.0f;
      if (base + lane < group.count) {
        const float* record = record_of(base + lane);
        f = rescale_factor(record[0], m);
        ls = record[1];
      }
      const int splits = min(32, group.count - base);
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
    for (int base = 0; base < group.count; base += 32) {
      const float f =
          base + lane < group.count ? rescale_factor(record_of(base + lane)[0], m) : 0.0f;
      const int splits = min(32, group.count - base);
#pragma unroll 4
      for (int k = 0; k < splits; ++k) {
        const float fk = __shfl_sync(kFullMask, f, k);
        const float* record = record_of(base + k);
#pragma unroll
        for (int c = 0; c < kDims; ++c) {
          const int d = lane + 32 * c;
          if (d < a.head_dim) o[c] = fmaf(record[2 + d], fk, o[c]);
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

// The merge kernel: one CTA per merge group, which combines a tile's split
// partials in split order (the CPU's order, so results do not depend on how
// splits were scheduled) and writes out and lse. Threads run over head_dim.
#pragma once

#include "cuda/common.cuh"

namespace rpa::cuda {

inline constexpr int kMergeThreads = 128;

__global__ void __launch_bounds__(kMergeThreads) merge_kernel(const KernelArgs a) {
  const MergeGroup group = a.merges[blockIdx.x];
  const int rows = group.q_rows * a.heads_per_kv;
  for (int i = 0; i < rows; ++i) {
    const int r = i / a.heads_per_kv;
    const int g = i % a.heads_per_kv;
    float m = neg_inf();
    // Split s left its rows from partial row first_partial + s * q_rows on.
    const auto record_of = [&](int s) {
      return partial_record(a, group.first_partial + int64_t{s} * group.q_rows, i);
    };
    for (int s = 0; s < group.count; ++s) m = fmaxf(m, record_of(s)[0]);
    float l = 0.0f;
    for (int s = 0; s < group.count; ++s) {
      const float* record = record_of(s);
      l += record[1] * rescale_factor(record[0], m);
    }
    const RowEnd row_end = end_row(m, l, sink_of(a, group.kv_head, g));
    for (int d = threadIdx.x; d < a.head_dim; d += blockDim.x) {
      float o = 0.0f;
      for (int s = 0; s < group.count; ++s) {
        const float* record = record_of(s);
        o += record[2 + d] * rescale_factor(record[0], m);
      }
      store_out(a, group.q_row + r, group.kv_head, g, d, o * row_end.o_factor);
    }
    if (threadIdx.x == 0 && a.lse != nullptr) *lse_at(a, group.q_row + r, group.kv_head, g) = row_end.lse;
  }
}

}  // namespace rpa::cuda

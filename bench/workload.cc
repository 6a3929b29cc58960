#include "bench/workload.h"

#include <algorithm>

namespace rpa::bench {

Workload measure_workload(const gen::Batch& batch) {
  const gen::BatchSpec& spec = batch.spec;
  const int64_t window = spec.options.sliding_window;
  Workload w;
  for (int64_t s = 0; s < spec.batch_capacity; ++s) {
    const int64_t q_len = batch.query_start_len[s + 1] - batch.query_start_len[s];
    const int64_t seq_len = batch.seq_lens[s];
    if (seq_len == 0 || q_len == 0) continue;
    const int64_t context = seq_len - q_len;
    ++w.live_slots;
    w.live_rows += q_len;
    // Query row i sits at position context + i and sees keys
    // [max(0, pos - W + 1), pos]; the slot as a whole reads from the first
    // row's lowest key to the end.
    w.kv_tokens += seq_len - (window > 0 ? std::max<int64_t>(0, context - window + 1) : 0);
    for (int64_t i = 0; i < q_len; ++i) {
      const int64_t pos = context + i;
      w.visible_keys += window > 0 ? std::min<int64_t>(pos + 1, window) : pos + 1;
    }
  }
  const double q_heads = static_cast<double>(spec.num_kv_heads) * spec.heads_per_kv;
  const double dim = spec.head_dim;
  w.useful_bytes = 2.0 * static_cast<double>(w.kv_tokens) * spec.num_kv_heads * dim *
                       static_cast<double>(dtype_size(spec.kv_dtype())) +
                   static_cast<double>(w.live_rows) * q_heads * dim *
                       static_cast<double>(dtype_size(spec.dtype) + dtype_size(spec.out_dtype));
  w.flops = 4.0 * dim * q_heads * static_cast<double>(w.visible_keys);
  return w;
}

}  // namespace rpa::bench

#include "bench/batch_shape.h"

#include <string>

namespace rpa::bench {

BatchShape batch_shape(const gen::Batch& batch) {
  const gen::BatchSpec& spec = batch.spec;
  BatchShape shape;
  shape.num_kv_heads = spec.num_kv_heads;
  shape.heads_per_kv = spec.heads_per_kv;
  shape.head_dim = spec.head_dim;
  shape.page_size = spec.page_size;
  shape.dtype = spec.dtype;
  shape.kv_dtype = spec.kv_dtype();
  shape.out_dtype = spec.out_dtype;
  shape.batch_capacity = spec.batch_capacity;
  shape.max_pages_per_seq = batch.max_pages_per_seq;
  shape.num_pages = batch.num_pages;
  shape.num_tokens = batch.num_tokens;
  shape.options = spec.options;
  shape.sinks = spec.sinks;
  shape.lse = spec.lse;
  shape.per_head_kv_scales = spec.kv_quant == gen::KvQuant::kFp8PerHead;
  for (int64_t s = 0; s < spec.batch_capacity; ++s) {
    const int64_t q_len = batch.query_start_len[s + 1] - batch.query_start_len[s];
    const int64_t seq_len = batch.seq_lens[s];
    if (q_len > 0 && seq_len > 0) shape.live_slots.push_back({s, q_len, seq_len});
  }
  return shape;
}

nlohmann::json to_json(const BatchShape& shape) {
  nlohmann::json slots = nlohmann::json::array();
  for (const SlotShape& s : shape.live_slots) {
    slots.push_back({{"slot", s.slot}, {"q_len", s.q_len}, {"seq_len", s.seq_len}});
  }
  return {
      {"num_kv_heads", shape.num_kv_heads},
      {"heads_per_kv", shape.heads_per_kv},
      {"head_dim", shape.head_dim},
      {"page_size", shape.page_size},
      {"dtype", std::string(dtype_name(shape.dtype))},
      {"kv_dtype", std::string(dtype_name(shape.kv_dtype))},
      {"out_dtype", std::string(dtype_name(shape.out_dtype))},
      {"batch_capacity", shape.batch_capacity},
      {"max_pages_per_seq", shape.max_pages_per_seq},
      {"num_pages", shape.num_pages},
      {"num_tokens", shape.num_tokens},
      {"scale", shape.options.scale},
      {"sliding_window", shape.options.sliding_window},
      {"logit_soft_cap", shape.options.logit_soft_cap},
      {"sinks", shape.sinks},
      {"lse", shape.lse},
      {"per_head_kv_scales", shape.per_head_kv_scales},
      {"live_slots", slots},
  };
}

}  // namespace rpa::bench

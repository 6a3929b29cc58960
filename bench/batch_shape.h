// The shape of a benchmark batch, without its values: what another framework
// needs to build the same work (scripts/compare_torch_sdpa.py reads it from
// `rpa bench --backend cuda --json`, so that comparing with torch needs no
// Python binding of the cuda backend).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "generate/batch.h"

namespace rpa::bench {

// One live slot: its place in the batch and its lengths (context = seq_len - q_len).
struct SlotShape {
  int64_t slot = 0;
  int64_t q_len = 0;
  int64_t seq_len = 0;
};

struct BatchShape {
  int32_t num_kv_heads = 0;
  int32_t heads_per_kv = 0;
  int32_t head_dim = 0;
  int32_t page_size = 0;
  DType dtype = DType::kBF16;     // q
  DType kv_dtype = DType::kBF16;  // k_cache, v_cache
  DType out_dtype = DType::kBF16;
  int32_t batch_capacity = 0;
  int32_t max_pages_per_seq = 0;
  int32_t num_pages = 0;   // pages in the K/V pool
  int32_t num_tokens = 0;  // rows of q, padding included
  AttentionOptions options;
  bool sinks = false;
  bool lse = false;
  bool per_head_kv_scales = false;    // fp8 caches: a scale per kv head, else one
  std::vector<SlotShape> live_slots;  // in slot order; inactive slots are left out
};

BatchShape batch_shape(const gen::Batch& batch);

// Every field under its own name; dtypes by dtype_name, options flattened
// (scale 0 = the default 1/sqrt(head_dim)), live_slots as
// [{"slot", "q_len", "seq_len"}, ...].
nlohmann::json to_json(const BatchShape& shape);

}  // namespace rpa::bench

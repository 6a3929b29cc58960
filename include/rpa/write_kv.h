// write_kv: appends new tokens' K and V into the paged cache.
//
//   k_new, v_new   [num_new_tokens, num_kv_heads, head_dim]   dtype of the cache
//   slot_mapping   [num_new_tokens]                           i32
//   k_cache, v_cache [num_pages, page_size, num_kv_heads, head_dim]
//
// Token t goes to slot slot_mapping[t] = page * page_size + offset; -1 marks a
// padding token, which is skipped. Slots must be in range and distinct. On any
// error nothing is written.
#pragma once

#include "rpa/status.h"
#include "rpa/tensor.h"

namespace rpa {

struct KvCache {
  TensorView k_cache;
  TensorView v_cache;
};

Status write_kv(const TensorView& k_new, const TensorView& v_new, const TensorView& slot_mapping,
                const KvCache& cache);

}  // namespace rpa

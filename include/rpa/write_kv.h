// write_kv: appends new tokens' K and V into the paged cache.
//
//   k_new, v_new   [num_new_tokens, num_kv_heads, head_dim]   dtype of the cache
//   slot_mapping   [num_new_tokens]                           i32
//   k_cache, v_cache [num_pages, page_size, num_kv_heads, head_dim]
//
// Token t goes to slot slot_mapping[t] = page * page_size + offset; -1 marks a
// padding token, which is skipped. Slots must be in range and distinct. On any
// error nothing is written.
//
// fp8_e4m3 caches take either fp8 codes (copied byte for byte, no scales) or
// f32/bf16/f16 tokens with the cache's scales k_scale, v_scale (f32, [1] or
// [num_kv_heads], finite and positive: the ones attention dequantizes with),
// quantized as code = fp8(value / scale[h]): rounded to nearest even and
// saturated at +-448, NaN kept as the NaN code.
#pragma once

#include "rpa/status.h"
#include "rpa/tensor.h"

namespace rpa {

struct KvCache {
  TensorView k_cache;
  TensorView v_cache;
  TensorView k_scale = {};  // only to quantize f32/bf16/f16 tokens into fp8 caches
  TensorView v_scale = {};
};

Status write_kv(const TensorView& k_new, const TensorView& v_new, const TensorView& slot_mapping,
                const KvCache& cache);

}  // namespace rpa

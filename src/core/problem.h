// Problem: the validated geometry and metadata of one attention call, in the
// form every planner and backend reads (plain pointers and extents).
#pragma once

#include <cstdint>

#include "rpa/attention.h"

namespace rpa {

struct Problem {
  // Extents.
  int64_t num_tokens = 0;  // compiled token capacity: q.shape[0]
  int64_t num_kv_heads = 0;
  int64_t heads_per_kv = 0;
  int64_t head_dim = 0;
  int64_t num_pages = 0;
  int64_t page_size = 0;
  int64_t batch_capacity = 0;
  int64_t max_pages_per_seq = 0;

  DType dtype = DType::kF32;      // q
  DType kv_dtype = DType::kF32;   // k_cache and v_cache: dtype, or fp8 e4m3
  DType out_dtype = DType::kF32;  // out

  // Options, resolved: scale is never 0 here.
  float scale = 1.0f;
  int32_t sliding_window = 0;
  float logit_soft_cap = 0.0f;

  // Metadata (contiguous 1-D i32 except block_table rows, which have a stride).
  const int32_t* block_table = nullptr;
  int64_t block_table_stride = 0;  // elements between consecutive slots' rows
  const int32_t* seq_lens = nullptr;
  const int32_t* query_start_len = nullptr;
  const float* sinks = nullptr;  // [num_kv_heads * heads_per_kv] or null
  // fp8 caches: the scales, with stride 0 (per tensor) or 1 (per kv head).
  const float* k_scale = nullptr;
  const float* v_scale = nullptr;
  int64_t k_scale_stride = 0;
  int64_t v_scale_stride = 0;

  int64_t q_len(int64_t s) const { return query_start_len[s + 1] - query_start_len[s]; }
  int64_t context_len(int64_t s) const { return seq_lens[s] - q_len(s); }
  bool active(int64_t s) const { return seq_lens[s] > 0 && q_len(s) > 0; }
  const int32_t* pages_of(int64_t s) const { return block_table + s * block_table_stride; }
  int64_t num_q_heads() const { return num_kv_heads * heads_per_kv; }
  bool quantized_kv() const { return kv_dtype == DType::kF8E4M3; }
  // The factor that turns kv head h's stored K (V) elements into values: 1
  // unless the cache is quantized.
  float k_scale_of(int64_t h) const { return k_scale ? k_scale[h * k_scale_stride] : 1.0f; }
  float v_scale_of(int64_t h) const { return v_scale ? v_scale[h * v_scale_stride] : 1.0f; }
};

// Checks ranks, shapes, dtypes, strides, supported sizes, options, aliasing and
// overflow: O(1), always run. Fills `problem` on success. `outputs` may be null
// when only planning (then out/lse are not checked and out_dtype = dtype).
Status describe(const AttentionInputs& inputs, const AttentionOptions& options,
                const AttentionOutputs* outputs, Problem* problem);

// Checks the metadata of a described problem: query_start_len, seq_lens and the
// live block_table entries. Cost O(batch_capacity + live pages).
Status check_metadata(const Problem& problem);

}  // namespace rpa

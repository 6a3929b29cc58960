// The one seeded generator of ragged batches shared by tests, the CLI and the
// benchmarks (docs/contract.md §6). A Batch owns every buffer; `inputs()` views them.
//
// What it makes, on purpose: active slots scattered among inactive ones, a mix
// of decode rows, chunked-prefill rows (q_len > 1 on top of context) and fresh
// prompts (context 0); physical pages permuted through a pool larger than the
// live set, optionally shared between slots (prefix sharing); every dead K/V
// slot (past seq_len inside the last live page, and every unreferenced page)
// filled with NaN; block_table entries past the live pages filled with a mix of
// -1 and out-of-range garbage; q rows past the last slot (padding) filled with NaN.
#pragma once

#include <cstdint>
#include <vector>

#include "generate/huge_pages.h"
#include "rpa/attention.h"

namespace rpa::gen {

// One explicitly placed slot. q_len == 0 or seq_len == 0 makes it inactive.
struct SlotSpec {
  int32_t q_len = 1;
  int32_t context_len = 0;  // seq_len = context_len + q_len
};

// How the K/V caches are stored: in the dtype of q, or quantized to fp8 e4m3
// with one scale for the whole tensor or one per kv head.
enum class KvQuant : int32_t { kNone = 0, kFp8PerTensor = 1, kFp8PerHead = 2 };

struct BatchSpec {
  uint64_t seed = 1;

  // Geometry.
  int32_t num_kv_heads = 2;
  int32_t heads_per_kv = 4;
  int32_t head_dim = 64;
  int32_t page_size = 16;
  DType dtype = DType::kBF16;      // q, and k_cache, v_cache unless quantized
  DType out_dtype = DType::kBF16;  // out
  // Quantized caches draw each kv head's values from its own range (between
  // a third of value_range and value_range), so per-head scales differ.
  KvQuant kv_quant = KvQuant::kNone;

  DType kv_dtype() const { return kv_quant == KvQuant::kNone ? dtype : DType::kF8E4M3; }

  // Capacity. batch_capacity slots; max_pages_per_seq = 0 picks just enough for
  // the longest live slot plus a few; token_padding adds padding rows to q.
  int32_t batch_capacity = 16;
  int32_t max_pages_per_seq = 0;
  int32_t token_padding = 3;
  int32_t spare_pages = 8;  // unreferenced (NaN) pages in the pool beyond the live ones

  // Either explicit slots (placed at slot_positions, or at random distinct
  // positions when that is empty) ...
  std::vector<SlotSpec> slots;
  std::vector<int32_t> slot_positions;
  // ... or `num_active` random slots drawn from this mix (weights).
  int32_t num_active = 6;
  double decode_weight = 1.0;
  double chunk_weight = 1.0;
  double fresh_weight = 1.0;
  int32_t min_context = 1, max_context = 300;  // decode and chunked-prefill context
  int32_t min_chunk = 2, max_chunk = 80;       // chunked-prefill q_len
  int32_t min_prompt = 2, max_prompt = 120;    // fresh prompt q_len

  // Prefix sharing: this fraction of active slots (beyond the first) reuse the
  // first full pages of an earlier slot's block table.
  double shared_prefix_fraction = 0.25;
  bool permute_pages = true;

  // Options and optional tensors.
  AttentionOptions options;
  bool sinks = false;  // generate per-head sinks in [-2, 2]
  bool lse = false;    // callers that want lse allocate it with make_lse()

  // Value range of q/k/v entries (uniform in [-value_range, value_range]).
  float value_range = 1.0f;
};

struct Batch {
  BatchSpec spec;
  int32_t num_tokens = 0;  // rows of q, padding included
  int32_t num_pages = 0;
  int32_t max_pages_per_seq = 0;

  // Raw element bytes in spec.dtype (q) and spec.kv_dtype() (K/V). The K/V
  // pools sit on huge pages (huge_pages.h), as a serving engine's big pools
  // should.
  std::vector<uint8_t> q;
  PoolBytes k_cache, v_cache;
  std::vector<int32_t> block_table, seq_lens, query_start_len;
  std::vector<float> sinks;             // empty when spec.sinks is false
  std::vector<float> k_scale, v_scale;  // [1] or [num_kv_heads]; empty unless quantized

  AttentionInputs inputs() const;
  // A fresh output buffer of the right size filled with a sentinel byte pattern,
  // and a view of it.
  std::vector<uint8_t> make_out() const;
  TensorView out_view(std::vector<uint8_t>& buffer) const;
  std::vector<float> make_lse() const;
  TensorView lse_view(std::vector<float>& buffer) const;

  int64_t live_rows() const;  // query_start_len[batch_capacity]
};

Batch generate(const BatchSpec& spec);

// The `rpa demo` scenario: one serving step of a Llama-3-8B layer. 32 q heads,
// 8 kv heads, head_dim 128, page 16, bf16, capacity 64 with 24 live slots
// (decode rows with contexts 500-4000, chunked-prefill rows of 256 on existing
// context, two fresh prompts of ~1000 tokens), permuted pages.
BatchSpec demo_spec();

}  // namespace rpa::gen

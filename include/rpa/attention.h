// The ragged paged attention entry point (docs/contract.md §1-§3).
//
//   q            [num_tokens, num_kv_heads, heads_per_kv, head_dim]   f32 | bf16 | f16
//   k_cache      [num_pages, page_size, num_kv_heads, head_dim]       dtype of q, or fp8_e4m3
//   v_cache      [num_pages, page_size, num_kv_heads, head_dim]       same dtype as k_cache
//   k_scale, v_scale [1] or [num_kv_heads] (fp8 caches only)         f32
//   block_table  [batch_capacity, max_pages_per_seq]                  i32
//   seq_lens     [batch_capacity]                                     i32
//   query_start_len [batch_capacity + 1]                              i32
//   sinks        [num_kv_heads * heads_per_kv] (optional)             f32
//   out          like q; dtype of q or f32
//   lse          [num_tokens, num_kv_heads, heads_per_kv] (optional)  f32
//
// The last dimension of q, k_cache, v_cache and out must be contiguous; the
// outer dimensions may have any positive strides.
#pragma once

#include <cstdint>
#include <string_view>

#include "rpa/status.h"
#include "rpa/tensor.h"

namespace rpa {

struct AttentionInputs {
  TensorView q;
  TensorView k_cache;
  TensorView v_cache;
  TensorView block_table;
  TensorView seq_lens;
  TensorView query_start_len;
  TensorView sinks;  // optional
  // Dequantization scales of fp8 caches, required with them and absent
  // otherwise: per tensor ([1]) or per kv head ([num_kv_heads]); finite, > 0.
  TensorView k_scale;
  TensorView v_scale;
};

struct AttentionOutputs {
  TensorView out;
  TensorView lse;  // optional
};

struct AttentionOptions {
  float scale = 0.0f;           // 0 = default 1/sqrt(head_dim); otherwise must be finite
  int32_t sliding_window = 0;   // W > 0: each query sees its W most recent keys; 0 = off
  float logit_soft_cap = 0.0f;  // c > 0: logit x becomes c * tanh(x / c); 0 = off
};

enum class Backend : int32_t {
  kAuto = 0,        // the fastest backend built in
  kReference = 1,   // plain loops in double: the oracle
  kSingleLoop = 2,  // the plan executed as one flat loop (the Neuron-shaped proof)
  kCpu = 3,         // Highway SIMD, multithreaded
  kCuda = 4,        // NVIDIA GPUs, when built
};

std::string_view backend_name(Backend b);
bool parse_backend(std::string_view name, Backend* out);

// The cuda backend reads q, k_cache, v_cache and sinks, and writes out and lse,
// in device memory (cudaMalloc'ed or managed); block_table, seq_lens,
// query_start_len and the fp8 scales stay in host memory (or managed), where
// they are validated and planned. kAuto picks cuda when q is in device memory.
struct RunConfig {
  Backend backend = Backend::kAuto;
  int threads = 0;        // 0 = all available
  bool validate = true;   // false skips the O(batch + live pages) contract checks
  // cuda: the cudaStream_t to run on; the call then returns once the work is
  // queued. Null = the default stream, and the call returns when out is written.
  void* cuda_stream = nullptr;
  // Caller-owned scratch for the cpu backend (a serving engine pre-allocates;
  // a steady-state run then allocates nothing on the heap). At least
  // rpa::workspace_bytes(plan, config) bytes, any alignment; it is used only
  // during the call, and a call running at the same time needs its own. Null
  // = rpa allocates the workspace on each call. Other backends ignore it.
  void* workspace = nullptr;
  int64_t workspace_size = 0;
};

// Computes `out` (and `lse` when present). On any error returns a Status whose
// message names the offending tensor, index and value, and writes nothing.
Status attention(const AttentionInputs& inputs, const AttentionOptions& options,
                 const AttentionOutputs& outputs, const RunConfig& config = {});

}  // namespace rpa

/* rpa C API: ragged paged attention for FFI callers (C, Zig, Rust, ctypes).
 *
 * The contract is the C++ one (include/rpa/attention.h, docs/contract.md §1-§3); this
 * header only restates it in C types. Every function returns an rpa_status;
 * on failure the message of the last failed call on the calling thread is
 * available from rpa_last_error_message(), and nothing was written to any
 * output. No C++ exception ever crosses this boundary.
 *
 * Every struct here has the property that all-zero bytes are its default
 * (`rpa_options options = {0};` is the default options, a zeroed rpa_tensor
 * is an absent optional tensor), so callers in any language can start from a
 * zeroed value and set only what they need.
 */
#ifndef RPA_RPA_H_
#define RPA_RPA_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rpa_status {
  RPA_OK = 0,
  RPA_INVALID_ARGUMENT = 1, /* the inputs break the contract */
  RPA_UNSUPPORTED = 2,      /* valid, but no kernel for this combination */
  RPA_INTERNAL = 3,         /* a bug or a failed resource (allocation, device) */
} rpa_status;

typedef enum rpa_dtype {
  RPA_F32 = 0,
  RPA_BF16 = 1, /* raw uint16_t bit patterns */
  RPA_F16 = 2,  /* raw uint16_t bit patterns */
  RPA_I32 = 3,  /* block_table, seq_lens, query_start_len */
  RPA_FP8_E4M3 = 4, /* K/V caches only: raw uint8_t e4m3 codes, with k_scale and v_scale */
} rpa_dtype;

typedef enum rpa_backend {
  RPA_BACKEND_AUTO = 0, /* the fastest backend built in */
  RPA_BACKEND_REFERENCE = 1,
  RPA_BACKEND_SINGLE_LOOP = 2,
  RPA_BACKEND_CPU = 3,
  RPA_BACKEND_CUDA = 4,
} rpa_backend;

#define RPA_MAX_RANK 4

/* A view of a dense tensor the caller owns. `dtype` is an rpa_dtype. Shape
 * and strides are in elements; strides all 0 means row-major (last index
 * fastest). An optional tensor is absent when rank is 0 and data is NULL. */
typedef struct rpa_tensor {
  void* data;
  int32_t dtype;
  int32_t rank;
  int64_t shape[RPA_MAX_RANK];
  int64_t strides[RPA_MAX_RANK];
} rpa_tensor;

/* The inputs of one call; shapes as in attention.h:
 *   q               [num_tokens, num_kv_heads, heads_per_kv, head_dim]
 *   k_cache/v_cache [num_pages, page_size, num_kv_heads, head_dim]
 *   block_table     [batch_capacity, max_pages_per_seq]  i32
 *   seq_lens        [batch_capacity]                     i32
 *   query_start_len [batch_capacity + 1]                 i32
 *   sinks           [num_kv_heads * heads_per_kv]        f32, optional
 *   k_scale/v_scale [1] or [num_kv_heads]                f32, with fp8 caches only */
typedef struct rpa_attention_inputs {
  rpa_tensor q;
  rpa_tensor k_cache;
  rpa_tensor v_cache;
  rpa_tensor block_table;
  rpa_tensor seq_lens;
  rpa_tensor query_start_len;
  rpa_tensor sinks;
  rpa_tensor k_scale;
  rpa_tensor v_scale;
} rpa_attention_inputs;

/* out: shaped like q, dtype of q or f32. lse: [num_tokens, num_kv_heads,
 * heads_per_kv] f32, optional. Only rows of live slots are written. */
typedef struct rpa_attention_outputs {
  rpa_tensor out;
  rpa_tensor lse;
} rpa_attention_outputs;

typedef struct rpa_options {
  float scale;             /* 0 = 1/sqrt(head_dim); otherwise finite */
  int32_t sliding_window;  /* W > 0: each query sees its W most recent keys; 0 = off */
  float logit_soft_cap;    /* c > 0: logit x becomes c * tanh(x / c); 0 = off */
  int32_t backend;         /* an rpa_backend */
  int32_t threads;         /* 0 = all available */
  int32_t skip_validation; /* nonzero skips the O(batch + live pages) metadata checks */
  /* cuda backend: the cudaStream_t to run on (the call returns once the work
   * is queued); NULL = the default stream, and the call waits for out. The
   * cuda backend takes q, k_cache, v_cache, sinks, out and lse in device
   * memory, the metadata and fp8 scales in host memory. */
  void* cuda_stream;
} rpa_options;

/* The statistics of a plan; see PlanStats in include/rpa/plan.h. */
typedef struct rpa_plan_stats {
  int64_t batch_capacity;
  int64_t live_slots;
  int64_t decode_rows;
  int64_t prefill_rows;
  int64_t items;
  int64_t decode_items;
  int64_t prefill_items;
  int64_t chains;
  int64_t partials;
  int64_t live_pages;
  int64_t visible_kv_tokens;
  int64_t streamed_kv_tokens;
  int64_t capacity_kv_tokens;
  double useful_ratio;
} rpa_plan_stats;

/* A plan: the work of one batch step, built once from its metadata and run
 * for every layer. Opaque; immutable once built, so one plan may be run from
 * several threads at once. */
typedef struct rpa_plan rpa_plan;

/* The tensors that change from layer to layer, for rpa_plan_run. */
typedef struct rpa_layer_inputs {
  rpa_tensor q;
  rpa_tensor k_cache;
  rpa_tensor v_cache;
  rpa_tensor sinks;   /* optional */
  rpa_tensor k_scale; /* fp8 caches only */
  rpa_tensor v_scale; /* fp8 caches only */
} rpa_layer_inputs;

/* The library version, "MAJOR.MINOR.PATCH". */
const char* rpa_version(void);

/* The message of the last failed call on this thread; "" when the last call
 * succeeded. Valid until the next rpa call on this thread. */
const char* rpa_last_error_message(void);

/* A fixed name for a status code ("ok", "invalid argument", ...). */
const char* rpa_status_name(rpa_status status);

/* One-shot attention: validate (unless options->skip_validation), plan, run.
 * `options` may be NULL for the defaults. */
rpa_status rpa_attention(const rpa_attention_inputs* inputs, const rpa_options* options,
                         const rpa_attention_outputs* outputs);

/* Validates `inputs` (always: a plan is only built from checked metadata) and
 * plans the batch. The plan copies block_table, seq_lens and query_start_len,
 * so the caller may reuse those buffers at once; q, k_cache and v_cache are
 * read only for their shapes and dtypes, which every run must repeat. The
 * options, backend included, are fixed for the plan's lifetime. */
rpa_status rpa_plan_create(const rpa_attention_inputs* inputs, const rpa_options* options,
                           rpa_plan** plan);

/* Runs `plan` on one layer's tensors. Cost O(1) checks plus the kernels. */
rpa_status rpa_plan_run(const rpa_plan* plan, const rpa_layer_inputs* inputs,
                        const rpa_attention_outputs* outputs);

rpa_status rpa_plan_get_stats(const rpa_plan* plan, rpa_plan_stats* stats);

/* The bytes of caller-owned workspace with which rpa_plan_run_with_workspace
 * allocates nothing on the heap (the cpu backend's chain lists, split-KV
 * partials and per-thread scratch, for the plan's thread count; 0 for the
 * other backends). A serving engine sizes one buffer per thread that runs
 * plans, once, and reuses it for every layer and step. */
rpa_status rpa_plan_workspace_bytes(const rpa_plan* plan, int64_t* bytes);

/* rpa_plan_run with `workspace` (any alignment) of `workspace_size` bytes, at
 * least rpa_plan_workspace_bytes (NULL with 0 when that is 0); a smaller one
 * is refused before anything is written. It is scratch for the duration of
 * the call: calls running at the same time need their own. */
rpa_status rpa_plan_run_with_workspace(const rpa_plan* plan, const rpa_layer_inputs* inputs,
                                       const rpa_attention_outputs* outputs, void* workspace,
                                       int64_t workspace_size);

/* Frees a plan; NULL is a no-op. */
void rpa_plan_destroy(rpa_plan* plan);

/* The plan as int32 tables for a device kernel that runs one runtime loop
 * (include/rpa/device_tables.h, docs/neuron.md). All-zero config = the
 * device sizes and 2 cores; NULL = the same. */
typedef struct rpa_device_tables_config {
  int32_t q_tile_rows;      /* 0: 128 / heads_per_kv */
  int32_t kv_chunk_tokens;  /* 0: K+V of a row near 8 MiB */
  int32_t split_tokens;     /* 0: 4 chunks */
  int32_t kv_heads_per_row; /* 0: all kv heads */
  int32_t num_cores;        /* 0: 2 (LNC=2) */
} rpa_device_tables_config;

typedef struct rpa_device_tables_info {
  int32_t row_fields;   /* scalars before the page ids of a row */
  int32_t pages_per_row;
  int32_t row_width;    /* row_fields + pages_per_row */
  int32_t merge_fields;
  rpa_device_tables_config config; /* resolved: no zeros */
  int64_t num_rows, rows_per_core, num_merges, merges_per_core, num_partial_rows;
  /* Bounds from the static shapes alone (device_max_rows and friends). */
  int64_t max_rows, max_merges, max_partial_rows;
} rpa_device_tables_info;

typedef enum rpa_device_table {
  RPA_TABLE_ROWS = 0,        /* [num_rows, row_width] */
  RPA_TABLE_CORE_ROWS = 1,   /* [num_cores, rows_per_core, row_width] */
  RPA_TABLE_MERGES = 2,      /* [num_merges, merge_fields] */
  RPA_TABLE_CORE_MERGES = 3, /* [num_cores, merges_per_core, merge_fields] */
} rpa_device_table;

typedef struct rpa_device_tables rpa_device_tables;

/* Validates and plans `inputs` with the device sizes and builds the tables. */
rpa_status rpa_device_tables_create(const rpa_attention_inputs* inputs, const rpa_options* options,
                                    const rpa_device_tables_config* config,
                                    rpa_device_tables** tables);
rpa_status rpa_device_tables_get_info(const rpa_device_tables* tables,
                                      rpa_device_tables_info* info);
/* The int32 elements of one table (`*count` of them); valid until destroy. */
rpa_status rpa_device_tables_get(const rpa_device_tables* tables, rpa_device_table which,
                                 const int32_t** data, int64_t* count);
/* Frees the tables; NULL is a no-op. */
void rpa_device_tables_destroy(rpa_device_tables* tables);

/* Two attention results over disjoint key sets, for rpa_merge_states:
 *   out_a, out_b [rows..., head_dim]  f32 | bf16 | f16 (same dtype)
 *   lse_a, lse_b [rows...]            f32 */
typedef struct rpa_merge_inputs {
  rpa_tensor out_a;
  rpa_tensor lse_a;
  rpa_tensor out_b;
  rpa_tensor lse_b;
} rpa_merge_inputs;

/* Combines two results into the result over the union of their keys (split-KV,
 * cascades, context parallelism); exact when neither used sinks. `out` is
 * shaped like out_a, dtype of out_a or f32; `lse` like lse_a. out and lse may
 * be exactly out_a and lse_a (in place). See include/rpa/merge_states.h. */
rpa_status rpa_merge_states(const rpa_merge_inputs* inputs, const rpa_tensor* out,
                            const rpa_tensor* lse);

/* Writes new tokens' K and V into the paged caches:
 *   k_new, v_new     [num_new_tokens, num_kv_heads, head_dim]  dtype of the caches
 *   slot_mapping     [num_new_tokens]  i32: page * page_size + offset, -1 = skip
 *   k_cache, v_cache [num_pages, page_size, num_kv_heads, head_dim]
 * Slots must be in range and distinct. See include/rpa/write_kv.h. */
rpa_status rpa_write_kv(const rpa_tensor* k_new, const rpa_tensor* v_new,
                        const rpa_tensor* slot_mapping, const rpa_tensor* k_cache,
                        const rpa_tensor* v_cache);

/* rpa_write_kv into fp8_e4m3 caches from f32, bf16 or f16 tokens: each
 * element becomes the code of value / scale[h] (round to nearest even,
 * saturated at +-448, NaN kept), with k_scale, v_scale f32 [1] or
 * [num_kv_heads], finite and positive: the scales attention dequantizes with.
 * With both scales NULL it is rpa_write_kv (codes or same-dtype tokens). */
rpa_status rpa_write_kv_scaled(const rpa_tensor* k_new, const rpa_tensor* v_new,
                               const rpa_tensor* slot_mapping, const rpa_tensor* k_cache,
                               const rpa_tensor* v_cache, const rpa_tensor* k_scale,
                               const rpa_tensor* v_scale);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* RPA_RPA_H_ */

// rpa.attention and rpa.plan_stats.
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <string>

#include "arrays.h"
#include "common.h"
#include "core/message.h"
#include "plan/stat_fields.h"
#include "rpa/attention.h"
#include "rpa/plan.h"

namespace rpa::python {
namespace {

// The arguments both entries share, borrowed for the length of one call.
struct Call {
  Borrowed q, k_cache, v_cache, block_table, seq_lens, query_start_len, sinks, k_scale, v_scale;
  AttentionInputs inputs;
  AttentionOptions options;

  Call(py::handle q_obj, py::handle k_obj, py::handle v_obj, py::handle block_table_obj,
       py::handle seq_lens_obj, py::handle query_start_len_obj, std::optional<std::string> dtype,
       std::optional<float> scale, int32_t sliding_window, float logit_soft_cap,
       py::handle sinks_obj, py::handle k_scale_obj, py::handle v_scale_obj) {
    const std::optional<DType> raw16 = float_dtype(dtype, "dtype");
    throw_if_error(q.borrow(q_obj, "q", raw16));
    throw_if_error(k_cache.borrow(k_obj, "k_cache", raw16));
    throw_if_error(v_cache.borrow(v_obj, "v_cache", raw16));
    throw_if_error(block_table.borrow(block_table_obj, "block_table", std::nullopt));
    throw_if_error(seq_lens.borrow(seq_lens_obj, "seq_lens", std::nullopt));
    throw_if_error(query_start_len.borrow(query_start_len_obj, "query_start_len", std::nullopt));
    if (!sinks_obj.is_none()) throw_if_error(sinks.borrow(sinks_obj, "sinks", std::nullopt));
    if (!k_scale_obj.is_none()) {
      throw_if_error(k_scale.borrow(k_scale_obj, "k_scale", std::nullopt));
    }
    if (!v_scale_obj.is_none()) {
      throw_if_error(v_scale.borrow(v_scale_obj, "v_scale", std::nullopt));
    }
    inputs.q = q.view();
    inputs.k_cache = k_cache.view();
    inputs.v_cache = v_cache.view();
    inputs.block_table = block_table.view();
    inputs.seq_lens = seq_lens.view();
    inputs.query_start_len = query_start_len.view();
    inputs.sinks = sinks.view();
    inputs.k_scale = k_scale.view();
    inputs.v_scale = v_scale.view();
    options.scale = scale.value_or(0.0f);
    options.sliding_window = sliding_window;
    options.logit_soft_cap = logit_soft_cap;
  }
};

py::object attention_py(py::object q, py::object k_cache, py::object v_cache,
                        py::object block_table, py::object seq_lens, py::object query_start_len,
                        std::optional<std::string> dtype, std::optional<std::string> out_dtype,
                        std::optional<float> scale, int32_t sliding_window, float logit_soft_cap,
                        py::object sinks, py::object k_scale, py::object v_scale, bool return_lse,
                        const std::string& backend, int threads) {
  Call call(q, k_cache, v_cache, block_table, seq_lens, query_start_len, dtype, scale,
            sliding_window, logit_soft_cap, sinks, k_scale, v_scale);
  RunConfig config;
  if (!parse_backend(backend, &config.backend)) {
    throw py::value_error(cat("backend='", backend,
                              "' is not one of 'auto', 'reference', 'single-loop', 'cpu', "
                              "'cuda'"));
  }
  if (threads < 0) throw py::value_error(cat("threads=", threads, " is negative"));
  config.threads = threads;

  // out is shaped like q, lse like q's first three dimensions; a q of another
  // rank is rejected by the call itself with a message about q.
  const TensorView& qv = call.q.view();
  const std::vector<int64_t> out_shape(qv.shape.begin(), qv.shape.begin() + qv.rank);
  const std::vector<int64_t> lse_shape(out_shape.begin(), out_shape.begin() + std::min(qv.rank, 3));
  AttentionOutputs outputs;
  py::array out =
      zeros(float_dtype(out_dtype, "out_dtype").value_or(qv.dtype), out_shape, &outputs.out);
  py::array lse;
  if (return_lse) lse = zeros(DType::kF32, lse_shape, &outputs.lse);
  Status status;
  {
    py::gil_scoped_release release;
    status = attention(call.inputs, call.options, outputs, config);
  }
  throw_if_error(status);
  if (return_lse) return py::make_tuple(out, lse);
  return out;
}

py::dict plan_stats_py(py::object q, py::object k_cache, py::object v_cache, py::object block_table,
                       py::object seq_lens, py::object query_start_len,
                       std::optional<std::string> dtype, std::optional<float> scale,
                       int32_t sliding_window, float logit_soft_cap, py::object sinks,
                       py::object k_scale, py::object v_scale, int32_t q_tile_rows,
                       int32_t kv_chunk_tokens, int32_t split_tokens) {
  Call call(q, k_cache, v_cache, block_table, seq_lens, query_start_len, dtype, scale,
            sliding_window, logit_soft_cap, sinks, k_scale, v_scale);
  Plan plan;
  throw_if_error(make_plan(call.inputs, call.options, &plan,
                           PlanConfig{q_tile_rows, kv_chunk_tokens, split_tokens}));
  py::dict d;
  for_each_plan_stat(plan, [&](const char* name, auto value) { d[name] = value; });
  return d;
}

}  // namespace

void add_attention(py::module_& m) {
  using namespace pybind11::literals;
  m.def("attention", &attention_py, "q"_a, "k_cache"_a, "v_cache"_a, "block_table"_a, "seq_lens"_a,
        "query_start_len"_a, py::kw_only(), "dtype"_a = py::none(), "out_dtype"_a = py::none(),
        "scale"_a = py::none(), "sliding_window"_a = 0, "logit_soft_cap"_a = 0.0f,
        "sinks"_a = py::none(), "k_scale"_a = py::none(), "v_scale"_a = py::none(),
        "return_lse"_a = false, "backend"_a = "auto", "threads"_a = 0,
        R"doc(Ragged paged attention (DESIGN §1-§3).

q [num_tokens, num_kv_heads, heads_per_kv, head_dim]; k_cache, v_cache
[num_pages, page_size, num_kv_heads, head_dim]; block_table
[batch_capacity, max_pages_per_seq], seq_lens [batch_capacity] and
query_start_len [batch_capacity + 1] int32. Arrays are NumPy arrays or any
CPU object with __dlpack__. bf16 travels as uint16 bits with dtype='bf16'.
fp8 e4m3 caches travel as uint8 bits (or ml_dtypes.float8_e4m3fn) with
float32 k_scale and v_scale of shape [1] or [num_kv_heads].

Returns out (shaped like q, dtype out_dtype or q's; bf16 as uint16), and lse
[num_tokens, num_kv_heads, heads_per_kv] float32 with return_lse=True. Rows
that belong to no live slot are zero.)doc");

  m.def("plan_stats", &plan_stats_py, "q"_a, "k_cache"_a, "v_cache"_a, "block_table"_a,
        "seq_lens"_a, "query_start_len"_a, py::kw_only(), "dtype"_a = py::none(),
        "scale"_a = py::none(), "sliding_window"_a = 0, "logit_soft_cap"_a = 0.0f,
        "sinks"_a = py::none(), "k_scale"_a = py::none(), "v_scale"_a = py::none(),
        "q_tile_rows"_a = 0, "kv_chunk_tokens"_a = 0, "split_tokens"_a = 0,
        R"doc(Plans the batch as rpa.attention would and returns the plan's statistics
(live slots and rows, items, visible vs capacity K/V tokens, useful_ratio, and
the resolved tile sizes) as a dict. Same arguments as attention; the tile
sizes default (0) to the planner's heuristics.)doc");
}

}  // namespace rpa::python

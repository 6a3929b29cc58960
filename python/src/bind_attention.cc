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
// q, K/V and sinks may be CUDA tensors (the cuda backend's memory contract:
// metadata and fp8 scales stay in host memory).
struct Call {
  Borrowed q, k_cache, v_cache, block_table, seq_lens, query_start_len, sinks, k_scale, v_scale;
  AttentionInputs inputs;
  AttentionOptions options;

  Call(py::handle q_obj, py::handle k_obj, py::handle v_obj, py::handle block_table_obj,
       py::handle seq_lens_obj, py::handle query_start_len_obj, std::optional<std::string> dtype,
       std::optional<float> scale, int32_t sliding_window, float logit_soft_cap,
       py::handle sinks_obj, py::handle k_scale_obj, py::handle v_scale_obj,
       std::optional<intptr_t> stream = std::nullopt) {
    BorrowSpec data;
    data.raw16 = float_dtype(dtype, "dtype");
    data.cuda_ok = true;
    data.stream = stream;
    BorrowSpec sinks_spec = data;
    sinks_spec.raw16.reset();
    throw_if_error(q.borrow(q_obj, "q", data));
    throw_if_error(k_cache.borrow(k_obj, "k_cache", data));
    throw_if_error(v_cache.borrow(v_obj, "v_cache", data));
    throw_if_error(block_table.borrow(block_table_obj, "block_table", std::nullopt));
    throw_if_error(seq_lens.borrow(seq_lens_obj, "seq_lens", std::nullopt));
    throw_if_error(query_start_len.borrow(query_start_len_obj, "query_start_len", std::nullopt));
    if (!sinks_obj.is_none()) throw_if_error(sinks.borrow(sinks_obj, "sinks", sinks_spec));
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

  // The first of q, K/V and sinks in CUDA memory, or null.
  const char* first_on_cuda() const {
    const std::pair<const Borrowed*, const char*> tensors[] = {
        {&q, "q"}, {&k_cache, "k_cache"}, {&v_cache, "v_cache"}, {&sinks, "sinks"}};
    for (const auto& [tensor, name] : tensors) {
      if (tensor->on_cuda()) return name;
    }
    return nullptr;
  }
};

// Where out and lse go: the caller's arrays (written in place and returned),
// or new zeroed NumPy arrays.
struct Results {
  Borrowed out_view, lse_view;
  py::object out, lse;
  AttentionOutputs outputs;
};

py::object attention_py(py::object q, py::object k_cache, py::object v_cache,
                        py::object block_table, py::object seq_lens, py::object query_start_len,
                        std::optional<std::string> dtype, std::optional<std::string> out_dtype,
                        std::optional<float> scale, int32_t sliding_window, float logit_soft_cap,
                        py::object sinks, py::object k_scale, py::object v_scale, bool return_lse,
                        const std::string& backend, int threads, py::object out, py::object lse,
                        std::optional<intptr_t> stream) {
  if (stream) {
    // DLPack's stream values: 1 the legacy default stream, 2 the per-thread
    // one, larger a handle; 0 is ambiguous there, and is what torch reports
    // for the default stream, so it becomes 1 (the same stream, which
    // cudaStreamLegacy also names for rpa's launches).
    if (*stream < 0) {
      throw py::value_error(cat("stream=", *stream, " is not a CUDA stream: pass a cudaStream_t ",
                                "as an integer (0 or 1: the legacy default stream, 2: the ",
                                "per-thread one)"));
    }
    if (*stream == 0) stream = 1;
  }
  Call call(q, k_cache, v_cache, block_table, seq_lens, query_start_len, dtype, scale,
            sliding_window, logit_soft_cap, sinks, k_scale, v_scale, stream);
  RunConfig config;
  if (!parse_backend(backend, &config.backend)) {
    throw py::value_error(cat("backend='", backend,
                              "' is not one of 'auto', 'reference', 'single-loop', 'cpu', "
                              "'cuda'"));
  }
  if (threads < 0) throw py::value_error(cat("threads=", threads, " is negative"));
  config.threads = threads;

  Results results;
  const std::optional<DType> out_raw16 = float_dtype(out_dtype, "out_dtype");
  BorrowSpec written;
  written.written = true;
  written.cuda_ok = true;
  written.stream = stream;
  if (!out.is_none()) {
    // out_dtype, when given, must be out's type; else uint16 bits are q's
    // 16-bit type.
    const DType q_dtype = call.q.view().dtype;
    BorrowSpec out_spec = written;
    out_spec.raw16 = out_raw16 ? out_raw16
                     : dtype_size(q_dtype) == 2 ? std::optional<DType>(q_dtype)
                                                : std::nullopt;
    out_spec.raw16_binds = out_raw16.has_value();
    out_spec.raw16_keyword = "out_dtype";
    throw_if_error(results.out_view.borrow(out, "out", out_spec));
    results.outputs.out = results.out_view.view();
    results.out = out;
  }
  if (!lse.is_none()) {
    throw_if_error(results.lse_view.borrow(lse, "lse", written));
    results.outputs.lse = results.lse_view.view();
    results.lse = lse;
    return_lse = true;
  }

  // CUDA tensors run on the cuda backend ('auto' picks it; the library then
  // checks where every tensor lives). Deciding here, from the DLPack device,
  // keeps a host backend from ever reading device memory.
  const char* on_cuda = call.first_on_cuda();
  if (on_cuda == nullptr && results.out_view.on_cuda()) on_cuda = "out";
  if (on_cuda == nullptr && results.lse_view.on_cuda()) on_cuda = "lse";
  if (on_cuda != nullptr) {
    if (config.backend == Backend::kAuto) config.backend = Backend::kCuda;
    if (config.backend != Backend::kCuda) {
      throw py::value_error(cat(on_cuda, " is a CUDA tensor, and backend='", backend,
                                "' reads host memory: use backend='cuda' or 'auto'"));
    }
    if (out.is_none() || (return_lse && lse.is_none())) {
      throw py::value_error(cat("with CUDA tensors pass out=", return_lse ? " and lse=" : "",
                                " (CUDA tensors to write into): rpa allocates only NumPy "
                                "arrays"));
    }
  }
  if (stream) {
    if (config.backend != Backend::kCuda) {
      throw py::value_error("stream= is a CUDA stream, for calls on CUDA tensors");
    }
    config.cuda_stream = reinterpret_cast<void*>(*stream);
  }

  // New arrays: out shaped like q, lse like q's first three dimensions; a q
  // of another rank is rejected by the call itself with a message about q.
  const TensorView& qv = call.q.view();
  const std::vector<int64_t> out_shape(qv.shape.begin(), qv.shape.begin() + qv.rank);
  const std::vector<int64_t> lse_shape(out_shape.begin(), out_shape.begin() + std::min(qv.rank, 3));
  if (!results.out) {
    results.out = zeros(out_raw16.value_or(qv.dtype), out_shape, &results.outputs.out);
  }
  if (return_lse && !results.lse) {
    results.lse = zeros(DType::kF32, lse_shape, &results.outputs.lse);
  }
  Status status;
  {
    py::gil_scoped_release release;
    status = attention(call.inputs, call.options, results.outputs, config);
  }
  throw_if_error(status);
  if (return_lse) return py::make_tuple(results.out, results.lse);
  return results.out;
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
        "return_lse"_a = false, "backend"_a = "auto", "threads"_a = 0, "out"_a = py::none(),
        "lse"_a = py::none(), "stream"_a = py::none(),
        R"doc(Ragged paged attention (docs/contract.md §1-§3).

q [num_tokens, num_kv_heads, heads_per_kv, head_dim]; k_cache, v_cache
[num_pages, page_size, num_kv_heads, head_dim]; block_table
[batch_capacity, max_pages_per_seq], seq_lens [batch_capacity] and
query_start_len [batch_capacity + 1] int32. Arrays are NumPy arrays or any
object with __dlpack__. bf16 travels as uint16 bits with dtype='bf16'.
fp8 e4m3 caches travel as uint8 bits (or ml_dtypes.float8_e4m3fn) with
float32 k_scale and v_scale of shape [1] or [num_kv_heads].

Returns out (shaped like q, dtype out_dtype or q's; bf16 as uint16), and lse
[num_tokens, num_kv_heads, heads_per_kv] float32 with return_lse=True. Rows
that belong to no live slot are zero. out= and lse= take the caller's arrays
instead: written in place (rows of no live slot untouched) and returned.

With the cuda backend built (rpa.cuda_built), q, k_cache, v_cache, sinks,
out and lse may be CUDA tensors (DLPack), with the metadata and scales in
host memory; out= (and lse= for the lse) are then required, backend 'auto'
runs on the GPU, and stream= (a cudaStream_t as an integer, e.g.
torch.cuda.current_stream().cuda_stream) makes the call asynchronous on that
stream; without it the call waits for the result.)doc");

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

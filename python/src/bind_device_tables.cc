// rpa.device_tables: the plan as the int32 tables a one-loop device kernel
// reads (include/rpa/device_tables.h), as NumPy arrays plus a header dict.
#include <pybind11/stl.h>

#include <cstring>
#include <optional>
#include <string>

#include "arrays.h"
#include "common.h"
#include "rpa/device_tables.h"

namespace rpa::python {
namespace {

py::array_t<int32_t> int32_array(const std::vector<int32_t>& data, std::vector<int64_t> shape) {
  py::array_t<int32_t> array(shape);
  if (!data.empty()) std::memcpy(array.mutable_data(), data.data(), data.size() * sizeof(int32_t));
  return array;
}

py::dict device_tables_py(py::object q, py::object k_cache, py::object v_cache,
                          py::object block_table, py::object seq_lens, py::object query_start_len,
                          std::optional<std::string> dtype, std::optional<float> scale,
                          int32_t sliding_window, float logit_soft_cap, int32_t q_tile_rows,
                          int32_t kv_chunk_tokens, int32_t split_tokens, int32_t kv_heads_per_row,
                          int32_t num_cores) {
  const std::optional<DType> raw16 = float_dtype(dtype, "dtype");
  Borrowed qb, kb, vb, table, lens, starts;
  throw_if_error(qb.borrow(q, "q", raw16));
  throw_if_error(kb.borrow(k_cache, "k_cache", raw16));
  throw_if_error(vb.borrow(v_cache, "v_cache", raw16));
  throw_if_error(table.borrow(block_table, "block_table", std::nullopt));
  throw_if_error(lens.borrow(seq_lens, "seq_lens", std::nullopt));
  throw_if_error(starts.borrow(query_start_len, "query_start_len", std::nullopt));
  if (qb.on_cuda() || kb.on_cuda() || vb.on_cuda()) {
    throw py::value_error("device_tables reads only shapes, but takes host tensors");
  }
  AttentionInputs inputs;
  inputs.q = qb.view();
  inputs.k_cache = kb.view();
  inputs.v_cache = vb.view();
  inputs.block_table = table.view();
  inputs.seq_lens = lens.view();
  inputs.query_start_len = starts.view();
  AttentionOptions options{scale.value_or(0.0f), sliding_window, logit_soft_cap};
  DeviceTablesConfig config{q_tile_rows, kv_chunk_tokens, split_tokens, kv_heads_per_row,
                            num_cores};
  DeviceTables t;
  Status status;
  {
    py::gil_scoped_release release;
    status = make_device_tables(inputs, options, &t, config);
  }
  throw_if_error(status);

  const int64_t cores = t.config.num_cores;
  py::dict header;
  header["row_fields"] = device_row_field_names();
  header["merge_fields"] = device_merge_field_names();
  header["pages_per_row"] = t.pages_per_row;
  header["row_width"] = t.row_width;
  header["flags"] = py::dict(py::arg("reset") = static_cast<int>(kRowReset),
                             py::arg("flush") = static_cast<int>(kRowFlush),
                             py::arg("needs_mask") = static_cast<int>(kRowNeedsMask));
  header["q_tile_rows"] = t.config.q_tile_rows;
  header["kv_chunk_tokens"] = t.config.kv_chunk_tokens;
  header["split_tokens"] = t.config.split_tokens;
  header["kv_heads_per_row"] = t.config.kv_heads_per_row;
  header["num_cores"] = t.config.num_cores;
  header["num_kv_heads"] = t.shapes.num_kv_heads;
  header["heads_per_kv"] = t.heads_per_kv;
  header["head_dim"] = t.head_dim;
  header["page_size"] = t.shapes.page_size;
  header["num_tokens"] = t.shapes.num_tokens;
  header["num_rows"] = t.num_rows;
  header["rows_per_core"] = t.rows_per_core;
  header["num_merges"] = t.num_merges;
  header["merges_per_core"] = t.merges_per_core;
  header["num_partial_rows"] = t.num_partial_rows;
  header["max_rows"] = device_max_rows(t.shapes, t.config);
  header["max_merges"] = device_max_merges(t.shapes, t.config);
  header["max_partial_rows"] = device_max_partial_rows(t.shapes, t.config);

  py::dict d;
  d["header"] = header;
  d["rows"] = int32_array(t.rows, {t.num_rows, t.row_width});
  d["core_rows"] = int32_array(t.core_rows, {cores, t.rows_per_core, t.row_width});
  d["merges"] = int32_array(t.merges, {t.num_merges, int64_t{kMergeFields}});
  d["core_merges"] = int32_array(t.core_merges, {cores, t.merges_per_core, int64_t{kMergeFields}});
  return d;
}

}  // namespace

void add_device_tables(py::module_& m) {
  using namespace pybind11::literals;
  m.def("device_tables", &device_tables_py, "q"_a, "k_cache"_a, "v_cache"_a, "block_table"_a,
        "seq_lens"_a, "query_start_len"_a, py::kw_only(), "dtype"_a = py::none(),
        "scale"_a = py::none(), "sliding_window"_a = 0, "logit_soft_cap"_a = 0.0f,
        "q_tile_rows"_a = 0, "kv_chunk_tokens"_a = 0, "split_tokens"_a = 0,
        "kv_heads_per_row"_a = 0, "num_cores"_a = 2,
        R"doc(The plan as int32 tables for a one-loop device kernel (docs/neuron.md).

Takes attention's arguments (only shapes and metadata are read) and the
device sizes (0 = the device heuristics). Returns a dict: 'rows'
[num_rows, row_width], 'core_rows' [num_cores, rows_per_core, row_width]
(padded with no-op rows), 'merges' [num_merges, 6], 'core_merges'
[num_cores, merges_per_core, 6], all int32, and 'header', a dict naming the
columns and giving the sizes and the static bounds max_rows, max_merges and
max_partial_rows. rpa.neuron_model runs these tables.)doc");
}

}  // namespace rpa::python

// rpa.merge_states and rpa.write_kv.
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <string>

#include "arrays.h"
#include "common.h"
#include "rpa/merge_states.h"
#include "rpa/write_kv.h"

namespace rpa::python {
namespace {

py::tuple merge_states_py(py::object out_a, py::object lse_a, py::object out_b, py::object lse_b,
                          std::optional<std::string> dtype, std::optional<std::string> out_dtype) {
  const std::optional<DType> raw16 = float_dtype(dtype, "dtype");
  Borrowed a, la, b, lb;
  throw_if_error(a.borrow(out_a, "out_a", raw16));
  throw_if_error(la.borrow(lse_a, "lse_a", std::nullopt));
  throw_if_error(b.borrow(out_b, "out_b", raw16));
  throw_if_error(lb.borrow(lse_b, "lse_b", std::nullopt));
  // out is shaped like out_a, lse like out_a without its last dimension; other
  // ranks are rejected by merge_states itself, with a message about out_a.
  const TensorView& av = a.view();
  const std::vector<int64_t> out_shape(av.shape.begin(), av.shape.begin() + av.rank);
  const std::vector<int64_t> lse_shape(out_shape.begin(),
                                       out_shape.begin() + std::max(av.rank - 1, 0));
  TensorView out_view, lse_view;
  py::array out =
      zeros(float_dtype(out_dtype, "out_dtype").value_or(av.dtype), out_shape, &out_view);
  py::array lse = zeros(DType::kF32, lse_shape, &lse_view);
  Status status;
  {
    py::gil_scoped_release release;
    status = merge_states({av, la.view(), b.view(), lb.view()}, out_view, lse_view);
  }
  throw_if_error(status);
  return py::make_tuple(out, lse);
}

void write_kv_py(py::object k_new, py::object v_new, py::object slot_mapping, py::object k_cache,
                 py::object v_cache, std::optional<std::string> dtype, py::object k_scale,
                 py::object v_scale) {
  const std::optional<DType> raw16 = float_dtype(dtype, "dtype");
  Borrowed k, v, slots, kc, vc, ks, vs;
  throw_if_error(k.borrow(k_new, "k_new", raw16));
  throw_if_error(v.borrow(v_new, "v_new", raw16));
  throw_if_error(slots.borrow(slot_mapping, "slot_mapping", std::nullopt));
  throw_if_error(kc.borrow(k_cache, "k_cache", raw16, /*written=*/true));
  throw_if_error(vc.borrow(v_cache, "v_cache", raw16, /*written=*/true));
  KvCache cache{kc.view(), vc.view()};
  if (!k_scale.is_none()) {
    throw_if_error(ks.borrow(k_scale, "k_scale", std::nullopt));
    cache.k_scale = ks.view();
  }
  if (!v_scale.is_none()) {
    throw_if_error(vs.borrow(v_scale, "v_scale", std::nullopt));
    cache.v_scale = vs.view();
  }
  Status status;
  {
    py::gil_scoped_release release;
    status = write_kv(k.view(), v.view(), slots.view(), cache);
  }
  throw_if_error(status);
}

}  // namespace

void add_ops(py::module_& m) {
  using namespace pybind11::literals;
  m.def("merge_states", &merge_states_py, "out_a"_a, "lse_a"_a, "out_b"_a, "lse_b"_a, py::kw_only(),
        "dtype"_a = py::none(), "out_dtype"_a = py::none(),
        R"doc(Combines two attention results over disjoint key sets into the result
over their union (exact without sinks). out_a, out_b [rows..., head_dim]
(bf16 as uint16 with dtype='bf16'); lse_a, lse_b [rows...] float32.
Returns (out, lse), out in out_dtype or out_a's dtype.)doc");
  m.def("write_kv", &write_kv_py, "k_new"_a, "v_new"_a, "slot_mapping"_a, "k_cache"_a, "v_cache"_a,
        py::kw_only(), "dtype"_a = py::none(), "k_scale"_a = py::none(), "v_scale"_a = py::none(),
        R"doc(Writes new tokens' K and V into the paged caches, in place.
k_new, v_new [num_new_tokens, num_kv_heads, head_dim]; slot_mapping
[num_new_tokens] int32 with slot = page * page_size + offset, -1 = skip;
k_cache, v_cache [num_pages, page_size, num_kv_heads, head_dim], writable.
fp8 caches (uint8) take uint8 codes as they are, or float32/bf16/f16 tokens
quantized as code = fp8(value / scale[h]) with k_scale, v_scale float32
[1] or [num_kv_heads]. On any error nothing is written.)doc");
}

}  // namespace rpa::python

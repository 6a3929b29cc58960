#include "common.h"

#include <pybind11/stl.h>

#include <array>
#include <string_view>

#include "core/message.h"

namespace rpa::python {

void throw_if_error(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return;
    case StatusCode::kInvalidArgument:
      throw py::value_error(status.message());
    case StatusCode::kUnsupported:
      throw UnsupportedError(status.message());
    case StatusCode::kInternal:
      break;
  }
  throw std::runtime_error(status.message());
}

std::optional<DType> float_dtype(const std::optional<std::string>& name, const char* argument) {
  if (!name) return std::nullopt;
  static constexpr std::array<std::pair<std::string_view, DType>, 6> kNames = {{
      {"f32", DType::kF32},
      {"float32", DType::kF32},
      {"bf16", DType::kBF16},
      {"bfloat16", DType::kBF16},
      {"f16", DType::kF16},
      {"float16", DType::kF16},
  }};
  for (const auto& [text, dtype] : kNames) {
    if (text == *name) return dtype;
  }
  throw py::value_error(cat(argument, "='", *name, "' is not one of 'f32', 'bf16', 'f16'"));
}

py::array zeros(DType dtype, const std::vector<int64_t>& shape, TensorView* view) {
  const char* format = dtype == DType::kF32   ? "float32"
                       : dtype == DType::kF16 ? "float16"
                                              : "uint16";
  py::array array = py::module_::import("numpy").attr("zeros")(py::cast(shape), format);
  *view = TensorView{};
  view->data = array.mutable_data();
  view->dtype = dtype;
  view->rank = static_cast<int>(shape.size());
  int64_t stride = 1;
  for (int d = view->rank - 1; d >= 0; --d) {
    view->shape[d] = shape[d];
    view->strides[d] = stride;
    stride *= shape[d];
  }
  return array;
}

}  // namespace rpa::python

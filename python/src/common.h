// What every binding shares: Status -> Python exceptions, dtype arguments,
// and freshly allocated NumPy outputs.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "rpa/status.h"
#include "rpa/tensor.h"

namespace rpa::python {

namespace py = pybind11;

// Raised as rpa.UnsupportedError, a ValueError: a valid call no kernel handles.
struct UnsupportedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ValueError for an invalid argument, UnsupportedError, RuntimeError for an
// internal failure; the message is the library's own.
void throw_if_error(const Status& status);

// "bf16" or "bfloat16" and so on; None stays unset. `argument` names the
// keyword in the error for any other text.
std::optional<DType> float_dtype(const std::optional<std::string>& name, const char* argument);

// A zeroed NumPy array of `dtype` (bf16 as uint16 bits) and a view of it.
py::array zeros(DType dtype, const std::vector<int64_t>& shape, TensorView* view);

// The bindings, one function per family.
void add_attention(py::module_& m);  // bind_attention.cc: attention, plan_stats
void add_ops(py::module_& m);        // bind_ops.cc: merge_states, write_kv
void add_device_tables(py::module_& m);  // bind_device_tables.cc: device_tables

}  // namespace rpa::python

// Python objects as rpa tensor views: NumPy arrays directly, anything else
// through its __dlpack__ capsule (CPU memory only). A Borrowed tensor keeps
// what it views alive for the duration of one call.
#pragma once

#include <dlpack/dlpack.h>
#include <pybind11/pybind11.h>

#include <optional>

#include "rpa/status.h"
#include "rpa/tensor.h"

namespace rpa::python {

namespace py = pybind11;

class Borrowed {
 public:
  Borrowed() = default;
  Borrowed(const Borrowed&) = delete;
  Borrowed& operator=(const Borrowed&) = delete;
  // Returns a DLPack capsule's tensor to its producer; needs the GIL.
  ~Borrowed();

  // Views `object` as tensor `name`. 16-bit unsigned integers hold raw float
  // bits, so they need `raw16` (bf16 or f16) to say which; a typed float
  // array must agree with `raw16` when it is given. A tensor rpa writes into
  // (`written`) must not be a read-only NumPy array.
  Status borrow(py::handle object, const char* name, std::optional<DType> raw16,
                bool written = false);

  const TensorView& view() const { return view_; }

 private:
  Status borrow_numpy(py::handle array, const char* name, std::optional<DType> raw16, bool written);
  Status borrow_dlpack(py::handle object, const char* name, std::optional<DType> raw16);

  TensorView view_;
  py::object keep_alive_;
  DLManagedTensor* managed_ = nullptr;
};

}  // namespace rpa::python

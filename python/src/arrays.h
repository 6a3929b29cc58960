// Python objects as rpa tensor views: NumPy arrays directly, anything else
// through its __dlpack__ capsule: CPU memory, and CUDA memory where the
// caller allows it (rpa.attention, in a module built with the cuda backend).
// A Borrowed tensor keeps what it views alive for the duration of one call.
#pragma once

#include <dlpack/dlpack.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <optional>

#include "rpa/status.h"
#include "rpa/tensor.h"

namespace rpa::python {

namespace py = pybind11;

// How a tensor is borrowed.
struct BorrowSpec {
  // 16-bit unsigned integers hold raw float bits, so they need `raw16` (bf16
  // or f16) to say which. With `raw16_binds`, a typed float array must agree
  // with it (the message names the keyword `raw16_keyword`); otherwise it
  // only tells what uint16 bits hold.
  std::optional<DType> raw16;
  bool raw16_binds = true;
  const char* raw16_keyword = "dtype";
  // rpa writes into the tensor: a read-only NumPy array is refused.
  bool written = false;
  // CUDA (and managed) memory is accepted, not refused; `stream` (a
  // cudaStream_t as an integer) is handed to the producer's __dlpack__.
  bool cuda_ok = false;
  std::optional<intptr_t> stream;
};

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
  Status borrow(py::handle object, const char* name, const BorrowSpec& spec);

  const TensorView& view() const { return view_; }
  // In CUDA device (or managed) memory; false for CPU memory and when unset.
  bool on_cuda() const { return on_cuda_; }

 private:
  Status borrow_numpy(py::handle array, const char* name, const BorrowSpec& spec);
  Status borrow_dlpack(py::handle object, const char* name, const BorrowSpec& spec);

  TensorView view_;
  bool on_cuda_ = false;
  py::object keep_alive_;
  DLManagedTensor* managed_ = nullptr;
};

}  // namespace rpa::python

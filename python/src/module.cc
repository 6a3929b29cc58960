// rpa._rpa, the extension module of the `rpa` Python package (python/rpa
// re-exports it), over NumPy arrays and DLPack exporters.
// Errors raise with the library's own messages: ValueError for invalid
// arguments, rpa.UnsupportedError (a ValueError) for valid calls no kernel
// handles, RuntimeError for internal failures.
#include "common.h"

PYBIND11_MODULE(_rpa, m) {
  namespace py = pybind11;
  m.doc() = "rpa: ragged paged attention over NumPy arrays and DLPack tensors (CPU).";
  m.attr("__version__") = RPA_VERSION_STRING;
  // Whether rpa.attention takes CUDA tensors (the cuda backend is built in);
  // a GPU must still be there at call time.
#ifdef RPA_WITH_CUDA
  m.attr("cuda_built") = true;
#else
  m.attr("cuda_built") = false;
#endif
  py::register_exception<rpa::python::UnsupportedError>(m, "UnsupportedError", PyExc_ValueError);
  rpa::python::add_attention(m);
  rpa::python::add_ops(m);
  rpa::python::add_device_tables(m);
}

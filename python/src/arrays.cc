#include "arrays.h"

#include <pybind11/numpy.h>

#include <string>

#include "core/message.h"

namespace rpa::python {
namespace {

// The element type of a tensor whose storage is `bits`-bit `kind` ('f' float,
// 'i' signed, 'u' unsigned, 'b' bfloat, '8' fp8 e4m3), with the raw16 rule
// applied (BorrowSpec).
Status element_type(char kind, int bits, const char* name, const BorrowSpec& spec,
                    const std::string& described, DType* dtype) {
  const std::optional<DType> raw16 = spec.raw16;
  std::optional<DType> typed;
  if (kind == 'f' && bits == 32) typed = DType::kF32;
  if (kind == 'f' && bits == 16) typed = DType::kF16;
  if (kind == 'b' && bits == 16) typed = DType::kBF16;
  if (kind == 'i' && bits == 32) typed = DType::kI32;
  // The contract's one 8-bit type: uint8 holds fp8 e4m3 bytes (K/V caches).
  if ((kind == 'u' || kind == '8') && bits == 8) typed = DType::kF8E4M3;
  if (kind == 'u' && bits == 16) {
    // Only a 16-bit float can be what 16 bits hold (dtype='f32' says nothing).
    if (!raw16 || dtype_size(*raw16) != 2) {
      const char* key = spec.raw16_keyword;
      return Status::Invalid(cat(name, " is uint16: pass ", key, "='bf16' or ", key,
                                 "='f16' to say which 16-bit float its bits hold"));
    }
    typed = raw16;
  }
  if (!typed) {
    return Status::Invalid(cat(name, " has element type ", described,
                               "; rpa takes float32, float16, bfloat16 (or uint16 bits), int32, "
                               "and uint8 bits of fp8 e4m3 caches"));
  }
  if (spec.raw16_binds && raw16 && *typed != DType::kI32 && *typed != DType::kF8E4M3 &&
      *typed != *raw16) {
    return Status::Invalid(
        cat(name, " is ", *typed, " but ", spec.raw16_keyword, "='", *raw16, "' was given"));
  }
  *dtype = *typed;
  return Status::Ok();
}

const char* device_name(int type) {
  switch (type) {
    case kDLCPU:
      return "CPU";
    case kDLCUDA:
      return "CUDA";
    case kDLCUDAHost:
      return "CUDA host";
    case kDLROCM:
      return "ROCm";
    case kDLMetal:
      return "Metal";
    default:
      return "non-CPU";
  }
}

bool is_cuda_memory(int type) { return type == kDLCUDA || type == kDLCUDAManaged; }

// Whether a tensor in DLPack device `type` can be read here: CPU memory
// (pinned CUDA host memory is CPU memory) always, CUDA memory when the
// caller takes it and the module has the cuda backend.
Status check_device(int type, const char* name, const BorrowSpec& spec) {
  if (type == kDLCPU || type == kDLCUDAHost) return Status::Ok();
#ifdef RPA_WITH_CUDA
  constexpr bool kCudaBuilt = true;
#else
  constexpr bool kCudaBuilt = false;
#endif
  if (is_cuda_memory(type) && spec.cuda_ok && kCudaBuilt) return Status::Ok();
  const char* reads = !spec.cuda_ok   ? "this rpa function reads CPU memory only"
                      : kCudaBuilt    ? "rpa reads CPU and CUDA memory only"
                                      : "this rpa module was built without the cuda backend and "
                                        "reads CPU memory only";
  return Status::Invalid(
      cat(name, " lives on a ", device_name(type), " device (DLPack type ", type, "); ", reads));
}

}  // namespace

Borrowed::~Borrowed() {
  if (managed_ != nullptr && managed_->deleter != nullptr) managed_->deleter(managed_);
}

Status Borrowed::borrow(py::handle object, const char* name, std::optional<DType> raw16,
                        bool written) {
  BorrowSpec spec;
  spec.raw16 = raw16;
  spec.written = written;
  return borrow(object, name, spec);
}

Status Borrowed::borrow(py::handle object, const char* name, const BorrowSpec& spec) {
  if (py::isinstance<py::array>(object)) return borrow_numpy(object, name, spec);
  if (py::hasattr(object, "__dlpack__")) return borrow_dlpack(object, name, spec);
  return Status::Invalid(cat(name, " must be a NumPy array or support __dlpack__, not ",
                             std::string(py::str(py::type::handle_of(object).attr("__name__")))));
}

Status Borrowed::borrow_numpy(py::handle object, const char* name, const BorrowSpec& spec) {
  auto array = py::reinterpret_borrow<py::array>(object);
  if (spec.written && !array.writeable()) {
    return Status::Invalid(cat(name, " is a read-only array, and rpa writes into it"));
  }
  const py::dtype dt = array.dtype();
  const std::string described = py::str(static_cast<py::handle>(dt));
  if (dt.byteorder() == '>') {
    return Status::Invalid(cat(name, " is big-endian (", described, "); rpa reads native order"));
  }
  // NumPy has no bfloat16 or fp8; ml_dtypes' types of those names are accepted.
  const char kind = described == "bfloat16"        ? 'b'
                    : described == "float8_e4m3fn" ? '8'
                                                   : dt.kind();
  RPA_RETURN_IF_ERROR(element_type(kind, static_cast<int>(dt.itemsize()) * 8, name, spec,
                                   described, &view_.dtype));
  if (array.ndim() > kMaxRank) {
    return Status::Invalid(
        cat(name, " has rank ", array.ndim(), "; rpa tensors have rank at most ", kMaxRank));
  }
  view_.rank = static_cast<int>(array.ndim());
  view_.data = const_cast<void*>(array.data());
  for (int d = 0; d < view_.rank; ++d) {
    view_.shape[d] = array.shape(d);
    if (array.strides(d) % dt.itemsize() != 0) {
      return Status::Invalid(cat(name, ": stride ", array.strides(d), " bytes of dimension ", d,
                                 " is not a multiple of the element size ", dt.itemsize()));
    }
    view_.strides[d] = array.strides(d) / dt.itemsize();
  }
  keep_alive_ = array;
  return Status::Ok();
}

Status Borrowed::borrow_dlpack(py::handle object, const char* name, const BorrowSpec& spec) {
  bool announced_cuda = false;
  if (py::hasattr(object, "__dlpack_device__")) {
    const auto device = object.attr("__dlpack_device__")().cast<py::tuple>();
    const int type = device[0].cast<int>();
    RPA_RETURN_IF_ERROR(check_device(type, name, spec));
    announced_cuda = is_cuda_memory(type);
  }
  // A CUDA producer orders its pending work before `stream` (DLPack's
  // handshake); None leaves it to the producer's default.
  py::object capsule = announced_cuda && spec.stream
                           ? object.attr("__dlpack__")(py::arg("stream") = *spec.stream)
                           : object.attr("__dlpack__")();
  if (!PyCapsule_IsValid(capsule.ptr(), "dltensor")) {
    return Status::Invalid(cat(name, ".__dlpack__() did not return an unused 'dltensor' capsule"));
  }
  // Renaming the capsule claims the tensor: its producer's capsule destructor
  // then leaves it alone and our destructor calls the deleter instead.
  managed_ = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule.ptr(), "dltensor"));
  PyCapsule_SetName(capsule.ptr(), "used_dltensor");
  const DLTensor& t = managed_->dl_tensor;
  RPA_RETURN_IF_ERROR(check_device(t.device.device_type, name, spec));
  on_cuda_ = is_cuda_memory(t.device.device_type);
  const char kinds[] = {'i', 'u', 'f', '?', 'b', '?'};
  const char kind = t.dtype.code < sizeof(kinds) && t.dtype.lanes == 1 ? kinds[t.dtype.code] : '?';
  const std::string described =
      cat("DLPack code ", int{t.dtype.code}, " bits ", int{t.dtype.bits}, " lanes ", t.dtype.lanes);
  RPA_RETURN_IF_ERROR(element_type(kind, t.dtype.bits, name, spec, described, &view_.dtype));
  if (t.ndim < 0 || t.ndim > kMaxRank) {
    return Status::Invalid(
        cat(name, " has rank ", t.ndim, "; rpa tensors have rank at most ", kMaxRank));
  }
  view_.rank = t.ndim;
  view_.data = static_cast<char*>(t.data) + t.byte_offset;
  int64_t stride = 1;
  for (int d = view_.rank - 1; d >= 0; --d) {
    view_.shape[d] = t.shape[d];
    // DLPack strides are in elements; NULL means row-major.
    view_.strides[d] = t.strides != nullptr ? t.strides[d] : stride;
    stride *= t.shape[d];
  }
  return Status::Ok();
}

}  // namespace rpa::python

"""A minimal DLPack producer in ctypes, to reach what NumPy cannot export:
DLPack dtype codes, element strides and a device other than the CPU (the
memory stays the NumPy array's)."""

import ctypes


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class DLManagedTensor(ctypes.Structure):
    pass


DELETER = ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensor))
DLManagedTensor._fields_ = [("dl_tensor", DLTensor), ("manager_ctx", ctypes.c_void_p),
                            ("deleter", DELETER)]

# A prototype of our own: other ctypes users in the process (jax.ffi.pycapsule)
# set argtypes on the shared ctypes.pythonapi.PyCapsule_New.
PyCapsule_New = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_char_p,
                                  ctypes.c_void_p)(("PyCapsule_New", ctypes.pythonapi))


class CtypesTensor:
    """Exports `array`'s memory with an explicit DLPack dtype code, element
    strides and device; counts deleter calls. No __dlpack_device__, so the
    device is only seen inside the capsule."""

    def __init__(self, array, code, bits, device_type=1):
        self.array = array
        self.deleted = 0
        self.streams = []  # the stream= of each __dlpack__ call
        itemsize = array.itemsize
        self.shape = (ctypes.c_int64 * array.ndim)(*array.shape)
        self.strides = (ctypes.c_int64 * array.ndim)(*(s // itemsize for s in array.strides))
        self.deleter = DELETER(self._delete)
        self.managed = DLManagedTensor(
            DLTensor(array.ctypes.data, DLDevice(device_type, 0), array.ndim,
                     DLDataType(code, bits, 1), self.shape, self.strides, 0),
            None, self.deleter)

    def _delete(self, _):
        self.deleted += 1

    def __dlpack__(self, stream=None):
        self.streams.append(stream)
        return PyCapsule_New(ctypes.addressof(self.managed), b"dltensor", None)


class AnnouncedTensor(CtypesTensor):
    """A CtypesTensor that also says its device through __dlpack_device__, as
    torch does, so a consumer can hand it a stream."""

    def __dlpack_device__(self):
        return (self.managed.dl_tensor.device.device_type, 0)


K_DL_BFLOAT, K_DL_FLOAT = 4, 2
K_DL_CPU, K_DL_CUDA, K_DL_ROCM = 1, 2, 10

"""DLPack: NumPy's own exporter, a ctypes-built producer (bf16, strides, a
non-CPU device), the capsule's deleter, and the result back through DLPack."""

import ctypes
import sys

import numpy as np
import pytest

import rpa
from rpa_reference import from_bf16_bits, make_batch

MIXED = [(1, 40), (0, 0), (7, 33), (12, 0)]


class Exporter:
    """Forwards the DLPack protocol of a NumPy array, and nothing else."""

    def __init__(self, array):
        self.array = array

    def __dlpack__(self, stream=None):
        return self.array.__dlpack__()

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()


def test_numpy_dlpack_matches_numpy_path():
    b = make_batch(4, MIXED, sinks=True)
    direct = rpa.attention(**b)
    exported = rpa.attention(**{name: Exporter(a) for name, a in b.items()})
    np.testing.assert_array_equal(direct, exported)


def test_capsules_are_released():
    b = make_batch(4, MIXED)
    before = {name: sys.getrefcount(a) for name, a in b.items()}
    rpa.attention(**{name: Exporter(a) for name, a in b.items()})
    assert {name: sys.getrefcount(a) for name, a in b.items()} == before


def test_result_round_trips_through_dlpack():
    b = make_batch(4, MIXED)
    out = rpa.attention(**b)
    back = np.from_dlpack(Exporter(out))
    np.testing.assert_array_equal(back, out)
    assert np.shares_memory(back, out)


# A minimal DLPack producer in ctypes, to reach what NumPy cannot export.
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

PyCapsule_New = ctypes.pythonapi.PyCapsule_New
PyCapsule_New.restype = ctypes.py_object
PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


class CtypesTensor:
    """Exports `array`'s memory with an explicit DLPack dtype code, element
    strides and device; counts deleter calls. No __dlpack_device__, so the
    device is only seen inside the capsule."""

    def __init__(self, array, code, bits, device_type=1):
        self.array = array
        self.deleted = 0
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
        return PyCapsule_New(ctypes.addressof(self.managed), b"dltensor", None)


K_DL_BFLOAT, K_DL_FLOAT = 4, 2


def test_bf16_through_dlpack_and_strides():
    b = make_batch(4, MIXED, dtype="bf16")
    want = rpa.attention(**b, dtype="bf16")
    # q viewed inside a wider buffer: a strided tensor, bf16 by DLPack code.
    wide = np.zeros(b["q"].shape[:3] + (2 * b["q"].shape[3],), dtype=np.uint16)
    wide[..., : b["q"].shape[3]] = b["q"]
    q = CtypesTensor(wide[..., : b["q"].shape[3]], K_DL_BFLOAT, 16)
    k = CtypesTensor(b["k_cache"], K_DL_BFLOAT, 16)
    v = CtypesTensor(b["v_cache"], K_DL_BFLOAT, 16)
    got = rpa.attention(q, k, v, b["block_table"], b["seq_lens"], b["query_start_len"])
    assert got.dtype == np.uint16  # bf16 out travels as bits
    np.testing.assert_array_equal(from_bf16_bits(got), from_bf16_bits(want))
    assert (q.deleted, k.deleted, v.deleted) == (1, 1, 1)


def test_non_cpu_device_is_refused_and_released():
    b = make_batch(4, MIXED)
    q = CtypesTensor(b["q"], K_DL_FLOAT, 32, device_type=2)
    with pytest.raises(ValueError, match=r"q lives on a CUDA device"):
        rpa.attention(q, b["k_cache"], b["v_cache"], b["block_table"], b["seq_lens"],
                      b["query_start_len"])
    assert q.deleted == 1


def test_dlpack_device_checked_before_export():
    class OnGpu(Exporter):
        def __dlpack_device__(self):
            return (2, 0)

    b = make_batch(4, MIXED)
    with pytest.raises(ValueError, match=r"k_cache lives on a CUDA device \(DLPack type 2\)"):
        rpa.attention(b["q"], OnGpu(b["k_cache"]), b["v_cache"], b["block_table"],
                      b["seq_lens"], b["query_start_len"])

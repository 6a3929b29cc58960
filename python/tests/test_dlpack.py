"""DLPack: NumPy's own exporter, a ctypes-built producer (bf16, strides, a
device rpa never reads), the capsule's deleter, and the result back through
DLPack. CUDA tensors: test_out_and_cuda.py."""

import sys

import numpy as np
import pytest

import rpa
from dlpack_producer import K_DL_BFLOAT, K_DL_FLOAT, K_DL_ROCM, CtypesTensor
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
    q = CtypesTensor(b["q"], K_DL_FLOAT, 32, device_type=K_DL_ROCM)
    with pytest.raises(ValueError, match=r"q lives on a ROCm device \(DLPack type 10\)"):
        rpa.attention(q, b["k_cache"], b["v_cache"], b["block_table"], b["seq_lens"],
                      b["query_start_len"])
    assert q.deleted == 1


def test_dlpack_device_checked_before_export():
    class OnRocm(Exporter):
        def __dlpack_device__(self):
            return (K_DL_ROCM, 0)

    b = make_batch(4, MIXED)
    with pytest.raises(ValueError, match=r"k_cache lives on a ROCm device \(DLPack type 10\)"):
        rpa.attention(b["q"], OnRocm(b["k_cache"]), b["v_cache"], b["block_table"],
                      b["seq_lens"], b["query_start_len"])

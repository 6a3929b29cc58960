"""rpa.attention into the caller's arrays (out=, lse=), and the CUDA side of
the Python module: CUDA tensors (DLPack) go to the cuda backend, never to a
host one, and need out=; stream= reaches the producer and the backend. The
CUDA tensors here are ctypes-made (host memory announced as CUDA), so on a
machine without a GPU the library's own "no usable CUDA device" error is the
end of the road, and on one with a GPU its placement check is."""

import numpy as np
import pytest

import rpa
from dlpack_producer import K_DL_CUDA, K_DL_FLOAT, AnnouncedTensor, CtypesTensor
from rpa_reference import from_bf16_bits, make_batch

MIXED = [(1, 40), (0, 0), (7, 33), (12, 0)]
SENTINEL = 7.0


def sentinel_like(array, dtype=None):
    return np.full(array.shape, SENTINEL, dtype=dtype or array.dtype)


def test_out_is_written_in_place_and_returned():
    b = make_batch(3, MIXED)
    want = rpa.attention(**b)
    out = sentinel_like(b["q"])
    got = rpa.attention(**b, out=out)
    assert got is out
    live = int(b["query_start_len"][-1])
    np.testing.assert_array_equal(out[:live], want[:live])
    # Padding rows belong to no slot: never written, so the caller's values stay.
    assert np.all(out[live:] == SENTINEL)


def test_lse_is_written_in_place_and_implies_return_lse():
    b = make_batch(3, MIXED)
    want_out, want_lse = rpa.attention(**b, return_lse=True)
    lse = np.zeros(b["q"].shape[:3], dtype=np.float32)
    out, got_lse = rpa.attention(**b, lse=lse)
    assert got_lse is lse
    np.testing.assert_array_equal(out, want_out)
    np.testing.assert_array_equal(lse, want_lse)


def test_bf16_bits_out_and_f32_out_for_bf16_inputs():
    b = make_batch(3, MIXED, dtype="bf16")
    want = rpa.attention(**b, dtype="bf16")
    bits = np.zeros(b["q"].shape, dtype=np.uint16)  # q's type, as bits
    rpa.attention(**b, dtype="bf16", out=bits)
    np.testing.assert_array_equal(bits, want)
    wide = np.zeros(b["q"].shape, dtype=np.float32)  # f32 out: its own type says so
    rpa.attention(**b, dtype="bf16", out=wide)
    np.testing.assert_array_equal(wide, rpa.attention(**b, dtype="bf16", out_dtype="f32"))
    assert np.max(np.abs(wide - from_bf16_bits(want))) < 1e-2


def test_out_that_breaks_the_contract_is_refused_and_untouched():
    b = make_batch(3, MIXED)
    short = np.full((2,) + b["q"].shape[1:], SENTINEL, dtype=np.float32)
    with pytest.raises(ValueError, match=r"out"):
        rpa.attention(**b, out=short)
    assert np.all(short == SENTINEL)
    frozen = sentinel_like(b["q"])
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match=r"out is a read-only array"):
        rpa.attention(**b, out=frozen)
    with pytest.raises(ValueError, match=r"out is f32 but out_dtype='bf16' was given"):
        rpa.attention(**b, out=sentinel_like(b["q"]), out_dtype="bf16")
    bits = np.zeros(b["q"].shape, dtype=np.uint16)
    with pytest.raises(ValueError, match=r"out is uint16: pass out_dtype='bf16' or out_dtype='f16'"):
        rpa.attention(**b, out=bits)  # f32 q: nothing says what the bits hold


def test_stream_without_cuda_tensors_is_refused():
    b = make_batch(3, MIXED)
    with pytest.raises(ValueError, match=r"stream= is a CUDA stream, for calls on CUDA tensors"):
        rpa.attention(**b, stream=1234)
    with pytest.raises(ValueError, match=r"stream=-1 is not a CUDA stream"):
        rpa.attention(**b, stream=-1)


def on_cuda(array):
    return AnnouncedTensor(array, K_DL_FLOAT, 32, device_type=K_DL_CUDA)


@pytest.mark.skipif(rpa.cuda_built, reason="this module has the cuda backend")
def test_cuda_tensors_need_the_cuda_backend_built():
    b = make_batch(3, MIXED)
    q = CtypesTensor(b["q"], K_DL_FLOAT, 32, device_type=K_DL_CUDA)
    with pytest.raises(ValueError, match=r"q lives on a CUDA device \(DLPack type 2\); this rpa "
                                         r"module was built without the cuda backend"):
        rpa.attention(q, b["k_cache"], b["v_cache"], b["block_table"], b["seq_lens"],
                      b["query_start_len"])
    assert q.deleted == 1


@pytest.mark.skipif(not rpa.cuda_built, reason="this module has no cuda backend")
def test_cuda_tensors_never_reach_a_host_backend():
    b = make_batch(3, MIXED)
    k = on_cuda(b["k_cache"])
    with pytest.raises(ValueError, match=r"k_cache is a CUDA tensor, and backend='cpu' reads "
                                         r"host memory: use backend='cuda' or 'auto'"):
        rpa.attention(b["q"], k, b["v_cache"], b["block_table"], b["seq_lens"],
                      b["query_start_len"], backend="cpu", out=on_cuda(sentinel_like(b["q"])))
    assert k.deleted == 1


@pytest.mark.skipif(not rpa.cuda_built, reason="this module has no cuda backend")
def test_cuda_tensors_need_out():
    b = make_batch(3, MIXED)
    q = on_cuda(b["q"])
    with pytest.raises(ValueError, match=r"with CUDA tensors pass out= \(CUDA tensors to write "
                                         r"into\): rpa allocates only NumPy arrays"):
        rpa.attention(q, b["k_cache"], b["v_cache"], b["block_table"], b["seq_lens"],
                      b["query_start_len"])
    with pytest.raises(ValueError, match=r"pass out= and lse="):
        rpa.attention(q, b["k_cache"], b["v_cache"], b["block_table"], b["seq_lens"],
                      b["query_start_len"], out=on_cuda(sentinel_like(b["q"])), return_lse=True)


@pytest.mark.skipif(not rpa.cuda_built, reason="this module has no cuda backend")
def test_cuda_call_reaches_the_cuda_backend_with_the_stream():
    b = make_batch(3, MIXED)
    q, k, v = on_cuda(b["q"]), on_cuda(b["k_cache"]), on_cuda(b["v_cache"])
    out_array = sentinel_like(b["q"])
    out = on_cuda(out_array)
    # No GPU: the backend says so. A GPU: these "CUDA" tensors are host memory,
    # and its placement check says that. Either way nothing is written.
    with pytest.raises(ValueError, match=r"no usable CUDA device|q\.data is in host memory"):
        rpa.attention(q, k, v, b["block_table"], b["seq_lens"], b["query_start_len"], out=out,
                      stream=77)
    assert np.all(out_array == SENTINEL)
    for tensor in (q, k, v, out):
        assert tensor.streams == [77]  # the DLPack handshake got the caller's stream
        assert tensor.deleted == 1
    # torch's default stream reads 0, which DLPack forbids: it goes as 1, the
    # legacy default stream it is.
    q = on_cuda(b["q"])
    with pytest.raises(ValueError, match=r"no usable CUDA device|q\.data is in host memory"):
        rpa.attention(q, b["k_cache"], b["v_cache"], b["block_table"], b["seq_lens"],
                      b["query_start_len"], out=on_cuda(out_array), stream=0)
    assert q.streams == [1]


def test_host_only_functions_refuse_cuda_tensors():
    a = np.zeros((2, 1, 1, 64), dtype=np.float32)
    lse = np.zeros((2, 1, 1), dtype=np.float32)
    with pytest.raises(ValueError, match=r"out_a lives on a CUDA device \(DLPack type 2\); this "
                                         r"rpa function reads CPU memory only"):
        rpa.merge_states(on_cuda(a), lse, a, lse)

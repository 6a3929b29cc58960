"""Invalid calls raise with the library's messages, and write nothing."""

import numpy as np
import pytest

import rpa
from rpa_reference import make_batch

MIXED = [(1, 40), (0, 0), (7, 33)]


def batch(**changes):
    b = make_batch(3, MIXED)
    b.update(changes)
    return b


def test_live_block_table_entry_out_of_range():
    b = batch()
    b["block_table"][2, 1] = -1
    with pytest.raises(ValueError, match=r"block_table\[2, 1\] = -1"):
        rpa.attention(**b)


def test_query_start_len_decreasing():
    b = batch()
    b["query_start_len"][2] = 0
    with pytest.raises(ValueError, match=r"query_start_len"):
        rpa.attention(**b)


def test_unsupported_head_dim_is_its_own_value_error():
    b = make_batch(3, MIXED, head_dim=72)
    with pytest.raises(rpa.UnsupportedError, match="72"):
        rpa.attention(**b)
    assert issubclass(rpa.UnsupportedError, ValueError)


def test_uint16_needs_a_dtype():
    b = make_batch(3, MIXED, dtype="bf16")
    with pytest.raises(ValueError, match=r"q is uint16: pass dtype='bf16' or dtype='f16'"):
        rpa.attention(**b)
    # f32 is no reading of 16 bits (it once made rpa read past the arrays).
    with pytest.raises(ValueError, match=r"q is uint16: pass dtype='bf16' or dtype='f16'"):
        rpa.attention(**b, dtype="f32")


def test_dtype_must_agree_with_typed_arrays():
    with pytest.raises(ValueError, match=r"q is f32 but dtype='bf16' was given"):
        rpa.attention(**batch(), dtype="bf16")
    with pytest.raises(ValueError, match=r"dtype='bf17' is not one of"):
        rpa.attention(**batch(), dtype="bf17")


def test_metadata_must_be_int32():
    b = batch()
    b["seq_lens"] = b["seq_lens"].astype(np.int64)
    with pytest.raises(ValueError, match=r"seq_lens has element type int64"):
        rpa.attention(**b)


def test_not_an_array():
    b = batch()
    b["seq_lens"] = list(b["seq_lens"])
    with pytest.raises(ValueError, match=r"seq_lens must be a NumPy array or support __dlpack__, not list"):
        rpa.attention(**b)


def test_big_endian():
    b = batch()
    b["q"] = b["q"].astype(">f4")
    with pytest.raises(ValueError, match=r"q is big-endian"):
        rpa.attention(**b)


def test_bad_backend_and_threads():
    with pytest.raises(ValueError, match=r"backend='gpu' is not one of"):
        rpa.attention(**batch(), backend="gpu")
    with pytest.raises(ValueError, match=r"threads=-1 is negative"):
        rpa.attention(**batch(), threads=-1)


def test_bad_options():
    with pytest.raises(ValueError, match="sliding_window"):
        rpa.attention(**batch(), sliding_window=-3)
    with pytest.raises(ValueError, match="scale"):
        rpa.attention(**batch(), scale=float("nan"))


def test_plan_stats_validates_too():
    b = batch()
    b["seq_lens"][0] = -5
    with pytest.raises(ValueError, match=r"seq_lens\[0\] = -5"):
        rpa.plan_stats(**b)

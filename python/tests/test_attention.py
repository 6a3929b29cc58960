"""rpa.attention and rpa.plan_stats against the NumPy reference."""

import numpy as np
import pytest

import rpa
from rpa_reference import TOLERANCE, decode, live_rows, make_batch, reference

# Decode rows, a chunked prefill, a fresh prompt and inactive slots between them.
MIXED = [(1, 40), (0, 0), (7, 33), (1, 1), (0, 0), (19, 0), (1, 70)]

CASES = [
    # dtype, kv_heads, group, head_dim, page_size, options, sinks
    ("f32", 2, 4, 64, 16, {}, False),
    ("f32", 1, 1, 128, 32, {"sliding_window": 24}, False),
    ("f32", 2, 8, 64, 16, {"logit_soft_cap": 5.0, "scale": 0.2}, True),
    ("bf16", 2, 4, 64, 16, {}, False),
    ("bf16", 1, 4, 128, 64, {"sliding_window": 9, "logit_soft_cap": 20.0}, True),
    ("f16", 2, 1, 64, 32, {}, True),
    ("f16", 1, 8, 128, 16, {"sliding_window": 40}, False),
]


@pytest.mark.parametrize("dtype,kv_heads,group,head_dim,page_size,options,sinks", CASES)
def test_matches_reference(dtype, kv_heads, group, head_dim, page_size, options, sinks):
    b = make_batch(11, MIXED, kv_heads, group, head_dim, page_size, dtype, sinks=sinks)
    out, lse = rpa.attention(**b, dtype=dtype, return_lse=True, **options)
    want_out, want_lse = reference(b, dtype, **options)
    rows = live_rows(b)
    assert out.shape == b["q"].shape and out.dtype == b["q"].dtype
    assert lse.shape == b["q"].shape[:3] and lse.dtype == np.float32
    got = decode(out, dtype)[:rows]
    error = np.abs(got - want_out[:rows]).max() / np.abs(want_out[:rows]).max()
    assert error <= TOLERANCE[dtype]
    assert np.abs(lse[:rows] - want_lse[:rows]).max() <= 1e-4


def test_f32_out_for_bf16_inputs_is_tighter(monkeypatch):
    b = make_batch(5, MIXED, dtype="bf16")
    want, _ = reference(b, "bf16")
    rows = live_rows(b)
    # On the SIMD path only f32 accumulation separates it from the reference:
    # no bf16 rounding of out. RPA_CPU_AMX=0 selects that path on AMX CPUs.
    monkeypatch.setenv("RPA_CPU_AMX", "0")
    out = rpa.attention(**b, dtype="bf16", out_dtype="f32")
    assert out.dtype == np.float32
    assert np.abs(out[:rows] - want[:rows]).max() <= 1e-4
    # On AMX tiles P is rounded to bf16 for P V (docs/contract.md section 5).
    monkeypatch.delenv("RPA_CPU_AMX")
    out = rpa.attention(**b, dtype="bf16", out_dtype="f32")
    error = np.abs(out[:rows] - want[:rows]).max() / np.abs(want[:rows]).max()
    assert error <= 8e-3


def test_padding_rows_are_zero_and_input_untouched():
    b = make_batch(6, MIXED, padding=5)
    before = {name: array.copy() for name, array in b.items()}
    out = rpa.attention(**b)
    assert not out[live_rows(b):].any()
    for name, array in b.items():
        np.testing.assert_array_equal(array, before[name])


@pytest.mark.parametrize("backend", ["reference", "single-loop", "cpu"])
def test_every_backend(backend):
    b = make_batch(7, MIXED, sinks=True)
    out = rpa.attention(**b, backend=backend, sliding_window=30)
    want, _ = reference(b, sliding_window=30)
    rows = live_rows(b)
    assert np.abs(out[:rows] - want[:rows]).max() <= TOLERANCE["f32"] * np.abs(want).max()


def test_bitwise_deterministic_across_threads():
    b = make_batch(8, MIXED * 3, dtype="bf16")
    one = rpa.attention(**b, dtype="bf16", threads=1)
    many = rpa.attention(**b, dtype="bf16", threads=0)
    np.testing.assert_array_equal(one, many)


def test_strided_outer_dimensions():
    b = make_batch(9, MIXED)
    wide = np.full(b["q"].shape[:3] + (2 * b["q"].shape[3],), np.nan, dtype=np.float32)
    wide[..., : b["q"].shape[3]] = b["q"]
    strided = dict(b, q=wide[..., : b["q"].shape[3]])  # rows 512 bytes apart, last dim dense
    assert not strided["q"].flags.c_contiguous
    np.testing.assert_array_equal(rpa.attention(**strided), rpa.attention(**b))


def test_plan_stats():
    b = make_batch(10, MIXED)
    stats = rpa.plan_stats(**b)
    assert stats["batch_capacity"] == len(MIXED)
    assert stats["live_slots"] == 5
    assert stats["decode_rows"] == 3
    assert stats["prefill_rows"] == 7 + 19
    visible = sum(
        c + i + 1 for q, c in MIXED for i in range(q))  # causal: row i sees context + i + 1 keys
    assert stats["visible_kv_tokens"] == visible
    assert 0 < stats["useful_ratio"] <= 1
    assert stats["items"] == stats["decode_items"] + stats["prefill_items"]
    forced = rpa.plan_stats(**b, q_tile_rows=4)
    assert forced["q_tile_rows"] == 4


def test_version():
    assert rpa.__version__.count(".") == 2

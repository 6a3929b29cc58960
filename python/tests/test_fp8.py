"""fp8 e4m3 K/V caches (uint8 codes) with per-tensor and per-kv-head scales,
against the NumPy reference on the dequantized caches."""

import numpy as np
import pytest

import rpa
from rpa_reference import TOLERANCE, decode, live_rows, make_batch, reference, storage

MIXED = [(1, 40), (0, 0), (7, 33), (1, 1), (19, 0), (1, 70)]


def e4m3_values():
    """The value of every code, from the OCP definition; NaN for S.1111.111."""
    codes = np.arange(256)
    exponent, mantissa = (codes >> 3) & 0xF, codes & 0x7
    magnitude = np.where(exponent == 0, mantissa * 2.0**-9,
                         (1 + mantissa / 8.0) * 2.0 ** (exponent - 7.0))
    values = np.where(codes & 0x80, -magnitude, magnitude)
    values[(codes & 0x7F) == 0x7F] = np.nan
    return values


def quantize(x, scale):
    """The nearest finite code of x / scale (NaN -> the NaN code)."""
    values = e4m3_values()
    finite = np.flatnonzero(~np.isnan(values))
    y = x / scale
    nearest = finite[np.abs(values[finite][None, :] - y.reshape(-1, 1)).argmin(axis=1)]
    codes = nearest.reshape(x.shape).astype(np.uint8)
    codes[np.isnan(y)] = 0x7F
    return codes


@pytest.mark.parametrize("dtype", ["f32", "bf16"])
@pytest.mark.parametrize("per_head", [False, True])
def test_matches_reference_on_dequantized_caches(dtype, per_head):
    b = make_batch(3, MIXED, kv_heads=2, group=4, head_dim=64, page_size=16, dtype="f32")
    heads = b["k_cache"].shape[2]
    scales = {}
    fp8 = dict(b)
    dequantized = dict(b)
    for name, scale_name in (("k_cache", "k_scale"), ("v_cache", "v_scale")):
        x = b[name]
        amax = np.nanmax(np.abs(x), axis=(0, 1, 3))
        scale = (amax / 448.0 if per_head else np.full(heads, amax.max() / 448.0)).astype(np.float32)
        codes = quantize(x, scale[None, None, :, None])
        fp8[name] = codes
        dequantized[name] = (e4m3_values()[codes] * scale[None, None, :, None]).astype(np.float32)
        scales[scale_name] = scale if per_head else scale[:1]
    if dtype == "bf16":  # q in bf16 bits; the reference reads the same values
        fp8["q"] = storage(b["q"], "bf16")
        dequantized["q"] = decode(fp8["q"], "bf16").astype(np.float32)
    out = rpa.attention(**fp8, **scales, dtype=dtype if dtype == "bf16" else None, out_dtype="f32")
    want, _ = reference(dequantized, "f32")
    rows = live_rows(b)
    error = np.abs(out[:rows] - want[:rows]).max() / np.abs(want[:rows]).max()
    assert error <= TOLERANCE["f32"] * 10


def test_fp8_needs_its_scales():
    b = make_batch(4, [(1, 20)], kv_heads=1, group=2, head_dim=64, page_size=16)
    b["k_cache"] = quantize(b["k_cache"], 0.01)
    b["v_cache"] = quantize(b["v_cache"], 0.01)
    with pytest.raises(ValueError, match="k_scale is missing"):
        rpa.attention(**b)
    with pytest.raises(ValueError, match=r"v_scale\[0\] = -1 must be finite and positive"):
        rpa.attention(**b, k_scale=np.array([0.01], np.float32),
                      v_scale=np.array([-1.0], np.float32))

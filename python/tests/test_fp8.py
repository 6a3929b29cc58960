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
def test_matches_reference_on_dequantized_caches(dtype, per_head, monkeypatch):
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
    want, _ = reference(dequantized, "f32")
    rows = live_rows(b)

    def error():
        out = rpa.attention(**fp8, **scales, dtype=dtype if dtype == "bf16" else None,
                            out_dtype="f32")
        return np.abs(out[:rows] - want[:rows]).max() / np.abs(want[:rows]).max()

    # The SIMD paths keep P in f32; RPA_CPU_AMX=0 selects them on AMX CPUs.
    monkeypatch.setenv("RPA_CPU_AMX", "0")
    assert error() <= TOLERANCE["f32"] * 10
    # bf16 q decodes on AMX tiles where usable: the codes widen to bf16
    # exactly, P is rounded to bf16 for P V (docs/contract.md section 5).
    monkeypatch.delenv("RPA_CPU_AMX")
    assert error() <= (8e-3 if dtype == "bf16" else TOLERANCE["f32"] * 10)


def test_fp8_needs_its_scales():
    b = make_batch(4, [(1, 20)], kv_heads=1, group=2, head_dim=64, page_size=16)
    b["k_cache"] = quantize(b["k_cache"], 0.01)
    b["v_cache"] = quantize(b["v_cache"], 0.01)
    with pytest.raises(ValueError, match="k_scale is missing"):
        rpa.attention(**b)
    with pytest.raises(ValueError, match=r"v_scale\[0\] = -1 must be finite and positive"):
        rpa.attention(**b, k_scale=np.array([0.01], np.float32),
                      v_scale=np.array([-1.0], np.float32))


def signed_zero(codes):
    """Codes with -0 (0x80) read as +0: the library keeps a tiny negative's
    sign, quantize() picks the first of two equal values."""
    return np.where(codes == 0x80, 0, codes)


@pytest.mark.parametrize("dtype", ["f32", "bf16"])
@pytest.mark.parametrize("per_head", [False, True])
def test_write_kv_quantizes_tokens_into_fp8_caches(dtype, per_head):
    """Float tokens written at the cache's scales hold the NumPy quantizer's
    codes (random values: no ties between codes); other slots are untouched."""
    rng = np.random.default_rng(7)
    pages, page_size, heads, dim = 3, 16, 2, 64
    tokens = 20
    head_range = np.array([1.0, 0.05])[:, None]  # per-head scales differ by 20x
    k_new = (rng.standard_normal((tokens, heads, dim)) * head_range).astype(np.float32)
    v_new = rng.standard_normal((tokens, heads, dim)).astype(np.float32) * 3
    amax_k = np.abs(k_new).max(axis=(0, 2)) / 448
    k_scale = (amax_k if per_head else amax_k[:1]).astype(np.float32)
    v_scale = np.array([np.abs(v_new).max() / 448], np.float32)
    k_new[4, 1, 7] = 1e6  # beyond the scale's range: saturates at the largest code
    if dtype == "bf16":  # the quantizer reads the bf16 values
        k_new, v_new = (decode(storage(x, "bf16"), "bf16").astype(np.float32)
                        for x in (k_new, v_new))
    slot_mapping = rng.permutation(pages * page_size)[:tokens].astype(np.int32)
    slot_mapping[3] = -1  # a padding token
    k_cache = np.full((pages, page_size, heads, dim), 0x55, np.uint8)
    v_cache = k_cache.copy()
    given = (lambda x: storage(x, "bf16")) if dtype == "bf16" else (lambda x: x)
    rpa.write_kv(given(k_new), given(v_new), slot_mapping, k_cache, v_cache,
                 dtype=dtype if dtype == "bf16" else None, k_scale=k_scale, v_scale=v_scale)
    flat_k = k_cache.reshape(-1, heads, dim)
    flat_v = v_cache.reshape(-1, heads, dim)
    scale_k = np.broadcast_to(k_scale, (heads,))[:, None]
    for t, slot in enumerate(slot_mapping):
        if slot == -1:
            continue
        for got, x, scale in ((flat_k[slot], k_new[t], scale_k),
                              (flat_v[slot], v_new[t], v_scale[0])):
            np.testing.assert_array_equal(signed_zero(got), signed_zero(quantize(x, scale)))
    written = np.zeros(pages * page_size, bool)
    written[slot_mapping[slot_mapping >= 0]] = True
    assert (flat_k[~written] == 0x55).all() and (flat_v[~written] == 0x55).all()
    assert flat_k[slot_mapping[4], 1, 7] == 0x7E


def test_write_kv_quantizing_needs_both_scales_and_writes_nothing():
    k_cache = np.zeros((1, 16, 1, 64), np.uint8)
    v_cache = k_cache.copy()
    x = np.ones((1, 1, 64), np.float32)
    slots = np.array([0], np.int32)
    with pytest.raises(ValueError, match="v_scale is missing"):
        rpa.write_kv(x, x, slots, k_cache, v_cache, k_scale=np.array([1.0], np.float32))
    with pytest.raises(ValueError, match=r"k_scale\[0\] = nan must be finite and positive"):
        rpa.write_kv(x, x, slots, k_cache, v_cache, k_scale=np.array([np.nan], np.float32),
                     v_scale=np.array([1.0], np.float32))
    assert not k_cache.any() and not v_cache.any()

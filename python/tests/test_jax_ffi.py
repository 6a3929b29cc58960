"""rpa.jax.ragged_paged_attention, the XLA FFI custom call, under jax.jit:
the same bits as rpa.attention on the same inputs, both cache layouts read
in place, rpa's messages as exceptions, and the custom call's own checks."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402
import ml_dtypes  # noqa: E402
from jax import ffi  # noqa: E402

import rpa  # noqa: E402
import rpa.jax  # noqa: E402
from rpa_reference import live_rows, make_batch  # noqa: E402

MIXED = [(1, 40), (0, 0), (7, 33), (1, 1), (0, 0), (19, 0), (1, 70)]
OPTIONS = ("scale", "sliding_window", "logit_soft_cap", "out_dtype", "return_lse")
call = jax.jit(rpa.jax.ragged_paged_attention, static_argnames=OPTIONS)


def as_jax(b):
    """make_batch's arrays as JAX arrays (bf16 bits as bfloat16)."""
    typed = {n: a.view(ml_dtypes.bfloat16) if a.dtype == np.uint16 else a for n, a in b.items()}
    return {n: jnp.asarray(a) for n, a in typed.items()}


def bits(x):
    x = np.asarray(x)
    return x.view(np.uint16) if x.dtype == ml_dtypes.bfloat16 else x


CASES = [
    # dtype, kv_heads, group, head_dim, page_size, options, sinks
    ("f32", 2, 4, 64, 16, {}, False),
    ("f32", 1, 8, 128, 32, {"sliding_window": 24, "scale": 0.3}, True),
    ("bf16", 2, 4, 128, 16, {"logit_soft_cap": 5.0}, False),
    ("bf16", 4, 2, 64, 64, {"sliding_window": 9, "logit_soft_cap": 20.0}, True),
    ("bf16", 2, 4, 64, 16, {"out_dtype": "f32"}, False),
    ("f16", 2, 1, 64, 32, {}, True),
]


@pytest.mark.parametrize("return_lse", [False, True])
@pytest.mark.parametrize("dtype,kv_heads,group,head_dim,page_size,options,sinks", CASES)
def test_same_bits_as_rpa_attention(dtype, kv_heads, group, head_dim, page_size, options, sinks,
                                    return_lse):
    b = make_batch(21, MIXED, kv_heads, group, head_dim, page_size, dtype, sinks=sinks)
    want = rpa.attention(**b, dtype=dtype, return_lse=return_lse, **options)
    got = call(**as_jax(b), return_lse=return_lse, **options)
    if not return_lse:
        want, got = (want,), (got,)
    for w, g in zip(want, got):
        assert g.shape == w.shape
        np.testing.assert_array_equal(bits(g), w)


def kv_pages_of(b):
    k, v = b["k_cache"], b["v_cache"]
    kv = np.empty(k.shape[:2] + (2 * k.shape[2], k.shape[3]), k.dtype)
    kv[:, :, 0::2], kv[:, :, 1::2] = k, v
    return kv


def test_combined_cache_same_bits_and_read_in_place():
    b = make_batch(22, MIXED, kv_heads=2, group=4, dtype="bf16")
    j = as_jax(b)
    kv_pages = jnp.asarray(kv_pages_of(b).view(ml_dtypes.bfloat16))
    args = (j["q"], kv_pages, None, j["block_table"], j["seq_lens"], j["query_start_len"])
    np.testing.assert_array_equal(bits(call(*args)), rpa.attention(**b, dtype="bf16"))
    # Nothing but the custom call runs: no slice, copy or transpose of kv_pages.
    hlo = jax.jit(rpa.jax.ragged_paged_attention).lower(*args).compile().as_text()
    entry = hlo[hlo.index("ENTRY"):]
    ops = [line for line in entry.splitlines() if " = " in line and "parameter(" not in line]
    assert len(ops) == 1 and 'custom_call_target="rpa_ragged_paged_attention"' in ops[0], ops
    assert "combined_kv = true" in ops[0]


def test_jax_layout_q_and_lse():
    b = make_batch(23, MIXED, kv_heads=2, group=4, sinks=True)
    j = as_jax(b)
    tokens = b["q"].shape[0]
    q3 = j["q"].reshape(tokens, 8, 64)
    kv_pages = jnp.asarray(kv_pages_of(b))
    out, lse = call(q3, kv_pages, None, j["block_table"], j["seq_lens"], j["query_start_len"],
                    sinks=j["sinks"], return_lse=True)
    want_out, want_lse = rpa.attention(**b, return_lse=True)
    assert out.shape == (tokens, 8, 64) and lse.shape == (tokens, 8)
    np.testing.assert_array_equal(np.asarray(out), want_out.reshape(tokens, 8, 64))
    np.testing.assert_array_equal(np.asarray(lse), want_lse.reshape(tokens, 8))


def test_q_heads_must_divide():
    b = as_jax(make_batch(23, MIXED, kv_heads=2, group=4))
    q3 = b["q"].reshape(b["q"].shape[0], 8, 64)[:, :7]
    with pytest.raises(ValueError, match=r"q has 7 heads \(dimension 1\), which is not a multiple"):
        rpa.jax.ragged_paged_attention(q3, b["k_cache"], b["v_cache"], b["block_table"],
                                       b["seq_lens"], b["query_start_len"])


def test_num_seqs_makes_later_slots_inactive():
    b = make_batch(24, MIXED)
    j = as_jax(b)
    # Past num_seqs JAX's callers leave anything, even lengths that break the contract.
    garbage = dict(j, seq_lens=j["seq_lens"].at[4:].set(-7),
                   query_start_len=j["query_start_len"].at[5:].set(0))
    got = call(**garbage, num_seqs=jnp.array([4], jnp.int32))
    b["seq_lens"][4:] = 0
    b["query_start_len"][5:] = b["query_start_len"][4]
    np.testing.assert_array_equal(np.asarray(got), rpa.attention(**b))


def test_rows_of_no_live_slot_are_zero():
    b = make_batch(25, [(3, 10), (4, 0), (1, 20)], padding=6)
    b["seq_lens"][1] = 0  # a slot with query rows but no keys is inactive: its rows too
    got = np.asarray(call(**as_jax(b)))
    rows = live_rows(b)
    assert not got[3:7].any() and not got[rows:].any()
    assert np.isfinite(got[:3]).all() and got[7:rows].any()


def test_fp8_caches_same_bits():
    b = make_batch(26, MIXED, dtype="bf16")
    codes = {}
    for name in ("k_cache", "v_cache"):
        values = b[name].view(ml_dtypes.bfloat16).astype(np.float32) / 0.25
        codes[name] = values.astype(ml_dtypes.float8_e4m3fn)
    scales = np.array([0.25], np.float32)
    want = rpa.attention(**dict(b, **codes), dtype="bf16", k_scale=scales, v_scale=scales)
    got = call(**as_jax(dict(b, **codes)), k_scale=jnp.asarray(scales),
               v_scale=jnp.asarray(scales))
    np.testing.assert_array_equal(bits(got), want)


def test_vmap_runs_each_batch():
    b = make_batch(27, MIXED)
    j = as_jax(b)
    q2 = jnp.stack([j["q"], -j["q"]])
    f = jax.vmap(lambda q: rpa.jax.ragged_paged_attention(
        q, j["k_cache"], j["v_cache"], j["block_table"], j["seq_lens"], j["query_start_len"]))
    got = np.asarray(jax.jit(f)(q2))
    np.testing.assert_array_equal(got[0], rpa.attention(**b))
    np.testing.assert_array_equal(got[1], rpa.attention(**dict(b, q=-b["q"])))


# ---- errors -----------------------------------------------------------------
# XLA reports a failed custom call with its status code and message. Which
# exception carries it depends on the JAX version and the path: a
# JaxRuntimeError (a RuntimeError), or the ValueError / NotImplementedError
# that recent JAX maps INVALID_ARGUMENT / UNIMPLEMENTED to.
INVALID = (ValueError, RuntimeError)
UNIMPLEMENTED = (NotImplementedError, RuntimeError)


def run(args, **options):
    return np.asarray(call(**args, **options))


def test_contract_errors_carry_rpas_message():
    b = as_jax(make_batch(3, [(1, 40), (0, 0), (7, 33)]))
    with pytest.raises(INVALID, match=r"INVALID_ARGUMENT: rpa_ragged_paged_attention: "
                                      r"block_table\[2, 1\] = -1 is inside the live range of "
                                      r"slot 2 \(seq_len 40, page_size 16\)"):
        run(dict(b, block_table=b["block_table"].at[2, 1].set(-1)))
    with pytest.raises(INVALID, match=r"seq_lens\[0\] = -5"):
        run(dict(b, seq_lens=b["seq_lens"].at[0].set(-5)))
    with pytest.raises(INVALID, match=r"sliding_window"):
        run(b, sliding_window=-3)
    with pytest.raises(INVALID, match=r"block_table"):
        run(dict(b, block_table=b["block_table"].astype(jnp.float32)))


def test_unsupported_call_is_not_implemented():
    b = as_jax(make_batch(3, [(1, 40), (7, 33)], head_dim=72))
    with pytest.raises(UNIMPLEMENTED, match=r"UNIMPLEMENTED: .*q.shape\[3\] = 72"):
        run(b)


def test_element_type_rpa_does_not_take():
    b = as_jax(make_batch(3, [(1, 40), (7, 33)]))
    e5m2 = b["k_cache"].astype(jnp.float8_e5m2)
    with pytest.raises(INVALID, match=r"k_cache has element type f8e5m2; rpa takes f32"):
        run(dict(b, k_cache=e5m2, v_cache=e5m2), k_scale=1.0, v_scale=1.0)


def raw_call(operands, results=1, **attributes):
    """The custom call as a StableHLO producer would emit it, without rpa.jax."""
    q = operands[0]
    shapes = [jax.ShapeDtypeStruct(q.shape, q.dtype)] * results
    return ffi.ffi_call(rpa.jax.TARGET_NAME, shapes)(*operands, **attributes)


def test_custom_call_checks_its_frame():
    b = as_jax(make_batch(3, [(1, 40), (7, 33)]))
    operands = [b[n] for n in ("q", "k_cache", "v_cache", "block_table", "seq_lens",
                               "query_start_len")]
    np.testing.assert_array_equal(np.asarray(raw_call(operands)[0]), run(b))
    # Older XLA FFI headers (jaxlib 0.6) cannot list attribute names.
    with pytest.raises(INVALID, match=r"(unknown attribute window|an unknown attribute); "
                                      r"rpa_ragged_paged_attention takes scale, sliding_window"):
        np.asarray(raw_call(operands, window=np.int32(4))[0])
    with pytest.raises(INVALID, match=r"attribute scale must be an f32 \(or f64\) scalar"):
        np.asarray(raw_call(operands, scale=np.int32(1))[0])
    with pytest.raises(INVALID, match=r"got 5 operands; with combined_kv=false, "
                                      r"has_sinks=false, has_kv_scales=false it takes 6: q, "
                                      r"k_cache, v_cache, block_table"):
        np.asarray(raw_call(operands[:5])[0])
    with pytest.raises(INVALID, match=r"has 3 results; it returns out, or out and lse"):
        np.asarray(raw_call(operands, results=3)[0])
    with pytest.raises(INVALID, match=r"kv_pages has 3 combined heads \(dimension 2\)"):
        odd = b["k_cache"][:, :, :1].repeat(3, axis=2)
        np.asarray(raw_call([operands[0], odd] + operands[3:], combined_kv=True)[0])
    # i64 and f64 attributes, as StableHLO text often has them, are taken.
    wide = raw_call(operands, sliding_window=np.int64(9), scale=np.float64(0.25))
    np.testing.assert_array_equal(np.asarray(wide[0]), run(b, sliding_window=9, scale=0.25))


def test_library_and_registration():
    assert rpa.xla_library().endswith("librpa_xla.so")
    assert rpa.jax.cuda_registered == rpa.cuda_built

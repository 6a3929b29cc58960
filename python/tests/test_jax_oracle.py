"""rpa.jax against an outside oracle: JAX's own ref_ragged_paged_attention
(jax.experimental.pallas.ops.tpu.ragged_paged_attention, plain jnp, runs on
CPU), on batches from rpa's generator converted to its layout and on
batches shaped like JAX's own kernel tests. Its sm_scale defaults to 1.0
where rpa's scale defaults to 1/sqrt(head_dim), and it marks inactive slots
by num_seqs; both are passed explicitly here."""

import json
import math
import os
import subprocess

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("jax.experimental.pallas.ops.tpu.ragged_paged_attention")

import jax.numpy as jnp  # noqa: E402
from jax.experimental.pallas.ops.tpu.ragged_paged_attention import (  # noqa: E402
    ref_ragged_paged_attention,
)

import rpa  # noqa: E402
import rpa.jax  # noqa: E402
from jax_layout import from_rpa_batch, shaped_like_jax_tests  # noqa: E402
from rpa_reference import make_batch  # noqa: E402

# Max abs difference relative to max |expected|. The reference itself rounds:
# f32 einsums, and in bf16 it rounds the probabilities to bf16 before P.V.
TOLERANCE = {"f32": 5e-5, "bf16": 3e-2}

rpa_call = jax.jit(rpa.jax.ragged_paged_attention,
                   static_argnames=("scale", "sliding_window", "logit_soft_cap"))


def expected(j, scale, sliding_window=0, logit_soft_cap=0.0):
    return np.asarray(ref_ragged_paged_attention(
        jnp.asarray(j["queries"]), jnp.asarray(j["kv_pages"]), jnp.asarray(j["kv_lens"]),
        jnp.asarray(j["page_indices"]), jnp.asarray(j["cu_q_lens"]), jnp.asarray(j["num_seqs"]),
        sm_scale=scale, sliding_window=sliding_window or None,
        soft_cap=logit_soft_cap or None), np.float64)


def ours(j, scale, sliding_window=0, logit_soft_cap=0.0):
    """rpa.jax on JAX's layout as it is: 3-d q, the combined cache, num_seqs."""
    out = rpa_call(jnp.asarray(j["queries"]), jnp.asarray(j["kv_pages"]), None,
                   jnp.asarray(j["page_indices"]), jnp.asarray(j["kv_lens"]),
                   jnp.asarray(j["cu_q_lens"]), num_seqs=jnp.asarray(j["num_seqs"]),
                   scale=scale, sliding_window=sliding_window, logit_soft_cap=logit_soft_cap)
    assert out.shape == j["queries"].shape and out.dtype == j["queries"].dtype
    return np.asarray(out, np.float64)


def assert_close(j, dtype, scale, **options):
    want = expected(j, scale, **options)
    got = ours(j, scale, **options)
    live = int(j["cu_q_lens"][j["num_seqs"][0]])
    assert want.shape[0] == live
    error = np.abs(got[:live] - want).max() / np.abs(want).max()
    assert error <= TOLERANCE[dtype], error
    assert not got[live:].any(), "rows past the live ones are zero"


# ---- batches from rpa's generator (`rpa gen`, the CLI) ----------------------

CLI = os.environ.get("RPA_CLI")
GENERATED = [
    # seed, dtype, kv_heads, heads_per_kv, head_dim, page_size, sliding_window, logit_soft_cap
    (1, "f32", 2, 4, 64, 16, 0, 0.0),
    (2, "bf16", 2, 4, 128, 16, 0, 0.0),
    (3, "f32", 1, 8, 128, 32, 37, 0.0),
    (4, "bf16", 4, 1, 64, 64, 0, 30.0),
    (5, "f32", 8, 4, 128, 16, 100, 50.0),
]


@pytest.mark.skipif(not CLI, reason="RPA_CLI (the rpa binary, for `rpa gen`) is not set")
@pytest.mark.parametrize("seed,dtype,kv_heads,group,head_dim,page_size,window,cap", GENERATED)
def test_generated_batches(tmp_path, seed, dtype, kv_heads, group, head_dim, page_size, window,
                           cap):
    case = tmp_path / "case"
    args = [CLI, "gen", "--out", case, "--npy", "--seed", seed, "--capacity", 12, "--active", 8,
            "--dtype", dtype, "--kv-heads", kv_heads, "--heads-per-kv", group, "--head-dim",
            head_dim, "--page-size", page_size, "--sliding-window", window,
            "--logit-soft-cap", cap]
    gen = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    assert gen.returncode == 0, gen.stderr
    b = {name: np.load(case / f"{name}.npy") for name in
         ("q", "k_cache", "v_cache", "block_table", "seq_lens", "query_start_len")}
    assert json.load(open(case / "options.json"))["sliding_window"] == window
    scale = 1 / math.sqrt(head_dim)
    assert_close(from_rpa_batch(b, dtype), dtype, scale, sliding_window=window,
                 logit_soft_cap=cap)


def test_make_batch_with_inactive_slots_between():
    b = make_batch(4, [(1, 40), (0, 0), (7, 33), (1, 1), (0, 0), (19, 0), (1, 70)])
    assert_close(from_rpa_batch(b, "f32"), "f32", 1 / 8)


# ---- batches shaped like JAX's own kernel tests -----------------------------

BASIC = [(192, 328), (128, 180), (64, 255)]
DECODE = [(1, 18), (1, 129), (1, 597), (1, 122), (1, 64), (1, 322), (1, 463), (1, 181),
          (1, 1107), (1, 123), (1, 31), (1, 18), (1, 1229), (1, 229), (1, 87), (1, 1328)]
MIXED = [(5, 18), (1, 129), (120, 597), (1, 122), (1, 64), (32, 322), (251, 463), (1, 181),
         (1, 1107), (99, 123), (1, 31), (5, 18), (3, 1229), (117, 229), (1, 87), (1, 1328)]


@pytest.mark.parametrize("dtype", ["f32", "bf16"])
@pytest.mark.parametrize("seq_lens", [BASIC, DECODE, MIXED], ids=["basic", "decode", "mixed"])
def test_like_jax_tests(dtype, seq_lens):
    j = shaped_like_jax_tests(1234, seq_lens, (32, 8), dtype=dtype)
    assert_close(j, dtype, 1.0)  # JAX's tests run with its default sm_scale of 1.0


@pytest.mark.parametrize("num_heads", [(32, 8), (32, 16), (16, 2), (4, 4), (8, 1)])
@pytest.mark.parametrize("num_seqs", [1, 5])
def test_like_jax_complex(num_heads, num_seqs):
    rng = np.random.default_rng(num_seqs)
    q_lens = rng.integers(1, 100, num_seqs)
    kv_lens = q_lens + rng.integers(0, 50, num_seqs)
    j = shaped_like_jax_tests(7, list(zip(q_lens.tolist(), kv_lens.tolist())), num_heads)
    assert_close(j, "f32", 1 / math.sqrt(128))


@pytest.mark.parametrize("sliding_window", [5, 128])
def test_like_jax_sliding_window(sliding_window):
    j = shaped_like_jax_tests(3, [(90, 130), (1, 77), (33, 33), (64, 100), (12, 50)], (4, 4))
    assert_close(j, "f32", 1.0, sliding_window=sliding_window)


@pytest.mark.parametrize("dtype", ["f32", "bf16"])
def test_like_jax_soft_cap(dtype):
    j = shaped_like_jax_tests(5, [(40, 90), (70, 80)], (16, 2), dtype=dtype)
    assert_close(j, dtype, 1.0, logit_soft_cap=50.0)


def test_pages_in_order_and_capacity_padding():
    j = shaped_like_jax_tests(9, BASIC, (32, 8), permute_pages=False, max_num_seq=16,
                              max_num_batched_tokens=700)
    assert_close(j, "f32", 0.1)


def test_fp8_cache_with_scales():
    """JAX's reference dequantizes with scalar k_scale and v_scale and rounds
    the result to q's dtype; rpa reads per-tensor [1] scales."""
    j = shaped_like_jax_tests(11, [(20, 60), (1, 300), (9, 9)], (8, 2), dtype="bf16")
    kv = jnp.asarray(j["kv_pages"]).astype(jnp.float8_e4m3fn)
    args = [jnp.asarray(j[n]) for n in ("kv_lens", "page_indices", "cu_q_lens", "num_seqs")]
    want = np.asarray(ref_ragged_paged_attention(
        jnp.asarray(j["queries"]), kv, *args, sm_scale=0.2, k_scale=0.5, v_scale=2.0),
        np.float64)
    got = rpa_call(jnp.asarray(j["queries"]), kv, None, jnp.asarray(j["page_indices"]),
                   jnp.asarray(j["kv_lens"]), jnp.asarray(j["cu_q_lens"]), num_seqs=args[3],
                   scale=0.2, k_scale=0.5, v_scale=2.0)
    got = np.asarray(got, np.float64)[:want.shape[0]]
    assert np.abs(got - want).max() / np.abs(want).max() <= TOLERANCE["bf16"]

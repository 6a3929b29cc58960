"""The NumPy model of the one-loop NKI kernel (rpa.neuron_model) against the
float64 reference, on ragged batches whose dead pages, page tails and
padding rows hold NaN, with the tables rpa.device_tables exports."""

import json
import os
import subprocess

import numpy as np
import pytest

import rpa
from rpa import neuron_model
from rpa_reference import decode, make_batch, reference


def check(b, dtype="f32", tol=2e-4, sliding_window=0, logit_soft_cap=0.0, **sizes):
    tables = rpa.device_tables(
        b["q"], b["k_cache"], b["v_cache"], b["block_table"], b["seq_lens"],
        b["query_start_len"], dtype=dtype if dtype == "bf16" else None,
        sliding_window=sliding_window, logit_soft_cap=logit_soft_cap, **sizes)
    h = tables["header"]
    assert h["num_rows"] <= h["max_rows"] and h["rows_per_core"] <= h["max_rows"]
    assert h["num_partial_rows"] <= h["max_partial_rows"]
    q, k, v = (decode(b[n], dtype).astype(np.float32) for n in ("q", "k_cache", "v_cache"))
    out, lse = neuron_model.run(tables, q, k, v, sliding_window=sliding_window,
                                logit_soft_cap=logit_soft_cap, sinks=b.get("sinks"))
    want_out, want_lse = reference(b, dtype, sliding_window=sliding_window,
                                   logit_soft_cap=logit_soft_cap)
    live = int(b["query_start_len"][-1])
    assert np.isfinite(out[:live]).all(), "a live row was not written or took a NaN"
    err = np.abs(out[:live] - want_out[:live]).max() / np.abs(want_out[:live]).max()
    assert err < tol, err
    np.testing.assert_allclose(lse[:live], want_lse[:live], rtol=tol, atol=tol)
    assert np.isnan(out[live:]).all(), "padding rows must never be written"
    return tables


def random_slots(rng, n, max_context=200, max_q=40):
    slots = []
    for _ in range(n):
        kind = rng.integers(4)
        if kind == 0:
            slots.append((0, 0))  # inactive
        elif kind == 1:
            slots.append((1, int(rng.integers(0, max_context))))  # decode
        elif kind == 2:
            slots.append((int(rng.integers(2, max_q)), int(rng.integers(0, max_context))))
        else:
            slots.append((int(rng.integers(2, max_q)), 0))  # fresh prompt
    if all(q == 0 for q, _ in slots):
        slots[0] = (3, 5)
    return slots


@pytest.mark.parametrize("seed", range(12))
def test_random_batches(seed):
    rng = np.random.default_rng(seed)
    page = [16, 4, 32][seed % 3]
    group = [4, 1, 8][seed % 3]
    b = make_batch(seed, random_slots(rng, 2 + seed % 5), kv_heads=1 + seed % 2, group=group,
                   head_dim=64, page_size=page, sinks=seed % 4 == 3)
    check(b, q_tile_rows=[4, 16, 3][seed % 3], kv_chunk_tokens=2 * page * (1 + seed % 2),
          split_tokens=4 * page * (1 + seed % 3), kv_heads_per_row=seed % 2,
          num_cores=1 + seed % 3, sliding_window=[0, 0, 37][seed % 3],
          logit_soft_cap=5.0 if seed % 4 == 1 else 0.0)


def test_decode_long_like():
    # Decode rows on long contexts in a mostly empty batch: many chunks per
    # chain, splits, and chains dealt to two cores.
    slots = [(1, 700), (0, 0), (0, 0), (1, 1023), (0, 0), (1, 300), (1, 64)]
    b = make_batch(5, slots, kv_heads=2, group=4, head_dim=128, page_size=16)
    tables = check(b, kv_chunk_tokens=128, split_tokens=256)
    h = tables["header"]
    assert h["num_merges"] > 0 and h["num_cores"] == 2
    # Longest-first dealing: the two cores' live rows differ by at most one chain.
    live = (tables["core_rows"][:, :, h["row_fields"].index("q_rows")] > 0).sum(axis=1)
    assert abs(int(live[0]) - int(live[1])) <= 2


def test_mixed_bf16_head_dim_256():
    # head_dim 256 needs two 128-partition contraction blocks per score tile.
    slots = [(1, 90), (17, 40), (0, 0), (30, 0), (1, 5)]
    b = make_batch(9, slots, kv_heads=2, group=2, head_dim=256, page_size=16, dtype="bf16")
    check(b, dtype="bf16", tol=2e-2, q_tile_rows=8, kv_chunk_tokens=32, split_tokens=64)


def test_device_default_sizes():
    # The device heuristics: 128 lanes per tile, a chunk near 8 MiB of K+V.
    slots = [(1, 150), (40, 20), (0, 0), (1, 3)]
    b = make_batch(2, slots, kv_heads=2, group=4, head_dim=64, page_size=16)
    tables = check(b)
    h = tables["header"]
    assert h["q_tile_rows"] == 32 and h["kv_chunk_tokens"] == 8192
    assert tables["rows"].dtype == np.int32 and tables["rows"].shape == (h["num_rows"], h["row_width"])


def test_stale_pages_are_masked_not_trusted():
    # Rows whose first page slots are -1 (a window starting mid-chunk) run
    # after rows that filled those slots: the stale data must be masked.
    slots = [(1, 500), (1, 480)]
    b = make_batch(3, slots, kv_heads=1, group=4, head_dim=64, page_size=16)
    tables = check(b, sliding_window=100, kv_chunk_tokens=64, split_tokens=64, num_cores=1)
    page_ids = tables["rows"][:, len(tables["header"]["row_fields"]):]
    assert (page_ids == -1).any()


def test_bad_config_names_the_value():
    b = make_batch(1, [(1, 10)], kv_heads=2)
    with pytest.raises(ValueError, match="kv_heads_per_row = 3"):
        rpa.device_tables(b["q"], b["k_cache"], b["v_cache"], b["block_table"], b["seq_lens"],
                          b["query_start_len"], kv_heads_per_row=3)


@pytest.mark.skipif(not os.environ.get("RPA_CLI"), reason="RPA_CLI (the rpa binary) is not set")
def test_cli_export_matches_its_header(tmp_path):
    # `rpa plan --export DIR`: int32 .npy tables whose shapes the header gives.
    run = subprocess.run([os.environ["RPA_CLI"], "plan", "--scenario", "decode-long", "--export",
                          str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    h = json.loads((tmp_path / "header.json").read_text())
    rows = np.load(tmp_path / "rows.npy")
    core_rows = np.load(tmp_path / "core_rows.npy")
    assert rows.dtype == np.int32 and rows.shape == (h["num_rows"], h["row_width"])
    assert core_rows.shape == (h["num_cores"], h["rows_per_core"], h["row_width"])
    assert h["num_rows"] <= h["max_rows"]
    assert np.load(tmp_path / "merges.npy").shape == (h["num_merges"], len(h["merge_fields"]))
    bad = subprocess.run([os.environ["RPA_CLI"], "plan", "--scenario", "nope", "--export",
                          str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode != 0 and "nope" in bad.stderr

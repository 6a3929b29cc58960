"""rpa.merge_states and rpa.write_kv."""

import numpy as np
import pytest

import rpa
from rpa_reference import from_bf16_bits, live_rows, make_batch, reference, to_bf16_bits

MIXED = [(1, 40), (0, 0), (7, 33), (12, 0)]


def test_merge_of_two_key_halves_is_attention_over_all():
    # One decode row over 64 keys, split as flash-decoding would: the same row
    # attends to keys [0, 32) (the first two pages) and to keys [32, 64) (the
    # block table shifted by two pages), and the merge is the whole.
    whole = make_batch(1, [(1, 63)], kv_heads=1, group=2, padding=0)
    halves = [dict(whole, seq_lens=np.array([32], np.int32)),
              dict(whole, seq_lens=np.array([32], np.int32),
                   block_table=np.roll(whole["block_table"], -2, axis=1))]
    (out_a, lse_a), (out_b, lse_b) = (rpa.attention(**h, return_lse=True) for h in halves)
    out, lse = rpa.merge_states(out_a, lse_a, out_b, lse_b)
    want, want_lse = reference(whole)
    np.testing.assert_allclose(out, want, atol=1e-5)
    np.testing.assert_allclose(lse, want_lse, atol=1e-5)


def test_merge_with_an_empty_part_changes_nothing():
    b = make_batch(2, MIXED)
    out, lse = rpa.attention(**b, return_lse=True)
    empty_lse = np.full_like(lse, -np.inf)
    merged, merged_lse = rpa.merge_states(out, lse, np.zeros_like(out), empty_lse)
    rows = live_rows(b)
    np.testing.assert_allclose(merged[:rows], out[:rows], atol=1e-6)
    np.testing.assert_allclose(merged_lse[:rows], lse[:rows], atol=1e-6)
    assert not np.isnan(merged).any()


def test_merge_bf16_with_f32_out():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(-1, 1, (2, 5, 64)).astype(np.float32)
    la, lb = rng.uniform(-1, 1, (2, 5)).astype(np.float32)
    out, lse = rpa.merge_states(to_bf16_bits(a), la, to_bf16_bits(b), lb, dtype="bf16",
                                out_dtype="f32")
    assert out.dtype == np.float32
    wa, wb = 1 / (1 + np.exp(lb - la)), 1 / (1 + np.exp(la - lb))
    want = wa[:, None] * from_bf16_bits(to_bf16_bits(a)) + wb[:, None] * from_bf16_bits(
        to_bf16_bits(b))
    np.testing.assert_allclose(out, want, atol=1e-6)
    np.testing.assert_allclose(lse, np.logaddexp(la, lb), atol=1e-6)


def test_merge_errors():
    a = np.zeros((3, 64), np.float32)
    with pytest.raises(ValueError, match=r"lse_b.shape\[0\] = 4"):
        rpa.merge_states(a, np.zeros(3, np.float32), a, np.zeros(4, np.float32))


def test_write_kv_in_place():
    k_cache = np.zeros((3, 16, 2, 64), np.float32)
    v_cache = np.zeros_like(k_cache)
    rng = np.random.default_rng(4)
    k_new, v_new = rng.uniform(-1, 1, (2, 3, 2, 64)).astype(np.float32)
    slots = np.array([16 + 5, -1, 2 * 16 + 15], np.int32)
    rpa.write_kv(k_new, v_new, slots, k_cache, v_cache)
    np.testing.assert_array_equal(k_cache[1, 5], k_new[0])
    np.testing.assert_array_equal(v_cache[2, 15], v_new[2])
    assert np.count_nonzero(k_cache.any(axis=(2, 3))) == 2


def test_write_kv_errors_write_nothing():
    k_cache = np.zeros((3, 16, 2, 64), np.float32)
    v_cache = np.zeros_like(k_cache)
    k_new = np.ones((2, 2, 64), np.float32)
    with pytest.raises(ValueError, match=r"slot_mapping\[1\]"):
        rpa.write_kv(k_new, k_new, np.array([3, 48], np.int32), k_cache, v_cache)
    assert not k_cache.any()
    k_cache.setflags(write=False)
    with pytest.raises(ValueError, match=r"k_cache is a read-only array"):
        rpa.write_kv(k_new, k_new, np.array([3, 4], np.int32), k_cache, v_cache)

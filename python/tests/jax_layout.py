"""Batches in the layout of JAX's ragged paged attention kernel
(jax.experimental.pallas.ops.tpu.ragged_paged_attention): q [tokens, q_heads,
head_dim], one kv_pages [pages, page_size, 2 * kv_heads, head_dim] with K in
the even heads and V in the odd ones, and num_seqs marking the live slots.
Written from that kernel's documented signature, for the oracle tests."""

import math

import ml_dtypes
import numpy as np

JAX_DTYPES = {"f32": np.float32, "bf16": ml_dtypes.bfloat16}


def from_rpa_batch(b, dtype):
    """An rpa batch (make_batch, or an `rpa gen` case) in JAX's layout. Every
    slot counts (num_seqs = capacity): rpa's inactive slots, anywhere, have no
    query rows or no keys, which the reference also handles."""
    q, k, v = (as_float(b[name], dtype) for name in ("q", "k_cache", "v_cache"))
    tokens, kv_heads, group, head_dim = q.shape
    kv_pages = np.empty(k.shape[:2] + (2 * kv_heads, head_dim), k.dtype)
    kv_pages[:, :, 0::2] = k
    kv_pages[:, :, 1::2] = v
    return dict(
        queries=q.reshape(tokens, kv_heads * group, head_dim), kv_pages=kv_pages,
        kv_lens=b["seq_lens"], page_indices=b["block_table"], cu_q_lens=b["query_start_len"],
        num_seqs=np.array([len(b["seq_lens"])], np.int32))


def as_float(x, dtype):
    """rpa's storage (bf16 as uint16 bits) as the typed array JAX takes."""
    return x.view(ml_dtypes.bfloat16) if dtype == "bf16" else x


def shaped_like_jax_tests(seed, seq_lens, num_heads, head_dim=128, page_size=16, dtype="f32",
                          num_pages=1000, max_num_batched_tokens=512, max_num_seq=8,
                          permute_pages=True):
    """A batch built the way JAX's own kernel tests build theirs: seq_lens is a
    list of (q_len, kv_len); normal q and K/V; NaN in the tail of each last
    page and in unused pages; garbage in page_indices past each slot's pages
    and in padded slots; cu_q_lens and kv_lens zero-padded past num_seqs.
    Unlike those tests, pages are permuted through the pool by default."""
    rng = np.random.default_rng(seed)
    q_heads, kv_heads = num_heads
    tokens = max(sum(q for q, _ in seq_lens), max_num_batched_tokens)
    slots = max(len(seq_lens), max_num_seq)
    pages_per_seq = max(math.ceil(kv / page_size) for _, kv in seq_lens)
    store = JAX_DTYPES[dtype]
    queries = rng.standard_normal((tokens, q_heads, head_dim), np.float32).astype(store)
    kv_pages = np.full((num_pages, page_size, 2 * kv_heads, head_dim), np.nan, store)
    pool = rng.permutation(num_pages) if permute_pages else np.arange(num_pages)
    page_indices = rng.integers(-2**31, 2**31 - 1, (slots, pages_per_seq)).astype(np.int32)
    used = 0
    for s, (_, kv_len) in enumerate(seq_lens):
        for p in range(math.ceil(kv_len / page_size)):
            page = pool[used]
            used += 1
            page_indices[s, p] = page
            live = min(page_size, kv_len - p * page_size)
            kv_pages[page, :live] = rng.standard_normal((live, 2 * kv_heads, head_dim))
    cu_q_lens = np.zeros(slots + 1, np.int32)
    cu_q_lens[1:len(seq_lens) + 1] = np.cumsum([q for q, _ in seq_lens])
    kv_lens = np.zeros(slots, np.int32)
    kv_lens[:len(seq_lens)] = [kv for _, kv in seq_lens]
    return dict(queries=queries, kv_pages=kv_pages, kv_lens=kv_lens, page_indices=page_indices,
                cu_q_lens=cu_q_lens, num_seqs=np.array([len(seq_lens)], np.int32))

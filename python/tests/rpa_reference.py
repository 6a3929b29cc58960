"""NumPy helpers for the rpa tests: bf16 bit conversion, a ragged paged batch
builder, and a float64 reference implementation written from docs/contract.md §1-§2."""

import math

import numpy as np


def to_bf16_bits(x):
    """float32 -> bf16 bits (uint16), round to nearest even."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def from_bf16_bits(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def storage(x, dtype):
    """float32 values in the storage format rpa takes for `dtype`."""
    if dtype == "bf16":
        return to_bf16_bits(x)
    return np.asarray(x, dtype={"f32": np.float32, "f16": np.float16}[dtype])


def decode(x, dtype):
    """Storage back to float64, exactly as rpa reads it."""
    if dtype == "bf16":
        return from_bf16_bits(x).astype(np.float64)
    return np.asarray(x, dtype=np.float64)


def make_batch(seed, slots, kv_heads=2, group=4, head_dim=64, page_size=16, dtype="f32",
               padding=2, spare_pages=3, sinks=False):
    """A ragged batch: `slots` is a list of (q_len, context_len); (0, 0) is an
    inactive slot. Pages are permuted through a pool with spare pages, dead
    K/V slots and spare pages hold NaN, dead block_table entries hold -1."""
    rng = np.random.default_rng(seed)
    batch = len(slots)
    seq_lens = np.array([q + c if q > 0 else 0 for q, c in slots], dtype=np.int32)
    q_lens = np.array([q for q, _ in slots], dtype=np.int32)
    query_start_len = np.concatenate([[0], np.cumsum(q_lens)]).astype(np.int32)
    pages_needed = [math.ceil(s / page_size) for s in seq_lens]
    max_pages = max(pages_needed + [1]) + 1
    num_pages = sum(pages_needed) + spare_pages
    pool = rng.permutation(num_pages)
    block_table = np.full((batch, max_pages), -1, dtype=np.int32)
    k = np.full((num_pages, page_size, kv_heads, head_dim), np.nan, dtype=np.float32)
    v = np.full_like(k, np.nan)
    used = 0
    for s in range(batch):
        for p in range(pages_needed[s]):
            page = pool[used]
            used += 1
            block_table[s, p] = page
            live = min(page_size, seq_lens[s] - p * page_size)
            k[page, :live] = rng.uniform(-1, 1, (live, kv_heads, head_dim))
            v[page, :live] = rng.uniform(-1, 1, (live, kv_heads, head_dim))
    tokens = int(query_start_len[-1]) + padding
    q = rng.uniform(-1, 1, (tokens, kv_heads, group, head_dim)).astype(np.float32)
    q[int(query_start_len[-1]):] = np.nan
    result = dict(
        q=storage(q, dtype), k_cache=storage(k, dtype), v_cache=storage(v, dtype),
        block_table=block_table, seq_lens=seq_lens, query_start_len=query_start_len)
    if sinks:
        result["sinks"] = rng.uniform(-2, 2, kv_heads * group).astype(np.float32)
    return result


def reference(b, dtype="f32", scale=None, sliding_window=0, logit_soft_cap=0.0):
    """out and lse in float64 for the live rows (zero elsewhere)."""
    q, k, v = (decode(b[name], dtype) for name in ("q", "k_cache", "v_cache"))
    tokens, heads, group, dim = q.shape
    page_size = k.shape[1]
    scale = 1.0 / math.sqrt(dim) if scale is None else scale
    sinks = b.get("sinks")
    out = np.zeros(q.shape)
    lse = np.zeros(q.shape[:3])
    for s, seq_len in enumerate(b["seq_lens"]):
        start, end = b["query_start_len"][s], b["query_start_len"][s + 1]
        if seq_len == 0 or end == start:
            continue
        pages = b["block_table"][s, : math.ceil(seq_len / page_size)]
        keys = k[pages].reshape(-1, heads, dim)[:seq_len]
        values = v[pages].reshape(-1, heads, dim)[:seq_len]
        context = seq_len - (end - start)
        for i in range(end - start):
            pos = context + i
            lo = max(0, pos - sliding_window + 1) if sliding_window else 0
            logits = np.einsum("hgd,khd->hgk", q[start + i], keys[lo:pos + 1]) * scale
            if logit_soft_cap:
                logits = logit_soft_cap * np.tanh(logits / logit_soft_cap)
            m = logits.max(axis=-1)
            if sinks is not None:
                m = np.maximum(m, sinks.reshape(heads, group))
            p = np.exp(logits - m[..., None])
            denominator = p.sum(axis=-1)
            if sinks is not None:
                denominator += np.exp(sinks.reshape(heads, group) - m)
            out[start + i] = np.einsum("hgk,khd->hgd", p, values[lo:pos + 1]) / denominator[..., None]
            lse[start + i] = m + np.log(denominator)
    return out, lse


# docs/contract.md §5: max abs error relative to max |out|.
TOLERANCE = {"f32": 2e-5, "bf16": 2e-2, "f16": 5e-3}


def live_rows(b):
    return int(b["query_start_len"][-1])

"""A NumPy model of the one-loop NKI kernel that runs rpa's device tables.

This is the spec a kernel writer transliterates (docs/neuron.md). It reads
ONLY the tables of rpa.device_tables (plus q, the caches and the options),
and does only what an NKI kernel body can do:

* one loop over the rows of a core's table (the single nl.fori_loop), every
  core running the same trip count; a second loop over the merge rows;
* whole pages gathered by id, where a -1 id moves nothing and leaves the
  destination stale (the buffers start poisoned with NaN to prove it);
* matmuls only in Tensor Engine shapes: contraction <= 128 partitions,
  stationary free size <= 128, moving free size <= 512, fp32 results;
* masks computed from row scalars and an iota, applied with selects;
* reset and flush predicated by row flags (selects and skipped stores),
  never a branch on data, and no per-key skipping;
* NaN-safe: masked scores are replaced (not multiplied) and V rows outside
  the row's keys are selected to 0 before P.V, so 0 * NaN never happens.

Python `for` loops over static sizes stand for loops the NKI tracer unrolls.
"""

import math

import numpy as np

PARTITIONS = 128   # SBUF/PSUM partitions: contraction and stationary free size
MOVING_FREE = 512  # largest moving free size of one nc_matmul (a PSUM bank of fp32)
NEG_BIG = np.float32(-1.0e30)  # finite max identity: exp(m_old - m_new) never sees -inf - -inf

RESET, FLUSH, NEEDS_MASK = 1, 2, 4


def matmul(stationary, moving):
    """nki.isa.nc_matmul: stationary [K, M] and moving [K, N] -> [M, N] in fp32."""
    k, m = stationary.shape
    k2, n = moving.shape
    assert k == k2 and k <= PARTITIONS and m <= PARTITIONS and n <= MOVING_FREE, (k, m, n)
    return stationary.astype(np.float32).T @ moving.astype(np.float32)


def transpose(x):
    """nki.isa.nc_transpose on the Tensor Engine: at most 128 x 128."""
    assert x.shape[0] <= PARTITIONS and x.shape[1] <= PARTITIONS, x.shape
    return np.ascontiguousarray(x.T)


def gather(dst, src, ids):
    """An indirect DMA with skip semantics: dst[i] = src[ids[i]] where
    ids[i] >= 0; a -1 moves nothing, so dst[i] keeps whatever it held."""
    live = ids >= 0
    dst[live] = src[ids[live]]


def scatter(dst, ids, values):
    """The store side: rows with a -1 index are dropped (oob skip)."""
    live = ids >= 0
    dst[ids[live]] = values[live]


class _Fields:
    def __init__(self, header, table):
        for i, name in enumerate(header[table]):
            setattr(self, name, i)


def _with_sinks(m, l, o, sink):
    """Adds the sink logit to the denominator: rescales to max(m, sink)."""
    if sink is None:
        return m, l, o
    m2 = np.maximum(m, sink)
    a = np.exp(m - m2)
    return m2, l * a + np.exp(sink - m2), o * a[..., None]


def run(tables, q, k_cache, v_cache, *, scale=None, sliding_window=0, logit_soft_cap=0.0,
        sinks=None):
    """out [num_tokens, num_kv_heads, heads_per_kv, head_dim] and lse
    [num_tokens, num_kv_heads, heads_per_kv] in float32; rows no table row
    writes stay NaN (the kernel never touches them). q, k_cache, v_cache are
    float arrays (decode bf16 bits first)."""
    h = tables["header"]
    f = _Fields(h, "row_fields")
    mf = _Fields(h, "merge_fields")
    tokens, kv_heads, group, dim = q.shape
    page = k_cache.shape[1]
    heads = h["kv_heads_per_row"]      # kv heads one row covers (static)
    rows = h["q_tile_rows"]            # query rows of a tile (static)
    lanes = rows * group
    pages = h["pages_per_row"]
    chunk = pages * page
    assert lanes <= PARTITIONS, f"{rows} rows x {group} heads exceed {PARTITIONS} partitions"
    scale = np.float32(1.0 / math.sqrt(dim) if scale is None else scale)
    sink = None if sinks is None else np.asarray(sinks, np.float32).reshape(kv_heads, group)

    out = np.full(q.shape, np.nan, np.float32)
    lse = np.full(q.shape[:3], np.nan, np.float32)
    # Split partials in HBM, sized by the static bound: per row, lane (h, g):
    # m, l, o[dim].
    partial = np.full((max(h["max_partial_rows"], 1), heads, group, dim + 2), np.nan, np.float32)

    lane_row = np.arange(lanes) // group   # lane -> tile row (iota on partitions)
    key_of = np.arange(chunk)              # token -> offset in the chunk (iota on the free axis)

    for core in range(h["num_cores"]):     # the cores run in parallel; each its own loop
        table = tables["core_rows"][core]
        # SBUF buffers at fixed addresses, poisoned: stale data must never matter.
        k_buf = np.full((pages, page, heads, dim), np.nan, np.float32)
        v_buf = np.full_like(k_buf, np.nan)
        q_buf = np.full((rows, heads, group, dim), np.nan, np.float32)
        m = np.full((heads, lanes), np.nan, np.float32)
        l = np.full((heads, lanes), np.nan, np.float32)
        o = np.full((heads, lanes, dim), np.nan, np.float32)

        for i in range(h["rows_per_core"]):  # THE runtime loop (nl.fori_loop)
            r = table[i]
            h0, q_row, q_rows, q_pos = r[f.kv_head], r[f.q_row], r[f.q_rows], r[f.q_pos]
            kv_begin, kv_end, kv_base, flags = r[f.kv_begin], r[f.kv_end], r[f.kv_base], r[f.flags]
            reset, flush, use_mask = bool(flags & RESET), bool(flags & FLUSH), bool(flags & NEEDS_MASK)
            page_ids = r[len(h["row_fields"]):]

            q_ids = np.where(np.arange(rows) < q_rows, q_row + np.arange(rows), -1)
            gather(q_buf, q[:, h0:h0 + heads], q_ids)
            gather(k_buf, k_cache[:, :, h0:h0 + heads], page_ids)
            gather(v_buf, v_cache[:, :, h0:h0 + heads], page_ids)
            k_tok = k_buf.reshape(chunk, heads, dim)
            v_tok = v_buf.reshape(chunk, heads, dim)

            # Predicated reset: selects, whatever the state held.
            m = np.where(reset, NEG_BIG, m)
            l = np.where(reset, np.float32(0), l)
            o = np.where(reset, np.float32(0), o)

            # Masks from the row scalars: per key, and per (lane, key).
            key = kv_base + key_of
            key_ok = (key >= kv_begin) & (key < kv_end)
            pos = q_pos + lane_row
            visible = key_ok[None, :] & (key[None, :] <= pos[:, None])
            if sliding_window > 0:
                visible &= key[None, :] > (pos - sliding_window)[:, None]
            visible &= (lane_row < q_rows)[:, None]
            visible = np.where(use_mask, visible, True)  # interior rows: the mask is predicated off
            v_sel = np.where(key_ok[:, None, None], v_tok, np.float32(0))

            for hh in range(heads):          # static: kv heads of the row
                q_lanes = q_buf[:, hh].reshape(lanes, dim)
                s = np.zeros((lanes, chunk), np.float32)
                for kb in range(0, chunk, MOVING_FREE):
                    for db in range(0, dim, PARTITIONS):  # contraction blocks, fp32 accumulation
                        s[:, kb:kb + MOVING_FREE] += matmul(
                            transpose(q_lanes[:, db:db + PARTITIONS]),
                            k_tok[kb:kb + MOVING_FREE, hh, db:db + PARTITIONS].T)
                s *= scale
                if logit_soft_cap:
                    s = np.float32(logit_soft_cap) * np.tanh(s / np.float32(logit_soft_cap))
                s = np.where(visible, s, NEG_BIG)
                m_new = np.maximum(m[hh], s.max(axis=1))
                p = np.where(visible, np.exp(s - m_new[:, None]), np.float32(0))
                alpha = np.exp(m[hh] - m_new)
                pv = np.zeros((lanes, dim), np.float32)
                for kb in range(0, chunk, PARTITIONS):
                    pv += matmul(transpose(p[:, kb:kb + PARTITIONS]),
                                 v_sel[kb:kb + PARTITIONS, hh])
                l[hh] = alpha * l[hh] + p.sum(axis=1)
                o[hh] = alpha[:, None] * o[hh] + pv
                m[hh] = m_new

            # Predicated flush: stores whose row index is -1 move nothing.
            live = (np.arange(rows) < q_rows) & flush
            to_out = np.where(live & (r[f.partial] < 0), q_row + np.arange(rows), -1)
            to_partial = np.where(live & (r[f.partial] >= 0), r[f.partial] + np.arange(rows), -1)
            state = np.concatenate([m[..., None], l[..., None], o], axis=-1)  # [heads, lanes, dim+2]
            state = state.reshape(heads, rows, group, dim + 2).transpose(1, 0, 2, 3)
            scatter(partial, to_partial, state)
            mm, ll, oo = state[..., 0], state[..., 1], state[..., 2:]
            if sink is not None:
                mm, ll, oo = _with_sinks(mm, ll, oo, sink[h0:h0 + heads])
            safe_l = np.where(ll > 0, ll, np.float32(1))
            with np.errstate(divide="ignore", invalid="ignore"):
                scatter(out[:, h0:h0 + heads], to_out, oo / safe_l[..., None])
                scatter(lse[:, h0:h0 + heads], to_out, mm + np.log(safe_l))

    # The merge phase: after every core's rows (a barrier), one loop per core.
    for core in range(h["num_cores"]):
        table = tables["core_merges"][core]
        buf = np.full((rows, heads, group, dim + 2), np.nan, np.float32)
        mm = np.full((rows, heads, group), np.nan, np.float32)
        ll = np.full_like(mm, np.nan)
        oo = np.full((rows, heads, group, dim), np.nan, np.float32)
        for i in range(h["merges_per_core"]):  # the second runtime loop
            r = table[i]
            h0, q_row, q_rows, flags = r[mf.kv_head], r[mf.q_row], r[mf.q_rows], r[mf.flags]
            row_ids = np.arange(rows)
            gather(buf, partial, np.where(row_ids < q_rows, r[mf.partial] + row_ids, -1))
            mm = np.where(flags & RESET, NEG_BIG, mm)
            ll = np.where(flags & RESET, np.float32(0), ll)
            oo = np.where(flags & RESET, np.float32(0), oo)
            m_j, l_j, o_j = buf[..., 0], buf[..., 1], buf[..., 2:]
            m_new = np.maximum(mm, m_j)
            a, b = np.exp(mm - m_new), np.exp(m_j - m_new)
            ll = a * ll + b * l_j
            oo = a[..., None] * oo + b[..., None] * o_j
            mm = m_new
            to_out = np.where((row_ids < q_rows) & bool(flags & FLUSH), q_row + row_ids, -1)
            fm, fl, fo = mm, ll, oo
            if sink is not None:
                fm, fl, fo = _with_sinks(mm, ll, oo, sink[h0:h0 + heads])
            safe_l = np.where(fl > 0, fl, np.float32(1))
            with np.errstate(divide="ignore", invalid="ignore"):
                scatter(out[:, h0:h0 + heads], to_out, fo / safe_l[..., None])
                scatter(lse[:, h0:h0 + heads], to_out, fm + np.log(safe_l))
    return out, lse

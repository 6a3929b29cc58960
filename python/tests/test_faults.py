"""Memory that cannot be had is a RuntimeError naming the bytes wanted, and
nothing is written (docs/robustness.md): no MemoryError, no abort."""

import re

import numpy as np
import pytest

import rpa


def huge_allocations_fail():
    # With overcommit_memory = 1 a 1 TB allocation succeeds (and the run
    # would take hours): the property cannot be observed there.
    try:
        with open("/proc/sys/vm/overcommit_memory") as f:
            return f.read().strip() != "1"
    except OSError:
        return True


@pytest.mark.skipif(not huge_allocations_fail(), reason="huge allocations succeed here")
def test_huge_valid_batch_is_a_runtime_error_with_the_bytes():
    # One decode row at a 118M-token context with 65536 query heads: valid,
    # small inputs (every live block_table entry names page 0), but its
    # split-KV partials need about 1 TB.
    heads, dim, page, per_seq = 65536, 64, 128, 922_000
    q = np.ones((1, 1, heads, dim), np.float16)
    k = np.ones((1, page, 1, dim), np.float16)
    v = np.ones((1, page, 1, dim), np.float16)
    block_table = np.zeros((1, per_seq), np.int32)
    seq_lens = np.array([per_seq * page], np.int32)
    query_start_len = np.array([0, 1], np.int32)
    out = np.full((1, 1, heads, dim), 7.0, np.float16)
    with pytest.raises(RuntimeError, match=r"cannot allocate \d+ bytes") as error:
        rpa.attention(q, k, v, block_table, seq_lens, query_start_len, backend="cpu",
                      threads=1, out=out)
    wanted = int(re.search(r"cannot allocate (\d+) bytes", str(error.value)).group(1))
    assert wanted > 2**39
    assert np.all(out == 7.0)

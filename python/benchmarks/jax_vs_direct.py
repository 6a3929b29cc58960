#!/usr/bin/env python3
"""A jitted JAX program calling rpa (rpa.jax, the XLA custom call) against
the direct call (rpa.attention, straight into the C++ library) in the same
process, on the decode-long scenario of `rpa bench` (8 decode rows x 8192
keys in capacity 64, GQA 32/8, head_dim 128, bf16, pages of 16 permuted
through the pool). Three series run in turn, one call each per round, so
drift in the machine's load hits all alike:

  direct        rpa.attention on NumPy arrays (NumPy puts large arrays on
                transparent huge pages);
  direct-xla    rpa.attention on the JAX arrays' own buffers (DLPack, no
                copy): the same memory the jitted call reads;
  jitted        the jitted program on those JAX arrays.

jitted / direct-xla is what the JAX path itself costs; jitted / direct also
counts where the K/V pool lives: XLA's CPU allocator leaves it on 4 KiB
pages unless glibc is told to advise huge pages (docs/xla.md):

    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 \
        python python/benchmarks/jax_vs_direct.py [--rounds N] [--cli build/rpa]

--cli also prints `rpa bench decode-long`, the C++ tool's own figure.
"""

import argparse
import re
import statistics
import subprocess
import time

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

import rpa
import rpa.jax

KV_HEADS, GROUP, HEAD_DIM, PAGE_SIZE = 8, 4, 128, 16
LIVE, KEYS, CAPACITY = 8, 8192, 64


def decode_long(seed=2024):
    """rpa's arrays for the batch; bf16 as ml_dtypes.bfloat16."""
    rng = np.random.default_rng(seed)
    pages_per_slot = KEYS // PAGE_SIZE
    num_pages = LIVE * pages_per_slot + 8
    max_pages = pages_per_slot + 4
    pool = rng.permutation(num_pages)
    block_table = np.full((CAPACITY, max_pages), -1, np.int32)
    seq_lens = np.zeros(CAPACITY, np.int32)
    q_lens = np.zeros(CAPACITY, np.int32)
    for i in range(LIVE):
        slot = i * CAPACITY // LIVE
        block_table[slot, :pages_per_slot] = pool[i * pages_per_slot:(i + 1) * pages_per_slot]
        seq_lens[slot], q_lens[slot] = KEYS, 1
    shape = (num_pages, PAGE_SIZE, KV_HEADS, HEAD_DIM)
    bf16 = ml_dtypes.bfloat16
    k = rng.uniform(-1, 1, shape).astype(np.float32).astype(bf16)
    v = rng.uniform(-1, 1, shape).astype(np.float32).astype(bf16)
    q = rng.uniform(-1, 1, (LIVE, KV_HEADS, GROUP, HEAD_DIM)).astype(np.float32).astype(bf16)
    query_start_len = np.concatenate([[0], np.cumsum(q_lens)]).astype(np.int32)
    return dict(q=q, k_cache=k, v_cache=v, block_table=block_table, seq_lens=seq_lens,
                query_start_len=query_start_len)


def huge_page_share(address, size):
    """The fraction of [address, address + size) on transparent huge pages,
    from the AnonHugePages of the mappings it overlaps."""
    huge, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            span = re.match(r"([0-9a-f]+)-([0-9a-f]+) ", line)
            if span:
                low, high = int(span.group(1), 16), int(span.group(2), 16)
                inside = low < address + size and address < high
            elif inside and line.startswith("AnonHugePages:"):
                huge += int(line.split()[1]) * 1024
    return min(1.0, huge / size)


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cli_table(cli):
    return subprocess.run([cli, "bench", "decode-long"], capture_output=True, text=True,
                          check=True).stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--cli", help="the rpa binary: also run `rpa bench decode-long`")
    args = parser.parse_args()

    b = decode_long()
    on_device = {name: jnp.asarray(a) for name, a in b.items()}
    program = jax.jit(rpa.jax.ragged_paged_attention)
    series = {
        "direct": lambda: rpa.attention(**b),
        "direct-xla": lambda: rpa.attention(**on_device),
        "jitted": lambda: program(**on_device).block_until_ready(),
    }
    # bf16 out comes back from rpa.attention as uint16 bits.
    want = rpa.attention(**b)
    np.testing.assert_array_equal(np.asarray(program(**on_device)).view(np.uint16), want)
    np.testing.assert_array_equal(series["direct-xla"](), want)
    for _ in range(3):  # warm-up: compile, page in, thread pools
        for run in series.values():
            run()
    times = {name: [] for name in series}
    for _ in range(args.rounds):
        for name, run in series.items():
            times[name].append(timed(run))

    kv_bytes = LIVE * KEYS * KV_HEADS * HEAD_DIM * 2 * 2
    print(f"decode-long: {LIVE} rows x {KEYS} keys, capacity {CAPACITY}, GQA "
          f"{KV_HEADS * GROUP}/{KV_HEADS}, d{HEAD_DIM}, bf16; {args.rounds} rounds; "
          f"rpa {rpa.__version__}, jax {jax.__version__}")
    size = b["k_cache"].nbytes
    numpy_huge = huge_page_share(b["k_cache"].ctypes.data, size)
    xla_huge = huge_page_share(on_device["k_cache"].unsafe_buffer_pointer(), size)
    print(f"  k_cache on huge pages: NumPy's {numpy_huge:.0%}, XLA's {xla_huge:.0%}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:10s} median {median * 1e3:8.3f} ms  min {min(values) * 1e3:8.3f} ms  "
              f"({kv_bytes / median / 1e9:.1f} GB/s of K/V)")
    for base in ("direct-xla", "direct"):
        ratio = statistics.median(times["jitted"]) / statistics.median(times[base])
        ratio_min = min(times["jitted"]) / min(times[base])
        print(f"  jitted / {base}: {ratio:.3f} (medians), {ratio_min:.3f} (mins); target <= 1.05")
    if args.cli:
        print(f"{args.cli} bench decode-long:")
        print(cli_table(args.cli))


if __name__ == "__main__":
    main()

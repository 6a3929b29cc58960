#!/usr/bin/env python3
"""Times OpenVINO's CPU paged attention against rpa on rpa's bench scenarios.

OpenVINO's side is one ov.Model holding a single PagedAttentionExtension op
(the op OpenVINO GenAI and vLLM's OpenVINO backend put in every attention
layer), compiled for CPU with bf16 inference precision, a bf16 K/V cache, one
stream and --threads threads. Where the plugin has no bf16 cache (its AVX2
build asks for f32), --precision auto (the default) compiles it with f32
q/k/v, f32 cache and f32 inference precision instead and says so; the
values stay bf16-representable, so both sides read the same numbers, and rpa
keeps its bf16 scenarios (its bf16 cache is what it offers there), with
prefill-f32 (rpa all-f32, against OpenVINO's f32 prefill) added.

Its inputs are the token-packed q, k and v of the new rows, the paged key
and value caches, and the vLLM-style metadata: past_lens,
subsequence_begins, block_indices, block_indices_begins and max_context_len.
The cache's block size is the one the CPU plugin asks for: the third
dimension of the compiled model's key_cache input (32 for a bf16 cache with
OpenVINO 2026.x on x86), not rpa's 16. Each sequence's blocks are
a random permutation of the pool. The context keys and values are written
into the cache by this script (random, uniform in [-1, 1), rounded to bf16);
the new rows' k and v are written into the cache by the op itself, on every
call, as in serving.

rpa's side is `rpa bench SCENARIO --json --repeat N --threads T`: its median
`time_ms` and its `flops` for the scenario (useful flops: 4 * head_dim *
visible keys summed over live query rows and query heads, bench/workload.cc).
The script counts the same flops from its own shapes and says if they differ.

Scenarios (bench/scenarios.cc), all 32 query heads on 8 KV heads, head_dim
128, bf16, causal, scale 1/sqrt(128):
  prefill        one fresh 2048-token prompt
  prefill-chunk  512 new rows on 3584 tokens of context
  decode-long    8 decode rows, each seeing 8192 keys (8191 context + itself)
  prefill-f32    prefill with rpa all-f32 (default only when OpenVINO runs f32)

Before timing, OpenVINO's output is checked against a NumPy f32 reference on
a small mixed batch (a prompt, a chunk on context, decode rows, unowned cache
slots filled with garbage) on the same compiled model, and on a few rows of
every timed scenario. The reference is causal with query head h reading KV
head h // 4; the check also prints how far OpenVINO's output is from a
non-causal reference and from one with the other GQA head mapping, which
shows that it tells them apart.

Timing alternates: in each of --rounds rounds, for each scenario, OpenVINO
(warm-up calls, then the median of --repeat infer() calls) and then one rpa
bench run. The table gives both medians per round, OpenVINO/rpa per round and
useful GFLOP/s of each at its fastest round.

Usage (docs/benchmarks.md, "OpenVINO's paged attention, side by side"):
  python3 scripts/compare_openvino.py [--rounds 2] [--scenarios prefill ...]
      [--threads 2] [--rpa build/rpa] [--repeat 5] [--warmup 2] [--check-only]
      [--precision auto|bf16|f32]

Needs `pip install openvino` (which brings numpy). Writes no files.
"""

import argparse
import json
import math
import statistics
import subprocess
import sys
import time

NUM_HEADS, NUM_KV_HEADS, HEAD_DIM = 32, 8, 128
SCALE = 1.0 / math.sqrt(HEAD_DIM)
SEED = 2024

# name -> one (past_len, new_rows) per sequence, as bench/scenarios.cc builds them.
SCENARIOS = {
    "prefill": [(0, 2048)],
    "prefill-chunk": [(3584, 512)],
    "decode-long": [(8191, 1)] * 8,
    # rpa all-f32; OpenVINO as compiled (meant for --precision f32).
    "prefill-f32": [(0, 2048)],
}
DEFAULT_SCENARIOS = ["prefill", "prefill-chunk", "decode-long"]
# The correctness batch: a fresh prompt, a chunk on context, decode rows (one
# on a block boundary), a one-token prompt.
CHECK_SEQS = [(0, 37), (45, 20), (70, 1), (31, 1), (0, 1)]
CHECK_TOLERANCE = 2e-2  # relative to max |reference|; bf16 output rounds at ~4e-3


def fail(message, status=2):
    print(f"compare_openvino: {message}", file=sys.stderr)
    sys.exit(status)


def log(message):
    print(message, file=sys.stderr, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=2, help="alternation rounds (default 2)")
    p.add_argument("--scenarios", nargs="+", default=None,
                   help="scenarios, space- or comma-separated (default: "
                        + " ".join(DEFAULT_SCENARIOS) + ", and prefill-f32 when OpenVINO "
                        "runs f32)")
    p.add_argument("--threads", type=int, default=2,
                   help="OpenVINO's INFERENCE_NUM_THREADS and rpa's --threads (default 2)")
    p.add_argument("--rpa", default="build/rpa", help="the rpa executable (default build/rpa)")
    p.add_argument("--repeat", type=int, default=5,
                   help="timed infer() calls per OpenVINO series, and rpa bench --repeat "
                        "(default 5)")
    p.add_argument("--warmup", type=int, default=2,
                   help="untimed infer() calls before each OpenVINO series (default 2)")
    p.add_argument("--precision", choices=["auto", "bf16", "f32"], default="auto",
                   help="OpenVINO's q/k/v, cache and inference precision; auto = bf16, or "
                        "f32 where the plugin has no bf16 cache (default auto)")
    p.add_argument("--check-only", action="store_true",
                   help="compile, run the correctness checks and stop (rpa is not run)")
    args = p.parse_args(argv)
    args.default_scenarios = args.scenarios is None
    names = [n for item in (args.scenarios or DEFAULT_SCENARIOS) for n in item.split(",") if n]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    args.scenarios = list(dict.fromkeys(names))
    if args.rounds < 1 or args.repeat < 1 or args.warmup < 0 or args.threads < 1:
        p.error("--rounds, --repeat and --threads must be positive, --warmup non-negative")
    return args


def useful_flops(seqs):
    """4 * head_dim * visible keys over all new rows and query heads (causal)."""
    keys = sum(new * past + new * (new + 1) // 2 for past, new in seqs)
    return 4 * HEAD_DIM * NUM_HEADS * keys


# ---------------------------------------------------------------- bf16 in numpy

def to_bf16_bits(np, x):
    """f32 array -> uint16 bf16 bit patterns, rounded to nearest even."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def from_bf16_bits(np, b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def random_bf16(np, rng, shape, low=-1.0, high=1.0):
    """Uniform values in [low, high) as bf16 bits, made in slices to bound the f32 temporary."""
    out = np.empty(shape, dtype=np.uint16)
    flat = out.reshape(shape[0], -1)
    step = max(1, (1 << 22) // max(1, flat.shape[1]))
    for i in range(0, flat.shape[0], step):
        part = rng.random((min(step, flat.shape[0] - i), flat.shape[1]), dtype=np.float32)
        flat[i:i + step] = to_bf16_bits(np, part * (high - low) + low)
    return out


# ---------------------------------------------------------------- OpenVINO model

def build_model(ov, io_type):
    """One PagedAttentionExtension op over Parameters for the per-call inputs."""
    from openvino import op

    def param(shape, ov_type, name):
        p = op.Parameter(ov_type, ov.PartialShape(shape))
        p.set_friendly_name(name)
        p.output(0).get_tensor().set_names({name})
        return p

    def const(ov_type, shape, values):
        return op.Constant(ov_type, ov.Shape(shape), values)

    i32, f32 = ov.Type.i32, ov.Type.f32
    q = param([-1, NUM_HEADS * HEAD_DIM], io_type, "q")
    k = param([-1, NUM_KV_HEADS * HEAD_DIM], io_type, "k")
    v = param([-1, NUM_KV_HEADS * HEAD_DIM], io_type, "v")
    # Cache shape and precision are left to the plugin, which fixes both
    # (block size included) at compile time.
    key_cache = param([-1, NUM_KV_HEADS, -1, -1], ov.Type.dynamic, "key_cache.0")
    value_cache = param([-1, NUM_KV_HEADS, -1, -1], ov.Type.dynamic, "value_cache.0")
    past_lens = param([-1], i32, "past_lens")
    subsequence_begins = param([-1], i32, "subsequence_begins")
    block_indices = param([-1], i32, "block_indices")
    block_indices_begins = param([-1], i32, "block_indices_begins")
    max_context_len = param([], i32, "max_context_len")
    params = [q, k, v, key_cache, value_cache, past_lens, subsequence_begins,
              block_indices, block_indices_begins, max_context_len]
    # The op's 28 inputs in OpenVINO 2026.x; everything past the metadata is
    # an optional feature, switched off by an empty or zero constant.
    inputs = [
        q, k, v, key_cache, value_cache,
        past_lens, subsequence_begins, block_indices, block_indices_begins,
        const(f32, [], [SCALE]),        # 9 scale
        const(i32, [], [0]),            # 10 sliding_window: off
        const(f32, [0], []),            # 11 alibi_slopes: none
        max_context_len,                # 12
        const(i32, [0], []),            # 13 score_aggregation_window: empty = no scores
                                        #    (a scalar 0 fails with several sequences)
        const(i32, [0], []),            # 14 rotated_block_indices: no cache rotation
        const(i32, [0], []),            # 15 rotation_deltas
        const(f32, [0], []),            # 16 rotation_trig_lut
        const(f32, [0], []),            # 17 xattention_threshold: empty = off
        const(i32, [], [64]),           # 18 xattention_block_size
        const(i32, [], [8]),            # 19 xattention_stride
        const(io_type, [0], []),        # 20 sinks: none
        const(i32, [], [0]),            # 21 adaptive_rkv_start_size: off
        const(i32, [0], []),            # 22 adaptive_rkv_evictable_sizes
        const(i32, [0], []),            # 23 adaptive_rkv_diversity_block_set_indices
        const(i32, [0], []),            # 24 adaptive_rkv_diversity_block_set_indices_begins
        const(i32, [0], []),            # 25 token_type_ids
        const(ov.Type.u8, [0], []),     # 26 qq_bias: none
        const(i32, [0], []),            # 27 qq_bias_begins
    ]
    try:
        pa = op._PagedAttentionExtension([n.output(0) for n in inputs])
    except Exception as e:  # another OpenVINO release may count its inputs differently
        fail(f"cannot build PagedAttentionExtension with {len(inputs)} inputs "
             f"(written for OpenVINO 2026.x): {e}")
    rt = pa.get_rt_info()
    for key, value in (("num_k_heads", NUM_KV_HEADS), ("k_head_size", HEAD_DIM),
                       ("num_v_heads", NUM_KV_HEADS), ("v_head_size", HEAD_DIM)):
        rt[key] = value
    return ov.Model([pa.output(0)], params, "paged_attention")


class OpenVino:
    """The compiled op, its infer request and the cache geometry the plugin chose.

    `precision` ("bf16" or "f32") is the type of q, k, v, the cache and the
    output, and the inference precision. Arrays of this side hold uint16 bf16
    bits (bf16) or float32 values (f32); `values` and `as_f32` convert.
    """

    def __init__(self, ov, np, threads, precision):
        self.ov, self.np, self.precision = ov, np, precision
        self.io_type = ov.Type.bf16 if precision == "bf16" else ov.Type.f32
        core = ov.Core()
        config = {"INFERENCE_PRECISION_HINT": precision, "KV_CACHE_PRECISION": precision,
                  "NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": str(threads)}
        self.compiled = core.compile_model(build_model(ov, self.io_type), "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.properties = {}
        for key in ("INFERENCE_PRECISION_HINT", "KEY_CACHE_PRECISION", "VALUE_CACHE_PRECISION",
                    "NUM_STREAMS", "INFERENCE_NUM_THREADS", "ENABLE_CPU_PINNING"):
            try:
                value = self.compiled.get_property(key)
                self.properties[key] = (value.get_type_name() if hasattr(value, "get_type_name")
                                        else str(value))
            except Exception:  # a property this release does not report
                self.properties[key] = "?"
        shapes = {}
        for port in self.compiled.inputs:
            for name in ("key_cache.0", "value_cache.0"):
                if name in port.get_names():
                    shapes[name] = (port.get_partial_shape(), port.get_element_type())
        (kshape, ktype), (vshape, vtype) = shapes["key_cache.0"], shapes["value_cache.0"]
        dims = [d.get_length() if d.is_static else None for d in kshape]
        if (ktype != self.io_type or vtype != self.io_type or str(kshape) != str(vshape)
                or len(dims) != 4 or dims[1] != NUM_KV_HEADS or dims[3] != HEAD_DIM
                or dims[2] is None):
            fail(f"unexpected cache inputs: key {kshape} {ktype}, value {vshape} {vtype} "
                 f"(expected {precision} [blocks, kv_heads, block_size, head_dim])")
        self.block_size = dims[2]

    def values(self, bits):
        """bf16 bits as this side's arrays hold them."""
        return bits if self.precision == "bf16" else from_bf16_bits(self.np, bits)

    def as_f32(self, array):
        """One of this side's arrays (or its output's data) as f32 values."""
        if self.precision == "bf16":
            return from_bf16_bits(self.np, array.view(self.np.uint16))
        return array

    def tensor(self, array, ov_type):
        """An ov.Tensor sharing `array`'s memory (uint16 bits for bf16)."""
        return self.ov.Tensor(array, self.ov.Shape(list(array.shape)), ov_type)


class Problem:
    """One batch of sequences for OpenVINO: new rows, a paged cache pool and its metadata."""

    def __init__(self, np, engine, seqs, seed, spare_blocks=0, garbage=False):
        self.np, self.engine, self.seqs = np, engine, seqs
        bs = engine.block_size
        rng = np.random.default_rng(seed)
        rows = sum(new for _, new in seqs)
        values = engine.values
        self.q = values(random_bf16(np, rng, (rows, NUM_HEADS * HEAD_DIM)))
        self.k = values(random_bf16(np, rng, (rows, NUM_KV_HEADS * HEAD_DIM)))
        self.v = values(random_bf16(np, rng, (rows, NUM_KV_HEADS * HEAD_DIM)))
        counts = [math.ceil((past + new) / bs) for past, new in seqs]
        pool_blocks = sum(counts) + spare_blocks
        order = rng.permutation(pool_blocks).astype(np.int32)
        self.tables, start = [], 0
        for n in counts:
            self.tables.append(order[start:start + n])
            start += n
        shape = (pool_blocks, NUM_KV_HEADS, bs, HEAD_DIM)
        self.k_pool = values(random_bf16(np, rng, shape))
        self.v_pool = values(random_bf16(np, rng, shape))
        if garbage:
            # Slots no sequence owns (spare blocks, a last block's tail) get
            # large values, so that reading one shows in the check.
            owned = np.zeros((pool_blocks, bs), dtype=bool)
            for (past, new), table in zip(seqs, self.tables):
                tokens = np.arange(past + new)
                owned[table[tokens // bs], tokens % bs] = True
            for pool in (self.k_pool, self.v_pool):
                junk = values(random_bf16(np, rng, shape, -8.0, 8.0))
                pool.transpose(0, 2, 1, 3)[~owned] = junk.transpose(0, 2, 1, 3)[~owned]
        i32 = np.int32
        self.meta = {
            "past_lens": np.array([p for p, _ in seqs], dtype=i32),
            "subsequence_begins": np.concatenate([[0], np.cumsum([n for _, n in seqs])]).astype(i32),
            "block_indices": np.concatenate(self.tables).astype(i32),
            "block_indices_begins": np.concatenate([[0], np.cumsum(counts)]).astype(i32),
            "max_context_len": np.array(max(p + n for p, n in seqs), dtype=i32),
        }
        self.flops = useful_flops(seqs)

    def bind(self):
        """Points the infer request at this problem's arrays (shared, not copied)."""
        e, i32 = self.engine, self.engine.ov.Type.i32
        req = e.request
        for name, array in (("q", self.q), ("k", self.k), ("v", self.v),
                            ("key_cache.0", self.k_pool), ("value_cache.0", self.v_pool)):
            req.set_tensor(name, e.tensor(array, e.io_type))
        for name, array in self.meta.items():
            req.set_tensor(name, e.tensor(array, i32))

    def output(self):
        """The last call's output as f32 [rows, heads, head_dim]."""
        out = self.engine.request.get_output_tensor(0)
        data = self.np.array(out.data, copy=True)
        return self.engine.as_f32(data).reshape(-1, NUM_HEADS, HEAD_DIM)

    def reference(self, seq, rows, causal=True, gqa="grouped"):
        """f32 attention for rows `rows` (indices into the sequence's new rows) of `seq`.

        Keys and values: the sequence's context, read from its blocks of the
        pool, then its new rows' k and v. Query head h reads KV head h // 4
        (grouped) or h % 8 (interleaved, the wrong mapping, for contrast).
        """
        np, bs = self.np, self.engine.block_size
        past, new = self.seqs[seq]
        begin = int(self.meta["subsequence_begins"][seq])
        tokens = np.arange(past)
        blocks, slots = self.tables[seq][tokens // bs], tokens % bs
        f32 = self.engine.as_f32
        keys = [f32(self.k_pool[blocks, :, slots, :]),
                f32(self.k[begin:begin + new]).reshape(new, NUM_KV_HEADS, HEAD_DIM)]
        vals = [f32(self.v_pool[blocks, :, slots, :]),
                f32(self.v[begin:begin + new]).reshape(new, NUM_KV_HEADS, HEAD_DIM)]
        k = np.concatenate(keys).transpose(1, 0, 2)  # [kv_heads, keys, d]
        v = np.concatenate(vals).transpose(1, 0, 2)
        group = NUM_HEADS // NUM_KV_HEADS
        heads = np.arange(NUM_HEADS)
        kv_of = heads // group if gqa == "grouped" else heads % NUM_KV_HEADS
        rows = np.asarray(rows)
        q = f32(self.q[begin + rows]).reshape(len(rows), NUM_HEADS, HEAD_DIM)
        s = np.einsum("rhd,hkd->rhk", q, k[kv_of]) * np.float32(SCALE)
        if causal:
            visible = np.arange(past + new)[None, :] <= (past + rows)[:, None]
            s = np.where(visible[:, None, :], s, -np.inf)
        s -= s.max(axis=-1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=-1, keepdims=True)
        return np.einsum("rhk,hkd->rhd", p, v[kv_of])

    def check(self, rows_of=None, contrasts=False):
        """max |OpenVINO - reference| / max |reference| over the chosen rows of every sequence."""
        np = self.np
        out = self.output()
        worst = {"causal GQA h//4": 0.0}
        if contrasts:
            worst.update({"non-causal": 0.0, "GQA h%8": 0.0})
        for i, (past, new) in enumerate(self.seqs):
            rows = np.arange(new) if rows_of is None else np.asarray(rows_of(new))
            begin = int(self.meta["subsequence_begins"][i])
            got = out[begin + rows]
            variants = [("causal GQA h//4", True, "grouped")]
            if contrasts:
                variants += [("non-causal", False, "grouped"), ("GQA h%8", True, "interleaved")]
            for label, causal, gqa in variants:
                ref = self.reference(i, rows, causal, gqa)
                diff = float(np.abs(got - ref).max() / np.abs(ref).max())
                worst[label] = max(worst[label], diff if np.isfinite(diff) else math.inf)
        return worst


def time_openvino(engine, problem, warmup, repeat):
    """Median and all of `repeat` timed infer() calls, after `warmup` untimed ones."""
    problem.bind()
    for _ in range(warmup):
        engine.request.infer()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        engine.request.infer()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), times


def spot_rows(new):
    """A few rows of a sequence for the full-size check: first, middle, last."""
    return sorted({0, new // 2, new - 1})


# ---------------------------------------------------------------- rpa

def time_rpa(args, name):
    """rpa bench's JSON object for one scenario."""
    cmd = [args.rpa, "bench", name, "--json", "--repeat", str(args.repeat),
           "--threads", str(args.threads)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        fail(f"cannot run {args.rpa}: {e} (pass --rpa PATH)")
    try:
        scenario = json.loads(proc.stdout)["scenarios"][0]
    except (ValueError, KeyError, IndexError):
        fail(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    if scenario.get("name") != name:
        fail(f"{' '.join(cmd)} reported scenario {scenario.get('name')!r}")
    if scenario.get("error") or scenario.get("time_ms") is None:
        fail(f"rpa bench {name} failed: {scenario.get('error')}")
    return scenario


# ---------------------------------------------------------------- main

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def fmt_list(values, spec):
    return " / ".join(format(v, spec) for v in values)


def main(argv):
    args = parse_args(argv)
    try:
        import numpy as np
        import openvino as ov
    except ImportError as e:
        fail(f"{e}: run `python3 -m pip install openvino` (it brings numpy)")

    log(f"compiling PagedAttentionExtension for CPU ({args.threads} threads)")
    # auto: bf16, else f32 (the AVX2 build of the CPU plugin: "expect kvcache type f32").
    precisions = ["bf16", "f32"] if args.precision == "auto" else [args.precision]
    for precision in precisions:
        try:
            engine = OpenVino(ov, np, args.threads, precision)
            break
        except RuntimeError as e:
            reason = str(e).strip().splitlines()[-1]
            if precision == precisions[-1]:
                fail(f"OpenVINO cannot compile the op with precision {precision}: {reason}")
            log(f"OpenVINO refused a {precision} cache ({reason}); using {precisions[-1]}")
    if args.default_scenarios and engine.precision == "f32":
        args.scenarios.append("prefill-f32")
    print(f"CPU: {cpu_model()}")
    print(f"OpenVINO {ov.__version__}: PagedAttentionExtension on CPU, "
          + ", ".join(f"{k}={v}" for k, v in engine.properties.items()))
    print(f"OpenVINO side: q/k/v, cache and output {engine.precision}; rpa side: its "
          "scenarios as named (bf16, prefill-f32 f32)")
    print(f"cache: {engine.precision} [blocks, {NUM_KV_HEADS} kv heads, "
          f"block size {engine.block_size}, "
          f"{HEAD_DIM}] as the plugin asks (rpa: page size 16); block tables randomly "
          "permuted through each pool")

    # Correctness on a small mixed batch, with the wrong references for contrast.
    small = Problem(np, engine, CHECK_SEQS, SEED + 1, spare_blocks=3, garbage=True)
    small.bind()
    engine.request.infer()
    diffs = small.check(contrasts=True)
    ok = diffs["causal GQA h//4"] <= CHECK_TOLERANCE
    print(f"check (small batch {CHECK_SEQS} as (context, new rows), every row): "
          f"max|OV - ref|/max|ref| = {diffs['causal GQA h//4']:.1e} "
          f"({'ok' if ok else 'FAILED'}, tolerance {CHECK_TOLERANCE:g}); against a non-causal "
          f"reference {diffs['non-causal']:.1e}, against GQA h%8 {diffs['GQA h%8']:.1e}")
    if not ok:
        fail("OpenVINO's output does not match the reference; not timing", 1)
    del small

    problems = {}
    for name in args.scenarios:
        log(f"preparing {name}")
        problem = Problem(np, engine, SCENARIOS[name], SEED)
        problem.bind()
        engine.request.infer()
        diff = problem.check(rows_of=spot_rows)["causal GQA h//4"]
        ok = diff <= CHECK_TOLERANCE
        print(f"check {name}: rows first/middle/last of each sequence: {diff:.1e} "
              f"({'ok' if ok else 'FAILED'})")
        if not ok:
            fail(f"OpenVINO's output on {name} does not match the reference; not timing", 1)
        problems[name] = problem
    if args.check_only:
        return 0

    ov_ms = {n: [] for n in args.scenarios}
    rpa_ms = {n: [] for n in args.scenarios}
    rpa_flops = {}
    for r in range(args.rounds):
        for name in args.scenarios:
            log(f"round {r + 1}/{args.rounds}: OpenVINO {name}")
            median, _ = time_openvino(engine, problems[name], args.warmup, args.repeat)
            ov_ms[name].append(median)
            log(f"round {r + 1}/{args.rounds}: rpa {name}")
            result = time_rpa(args, name)
            rpa_ms[name].append(result["time_ms"])
            rpa_flops[name] = result["flops"]

    print(f"\n{args.rounds} round(s), alternating per scenario: OpenVINO (median of "
          f"{args.repeat} infer() calls after {args.warmup} warm-up) then rpa bench "
          f"(median time_ms of --repeat {args.repeat}); {args.threads} threads each")
    print("GFLOP/s: useful flops (4 * head_dim * visible keys over rows and heads) over the "
          "fastest round's time\n")
    per_round = "r" + "/r".join(str(i + 1) for i in range(args.rounds))
    head = (f"{'scenario':14} {'OpenVINO ms (' + per_round + ')':>26} "
            f"{'rpa ms (' + per_round + ')':>22} {'OV/rpa (' + per_round + ')':>20} "
            f"{'OV GFLOP/s':>10} {'rpa GFLOP/s':>11}")
    print(head)
    for name in args.scenarios:
        flops = problems[name].flops
        if rpa_flops[name] != flops:
            log(f"note: rpa counts {rpa_flops[name]:.6g} flops for {name}, this script {flops:.6g}")
        ratios = [o / p for o, p in zip(ov_ms[name], rpa_ms[name])]
        ov_rate = flops / min(ov_ms[name]) / 1e6
        rpa_rate = rpa_flops[name] / min(rpa_ms[name]) / 1e6
        print(f"{name:14} {fmt_list(ov_ms[name], '.2f'):>26} {fmt_list(rpa_ms[name], '.2f'):>22} "
              f"{fmt_list(ratios, '.2f'):>20} {ov_rate:10.1f} {rpa_rate:11.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

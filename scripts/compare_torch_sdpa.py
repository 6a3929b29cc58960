#!/usr/bin/env python3
"""Compares rpa's cuda backend with torch's scaled_dot_product_attention.

rpa's side comes from `rpa bench --backend cuda --json-file FILE` (run by
this script, or read from a file an earlier run wrote): each scenario's
per-call time and the shape of its batch (heads, head_dim, page size, dtypes,
and every live slot's q_len and seq_len). So no Python binding of the cuda
backend is needed.

torch's side rebuilds each batch on the GPU with its K/V in a paged pool of the
same size (pages permuted through it) and times what a user without a paged
kernel would write: gather each slot's pages into dense K/V, then SDPA. All
decode rows (q_len 1) form one batched call, padded to the longest with a key
mask where their lengths differ; prefill slots form one call per distinct
(q_len, seq_len). GQA goes through SDPA's enable_gqa; a prompt uses is_causal,
a chunk on context a causal mask aligned bottom-right (row i sees keys up to
context + i). Times are per call, from samples of calls queued back to back,
as rpa's are; the medians are compared.

Usage (docs/benchmarks.md, "CUDA backend: how to measure"):
  python3 scripts/compare_torch_sdpa.py [SCENARIO...] [--rpa build/rpa]
  python3 scripts/compare_torch_sdpa.py --from-json rpa_cuda.json

torch is imported only when the comparison runs; without it the script says
so and exits with status 2. It prints its table and writes the figures nowhere.
"""

import argparse
import importlib.util
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

TORCH_DTYPES = {"f32": "float32", "bf16": "bfloat16", "f16": "float16", "fp8_e4m3": "float8_e4m3fn"}
SAMPLE_MS = 10.0  # a timed sample queues enough calls to last about this long
MAX_CALLS = 200


def fail(message, status=2):
    print(f"compare_torch_sdpa: {message}", file=sys.stderr)
    sys.exit(status)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("scenarios", nargs="*",
                   help="scenarios to compare (default: all); passed to rpa bench")
    p.add_argument("--rpa", default="build/rpa", help="the rpa executable (default: build/rpa)")
    p.add_argument("--from-json", metavar="FILE",
                   help="read rpa's results from FILE (rpa bench --backend cuda --json-file "
                        "FILE) instead of running rpa")
    p.add_argument("--save-json", metavar="FILE", help="keep rpa's JSON in FILE")
    p.add_argument("--rpa-repeat", type=int, default=5, help="rpa bench --repeat (default 5)")
    p.add_argument("--repeat", type=int, default=10,
                   help="timed samples per torch series (default 10)")
    p.add_argument("--device", default="cuda",
                   help="torch device (default cuda; cpu only checks this script: "
                        "its times mean nothing)")
    return p.parse_args(argv)


def rpa_results(args):
    """rpa bench's JSON object: read from --from-json, else from a run of rpa."""
    if args.from_json:
        with open(args.from_json) as f:
            return json.load(f)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.save_json or os.path.join(tmp, "rpa_cuda.json")
        if os.path.exists(path):
            os.remove(path)  # a file left by an earlier run must not pass for this one's
        cmd = [args.rpa, "bench", "--backend", "cuda", "--json-file", path,
               "--repeat", str(args.rpa_repeat), *args.scenarios]
        print("running: " + " ".join(cmd), file=sys.stderr, flush=True)
        try:
            # rpa's table, progress and errors go straight to the terminal.
            proc = subprocess.run(cmd)
        except OSError as e:
            fail(f"cannot run {args.rpa}: {e} (build it first, or pass --rpa PATH)")
        # rpa exits 1 when a scenario failed, after writing the others.
        if not os.path.exists(path):
            fail(f"{args.rpa} bench --backend cuda failed (exit {proc.returncode}); "
                 "its message is above")
        with open(path) as f:
            return json.load(f)


class Group:
    """One SDPA call: slots of one q_len, with their seq_lens (padded to the longest)."""

    def __init__(self, q_len, seq_lens):
        self.q_len = q_len
        self.seq_lens = seq_lens

    def __repr__(self):
        return f"Group(q_len={self.q_len}, seq_lens={self.seq_lens})"


def slot_groups(batch):
    """The SDPA calls for one batch: all decode rows in one, each distinct prefill shape in one."""
    decode = [s["seq_len"] for s in batch["live_slots"] if s["q_len"] == 1]
    prefill = {}
    for s in batch["live_slots"]:
        if s["q_len"] > 1:
            prefill.setdefault((s["q_len"], s["seq_len"]), []).append(s["seq_len"])
    groups = [Group(1, decode)] if decode else []
    groups += [Group(q_len, seq_lens) for (q_len, _), seq_lens in prefill.items()]
    return groups


def unsupported(batch):
    """Why torch's SDPA cannot compute this batch's attention, or None."""
    if batch["logit_soft_cap"] > 0:
        return "SDPA has no logit soft-cap"
    if batch["sinks"]:
        return "SDPA has no attention sinks"
    return None


def visible_keys(torch, group, window, device):
    """[n, q_len, S] bool: key j is visible to row i of slot b (causal, window, length)."""
    seq = torch.tensor(group.seq_lens, device=device).view(-1, 1, 1)
    rows = torch.arange(group.q_len, device=device).view(1, -1, 1)
    keys = torch.arange(max(group.seq_lens), device=device).view(1, 1, -1)
    pos = seq - group.q_len + rows  # each row's position: context + i
    visible = (keys <= pos) & (keys < seq)
    if window > 0:
        visible &= keys > pos - window
    return visible


class TorchGroup:
    """One group's tensors on the device, and its gather and SDPA calls."""

    def __init__(self, torch, problem, group, next_page):
        b = problem.batch
        self.torch, self.problem, self.group = torch, problem, group
        device, ps = problem.device, b["page_size"]
        n, seq_max = len(group.seq_lens), max(group.seq_lens)
        self.pages = math.ceil(seq_max / ps)
        table = []
        for seq_len in group.seq_lens:
            own = [next_page() for _ in range(math.ceil(seq_len / ps))]
            table.append(own + [own[0]] * (self.pages - len(own)))  # padding: masked keys
        self.block_table = torch.tensor(table, device=device, dtype=torch.long)
        heads = b["num_kv_heads"] * b["heads_per_kv"]
        self.q = problem.uniform((n, heads, group.q_len, b["head_dim"])).to(problem.q_dtype)
        self.scale = b["scale"] if b["scale"] > 0 else None
        # The cheapest mask SDPA accepts for this group.
        window, uniform = b["sliding_window"], len(set(group.seq_lens)) == 1
        self.mask, self.is_causal = None, False
        if window == 0 and uniform and group.q_len == 1:
            pass  # a decode row sees every key
        elif window == 0 and uniform and group.q_len == seq_max:
            self.is_causal = True  # fresh prompts: the square's lower triangle
        elif window == 0 and uniform:
            from torch.nn.attention.bias import causal_lower_right
            self.mask = causal_lower_right(group.q_len, seq_max)
        else:
            self.mask = visible_keys(torch, group, window, device).unsqueeze(1)
        self.gqa = b["heads_per_kv"] > 1

    def gather(self):
        """Dense K and V [n, kv_heads, S, head_dim] in q's dtype from the paged pools."""
        b, n = self.problem.batch, len(self.group.seq_lens)
        shape = (n, self.pages * b["page_size"], b["num_kv_heads"], b["head_dim"])
        seq_max = max(self.group.seq_lens)
        dense = []
        for pool, scale in ((self.problem.k_pool, self.problem.k_scale),
                            (self.problem.v_pool, self.problem.v_scale)):
            x = pool[self.block_table].reshape(shape)[:, :seq_max].transpose(1, 2)
            if scale is not None:  # fp8: dequantize on the way
                x = x.to(self.problem.q_dtype) * scale
            dense.append(x)
        return dense

    def attend(self, k, v):
        F = self.torch.nn.functional
        return F.scaled_dot_product_attention(self.q, k, v, attn_mask=self.mask,
                                              is_causal=self.is_causal, scale=self.scale,
                                              enable_gqa=self.gqa)

    def check(self):
        """max |SDPA − f32 reference| / max |reference| over the group's first and last slot."""
        torch, b = self.torch, self.problem.batch
        k, v = self.gather()
        out = self.attend(k, v).float()
        visible = visible_keys(torch, self.group, b["sliding_window"], self.problem.device)
        scale = self.scale if self.scale is not None else 1.0 / math.sqrt(b["head_dim"])
        worst = 0.0
        for i in sorted({0, len(self.group.seq_lens) - 1}):
            kf = k[i].float().repeat_interleave(b["heads_per_kv"], 0)
            vf = v[i].float().repeat_interleave(b["heads_per_kv"], 0)
            s = (self.q[i].float() @ kf.transpose(-1, -2)) * scale
            s = s.masked_fill(~visible[i], float("-inf"))
            ref = torch.softmax(s, dim=-1) @ vf
            worst = max(worst, ((out[i] - ref).abs().max() / ref.abs().max()).item())
        return worst


class TorchProblem:
    """A batch rebuilt in torch: paged K/V pools of the same size and one TorchGroup per call."""

    def __init__(self, torch, batch, device, seed=2024):
        self.torch, self.batch, self.device = torch, batch, device
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.q_dtype = getattr(torch, TORCH_DTYPES[batch["dtype"]])
        kv_dtype = getattr(torch, TORCH_DTYPES[batch["kv_dtype"]])
        kvh = batch["num_kv_heads"]
        pool = (batch["num_pages"], batch["page_size"], kvh, batch["head_dim"])
        self.k_pool = self.uniform(pool).to(kv_dtype)
        self.v_pool = self.uniform(pool).to(kv_dtype)
        self.k_scale = self.v_scale = None
        if batch["kv_dtype"] == "fp8_e4m3":
            scales = kvh if batch["per_head_kv_scales"] else 1
            self.k_scale, self.v_scale = (
                (0.5 + self.uniform((scales,)).abs()).to(self.q_dtype).view(1, -1, 1, 1)
                for _ in range(2))
        # Pages permuted through the pool; a batch needing more pages than the
        # pool holds (shared prefixes) wraps around, sharing them again.
        order = torch.randperm(batch["num_pages"], generator=self.generator, device=device).tolist()
        cursor = itertools.count()
        self.groups = [TorchGroup(torch, self, g, lambda: order[next(cursor) % len(order)])
                       for g in slot_groups(batch)]

    def uniform(self, shape):
        """Uniform values in [-1, 1) in f32: never zeros, which run faster than real data."""
        return self.torch.rand(shape, generator=self.generator, device=self.device) * 2 - 1

    def whole(self):
        return [g.attend(*g.gather()) for g in self.groups]

    def gathers(self):
        return [g.gather() for g in self.groups]


def elapsed_ms(torch, device, fn, calls):
    """Milliseconds per call of `calls` calls of fn queued back to back."""
    if device.startswith("cuda"):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            fn()
        stop.record()
        stop.synchronize()
        return start.elapsed_time(stop) / calls
    t = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t) * 1e3 / calls


def time_per_call(torch, device, fn, repeat):
    """The median per-call time over `repeat` samples, after a warm-up."""
    fn()
    one = elapsed_ms(torch, device, fn, 1)
    calls = max(1, min(MAX_CALLS, math.ceil(SAMPLE_MS / max(one, 1e-6))))
    return statistics.median(elapsed_ms(torch, device, fn, calls) for _ in range(repeat))


def compare(torch, scenario, args):
    """One row of the table: rpa's time and torch's on the same work."""
    batch = scenario["batch"]
    problem = TorchProblem(torch, batch, args.device)
    whole = time_per_call(torch, args.device, problem.whole, args.repeat)
    gather = time_per_call(torch, args.device, problem.gathers, args.repeat)
    dense = problem.gathers()
    sdpa = time_per_call(
        torch, args.device,
        lambda: [g.attend(k, v) for g, (k, v) in zip(problem.groups, dense)], args.repeat)
    check = max(g.check() for g in problem.groups)
    return whole, gather, sdpa, len(problem.groups), check


def print_table(results, rows, torch, device):
    gpu = results.get("gpu", {})
    name = torch.cuda.get_device_name() if device.startswith("cuda") else device
    print(f"rpa: cuda backend on {gpu.get('device', '?')}; torch {torch.__version__} on {name}")
    print("times are per call, medians; torch = gather pages into dense K/V + SDPA; "
          "check = torch vs its own f32 reference\n")
    head = (f"{'scenario':16} {'rpa ms':>9} {'%bound':>10} {'torch ms':>9} {'speedup':>8} "
            f"{'gather ms':>10} {'sdpa ms':>9} {'vs sdpa':>8} {'calls':>6} {'check':>8}")
    print(head)
    for scenario, row in rows:
        rpa_ms = scenario.get("time_ms")
        if isinstance(row, str):
            print(f"{scenario['name']:16} {row}")
            continue
        whole, gather, sdpa, calls, check = row
        bound = f"{100 * scenario['fraction_of_bound']:.0f}% {scenario['bound']}"
        print(f"{scenario['name']:16} {rpa_ms:9.3f} {bound:>10} {whole:9.3f} "
              f"{whole / rpa_ms:7.2f}x {gather:10.3f} {sdpa:9.3f} {sdpa / rpa_ms:7.2f}x "
              f"{calls:6d} {check:8.1e}")


def main(argv):
    args = parse_args(argv)
    # Checked before rpa runs, so that a machine without torch fails at once.
    if importlib.util.find_spec("torch") is None:
        fail("torch is not installed for this python3 (it is on the GPU machine); "
             "the comparison needs torch with CUDA")
    results = rpa_results(args)
    import torch  # noqa: E402 (lazily: rpa ran first, alone on the GPU)

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        fail("torch sees no CUDA device")
    rows = []
    for scenario in results["scenarios"]:
        if args.scenarios and scenario["name"] not in args.scenarios:
            continue  # --from-json with scenarios named: only those
        if scenario.get("error"):
            rows.append((scenario, f"rpa failed: {scenario['error']}"))
            continue
        reason = unsupported(scenario["batch"])
        if reason:
            rows.append((scenario, f"skipped: {reason}"))
            continue
        print(f"torch: {scenario['name']}", file=sys.stderr)
        try:
            rows.append((scenario, compare(torch, scenario, args)))
        except (RuntimeError, ValueError) as e:  # e.g. out of memory, an unsupported kernel
            rows.append((scenario, f"torch failed: {e}"))
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    print_table(results, rows, torch, args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

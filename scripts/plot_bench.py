#!/usr/bin/python3
"""Draws the sweep of `rpa bench --plot` (docs/benchmarks.md).

usage: plot_bench.py SWEEP.json OUT.png

SWEEP.json is the file `rpa bench --plot OUT.png` writes next to the image:
{"machine": {...}, "sweep": [{"sweep": "context" | "capacity", "x", "rpa_ms",
"capacity_masked_ms", "gather_dense_ms", "rpa_gbps", ...}, ...]}. The top row
plots decode time and achieved useful bandwidth against keys per row, the
bottom row against the capacity multiplier, each for rpa and both baselines,
with the measured DRAM read bandwidth as a line.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

SERIES = [  # (key prefix, label, style)
    ("rpa", "rpa", "o-"),
    ("capacity_masked", "capacity-masked", "s--"),
    ("gather_dense", "gather-dense", "^:"),
]
SWEEPS = [  # (sweep name, x-axis label)
    ("context", "keys per decode row (8 rows, capacity 64)"),
    ("capacity", "capacity multiplier (8 rows x 2048 keys; slots and pages)"),
]


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    with open(argv[1]) as f:
        data = json.load(f)
    machine, points = data["machine"], data["sweep"]
    fig, axes = plt.subplots(len(SWEEPS), 2, figsize=(11, 8.5))
    for row, (sweep, xlabel) in enumerate(SWEEPS):
        pts = sorted((p for p in points if p["sweep"] == sweep), key=lambda p: p["x"])
        xs = [p["x"] for p in pts]
        time_ax, bw_ax = axes[row]
        for key, label, style in SERIES:
            time_ax.plot(xs, [p[key + "_ms"] for p in pts], style, label=label)
            bw_ax.plot(xs, [p[key + "_gbps"] for p in pts], style, label=label)
        # Capacity-masked points timed on a slot range and scaled up get a ring.
        scaled = [p for p in pts if p["capacity_masked_timed_fraction"] < 1]
        if scaled:
            time_ax.plot([p["x"] for p in scaled], [p["capacity_masked_ms"] for p in scaled],
                         "o", markersize=12, markerfacecolor="none", color="black",
                         label="capacity-masked scaled from a slot range")
        bw_ax.axhline(machine["read_gbps"], color="gray", linewidth=1,
                      label="measured DRAM read %.1f GB/s" % machine["read_gbps"])
        for ax in (time_ax, bw_ax):
            ax.set_xscale("log", base=2)
            ax.set_xticks(xs)
            ax.set_xticklabels([str(x) for x in xs])
            ax.set_xlabel(xlabel)
            ax.grid(True, which="both", alpha=0.3)
        time_ax.set_yscale("log")
        time_ax.set_ylabel("median time (ms, log)")
        bw_ax.set_ylabel("useful GB/s (live K/V + q + out)")
        time_ax.legend(fontsize=8)
        bw_ax.legend(fontsize=8)
    fig.suptitle("rpa bench --plot: %d threads, %s, bf16 GQA 32/8 d128 page 16"
                 % (machine["threads"], machine["simd_target"]))
    fig.tight_layout()
    fig.savefig(argv[2], dpi=110)


if __name__ == "__main__":
    main(sys.argv)

#!/usr/bin/env python3
"""bench/plot.py: PNG plots of the end-to-end suite's results.

Usage: plot.py E2E_JSON OUT_PREFIX
  E2E_JSON    $BENCH_WORK/e2e.json (written by bench/e2e_report.py)
  OUT_PREFIX  e.g. bench/results/2026-11-23-e2e: writes
              <prefix>-latency.png  detected->credited p50/p95/p99 vs offered rate
              <prefix>-scaling.png  deposits/s (wall, steady) vs copies per stage
Needs matplotlib; bench/e2e.sh runs it with ~/.cache/zeroloss/plot-venv's
python (created with `pip install matplotlib` when missing).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")  # no display on a build machine
import matplotlib.pyplot as plt  # noqa: E402


def latency(res, path):
    rates = sorted(res.get("rate", []), key=lambda r: r["offered_per_s"])
    if not rates:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    xs = [r["offered_per_s"] for r in rates]
    for q, style in (("p50", "o-"), ("p95", "s--"), ("p99", "^-")):
        ys = [(r["latency"]["detected_to_credited_s"] or {}).get(q) for r in rates]
        ax.plot(xs, ys, style, label=f"{q} detected→credited")
    for x, r in zip(xs, rates):
        if not r["complete"]:
            ax.annotate("not drained", (x, (r["latency"]["detected_to_credited_s"] or {}).get("p99") or 0),
                        textcoords="offset points", xytext=(-20, 8), fontsize=8)
    ax.axhline(1.0, color="grey", lw=0.8, ls=":", label="target p99 ≤ 1 s at 100/s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered deposits/s (one copy per stage)")
    ax.set_ylabel("seconds")
    ax.set_title("zeroloss end to end: latency vs deposit rate")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def scaling(res, path):
    sat = res.get("saturation", [])
    if not sat:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    groups = {}
    for r in sat:
        groups.setdefault(r["extra_env"].get("ZL_MINT_BATCH_MAX", "default"), []).append(r)
    for mb, rs in sorted(groups.items()):
        rs.sort(key=lambda r: r["copies"])
        xs = [r["copies"] for r in rs]
        ax.plot(xs, [r["wall_credited_per_s"] for r in rs], "o-", label=f"wall, mint batch {mb}")
        ax.plot(xs, [r["steady_credited_per_s"] for r in rs], "s--", label=f"steady, mint batch {mb}")
    ref = max(r["load"]["achieved_rate"] for r in sat)
    ax.axhline(ref, color="grey", lw=0.8, ls=":", label=f"chain admitted {ref:,.0f}/s (reference)")
    ax.set_xticks(sorted({r["copies"] for r in sat}))
    ax.set_xlabel("copies per stage (detect ×1)")
    ax.set_ylabel("deposits credited per second")
    ax.set_title("zeroloss end to end: throughput vs copies")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def main():
    res = json.load(open(sys.argv[1]))
    prefix = sys.argv[2]
    made = []
    if latency(res, prefix + "-latency.png"):
        made.append(prefix + "-latency.png")
    if scaling(res, prefix + "-scaling.png"):
        made.append(prefix + "-scaling.png")
    print("\n".join(made))


if __name__ == "__main__":
    main()

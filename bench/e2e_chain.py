#!/usr/bin/env python3
"""bench/e2e_chain.py: the pipeline on a real-timed chain (issue 19), the
trials of bench/e2e-chain.sh.

Same machinery as bench/e2e_run.py (its Chain, Trial and recovery trial,
every service this run's own), but the chain mines on a clock as BSC does:
a private anvil with `--block-time BENCH_CHAIN_BLOCK_S` (1) and a block gas
limit of BENCH_CHAIN_GAS_LIMIT (140,000,000, BSC-sized), and deposits are
final two blocks on top (ZL_FINALITY=confirmations, ZL_CONFIRMATIONS=
BENCH_CHAIN_CONFIRMATIONS, 2).

Trials, in this order:
  chain      the reference: BENCH_CHAIN_REF_N transfers sent as fast as the
             node admits them, nothing else running; how many per second it
             admitted, and how many per second it mined (transfers in the
             blocks that hold them / the seconds those blocks span).
  rate R     (for R in BENCH_CHAIN_RATES, 10 100 300) one copy per stage; R
             transfers/s for BENCH_CHAIN_RATE_S (30) seconds, open loop, then
             up to BENCH_CHAIN_DRAIN_S (90) for the rest. Latency per deposit:
             its block's time -> deposit_history 'credited'.at. A block's time
             is when this script first saw it as the head (eth_blockNumber
             polled every BLOCK_POLL_S; anvil's own timestamps are whole
             seconds), both this host's clock. The pipeline *sustains* R
             when every deposit was credited and its credits came at least
             SUSTAIN_SHARE as fast as the deposits were sent (credited /
             first -> last credit, beside sent / the load's seconds): a
             pipeline that falls behind spreads them over longer. Backlog
             (detected, not yet terminal, sampled every second) and its
             growth over the load's second half are given beside it.
  recovery   one copy per stage, 20/s going on; each stage in turn SIGKILLed
             and restarted at once: SIGKILL -> the restarted copy's first
             processed message. Twice: dynamic membership (the reference,
             the session timeout) and static membership as deploy/k8s and
             the harness set it (ZL_GROUP_INSTANCE_ID = the copy's name).

Writes $BENCH_WORK/e2e-chain.json and e2e-chain.md (bench/run adds the
header and copies them to bench/results/).
"""
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import e2e_run as R  # noqa: E402
from zlharness.chain import rpc_batch  # noqa: E402  (e2e_run put the harness on the path)

E = os.environ
BLOCK_S = int(E.get("BENCH_CHAIN_BLOCK_S", "1"))
GAS_LIMIT = int(E.get("BENCH_CHAIN_GAS_LIMIT", "140000000"))
CONFIRMATIONS = int(E.get("BENCH_CHAIN_CONFIRMATIONS", "2"))
RATES = [float(x) for x in E.get("BENCH_CHAIN_RATES", "10 100 300").split()]
RATE_S = float(E.get("BENCH_CHAIN_RATE_S", "30"))
DRAIN_S = float(E.get("BENCH_CHAIN_DRAIN_S", "90"))
REF_N = int(E.get("BENCH_CHAIN_REF_N", "10000"))
RECOVERY = E.get("BENCH_CHAIN_RECOVERY", "1") == "1"
BLOCK_POLL_S = 0.02
# Credits per second, as a share of the deposits sent per second, at or
# above which a rate counts as sustained.
SUSTAIN_SHARE = 0.95
TERMINAL = ("credited", "dead", "reorged", "below_minimum")
WORK = Path(E["BENCH_WORK"])
# The settings every trial's workers get on top of e2e_run's.
FINALITY_ENV = {"ZL_FINALITY": "confirmations", "ZL_CONFIRMATIONS": str(CONFIRMATIONS)}


class BlockClock:
    """When each block number was first seen as the head (ms, this host)."""

    def __init__(self, chain):
        self.chain = chain
        self.seen_ms: dict[int, int] = {}
        self._stop = threading.Event()
        self._last = chain.block_number()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(BLOCK_POLL_S):
            n = self.chain.block_number()
            if n is None or n <= self._last:
                continue
            t = R.now_ms()
            for b in range(self._last + 1, n + 1):
                self.seen_ms[b] = t
            self._last = n

    def stop(self):
        self._stop.set()
        self._thread.join(5)


def mined_per_block(chain, first, last):
    """Transactions in each block first..last (eth_getBlockByNumber)."""
    calls = [("eth_getBlockByNumber", [hex(b), False]) for b in range(first, last + 1)]
    return [len(b["transactions"]) for b in rpc_batch(chain.rpc, calls)] if calls else []


def chain_trial(chain):
    """What the chain itself admits and mines, nothing else running."""
    d = R.WORK / "chain-ref"
    d.mkdir(parents=True, exist_ok=True)
    b0 = chain.block_number()
    load = chain.load(d / "sent.csv", count=REF_N)
    b1 = chain.block_number()
    per_block = mined_per_block(chain, b0 + 1, b1)
    used = [i for i, n in enumerate(per_block) if n]
    span = per_block[used[0]:used[-1] + 1] if used else []
    rec = {"kind": "chain", "n": REF_N, "load": load, "blocks": len(span), "mined": sum(span),
           "admitted_per_s": load["achieved_rate"],
           "mined_per_s": round(sum(span) / (len(span) * BLOCK_S), 1) if span else 0,
           "largest_block": max(span, default=0), "load1": os.getloadavg()[0]}
    R.say(f"chain: admitted {rec['admitted_per_s']}/s, mined {rec['mined_per_s']}/s "
          f"({rec['mined']} transfers in {rec['blocks']} blocks, largest {rec['largest_block']})")
    return rec


def slope_per_s(points):
    """Least-squares slope of (t_ms, value) points, per second."""
    if len(points) < 3:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return round(sum((t - mt) * (v - mv) for t, v in points) / den * 1000, 2) if den else None


def block_latencies(t, clock):
    """Per credited deposit: its block's time (first seen) -> credited, s."""
    rows = R.psql(t.dsn, "SELECT d.block_number, (SELECT extract(epoch FROM max(h.at)) * 1000 FROM deposit_history h"
                         " WHERE h.deposit_id = d.deposit_id AND h.to_state = 'credited') FROM deposits d")
    out, unseen = [], 0
    for block, credited in rows:
        if not credited:
            continue
        seen = clock.seen_ms.get(int(block))
        if seen is None:
            unseen += 1
            continue
        out.append((float(credited) - seen) / 1000)
    q = {k: round(R.pctl(out, v), 3) for k, v in (("p50", .5), ("p95", .95), ("p99", .99))} if out else {}
    if out:
        q["max"] = round(max(out), 3)
    return dict(q, n=len(out), blocks_unseen=unseen)


def credited_ms(t):
    """When each deposit was credited (ms), from the state table's history."""
    return [float(r[0]) for r in R.psql(t.dsn, "SELECT extract(epoch FROM at) * 1000 FROM deposit_history"
                                                " WHERE to_state = 'credited'")]


def rate_trial(chain, rate):
    t = R.Trial(chain, f"chain-rate{int(rate)}", 1, extra_env=FINALITY_ENV)
    clock = BlockClock(chain)
    try:
        t.start_workers()
        cpu = R.CpuMeter(chain, t)
        t_load0 = R.now_ms()
        load = chain.load(t.dir / "sent.csv", rate=rate, seconds=RATE_S)
        t_load1 = R.now_ms()
        c, complete = t.wait_credited(load["sent"], DRAIN_S)
        cpu_use = cpu.result(c["credited"])
        t.stop_workers()
        backlog = [(s["t_ms"], sum(v for k, v in s["states"].items() if k not in TERMINAL)) for s in t.samples]
        half = t_load0 + (t_load1 - t_load0) / 2
        growth = slope_per_s([(tm, v) for tm, v in backlog if half <= tm <= t_load1])
        lat = t.latencies(t.dir / "sent.csv")
        cms = credited_ms(t)
        span_ms = max(cms) - min(cms) if len(cms) > 1 else 0
        credited_per_s = round(c["credited"] / (span_ms / 1000), 1) if span_ms > 0 else None
        rec = {"kind": "rate", "label": t.label, "offered_per_s": rate, "load": load, "states": c,
               "complete": complete, "block_to_credited_s": block_latencies(t, clock),
               "detected_to_credited_s": lat["detected_to_credited_s"], "stage_s": lat["stage_s"],
               "stage_rate_per_s": lat["stage_rate_per_s"], "backlog_growth_per_s": growth,
               "backlog_max": max((v for _, v in backlog), default=0),
               "credited_per_s": credited_per_s,
               "sustained": bool(complete and credited_per_s and credited_per_s >= SUSTAIN_SHARE *
                                 load["achieved_rate"]),
               "cpu": cpu_use, "exit_codes": t.exit_codes, "load1": os.getloadavg()[0], "dir": str(t.dir)}
        b = rec["block_to_credited_s"]
        R.say(f"rate {rate}/s: sent {load['sent']} at {load['achieved_rate']}/s, credited {c['credited']}"
              f"{'' if complete else ' (INCOMPLETE)'}, block->credited p50 {b.get('p50')} p99 {b.get('p99')} s, "
              f"backlog growth {growth}/s")
        return rec
    finally:
        clock.stop()
        t.stop_workers()
        t.cleanup()


def fmt(v, nd=2):
    if v is None:
        return "–"
    return f"{v:,.{nd}f}" if isinstance(v, float) else f"{v:,}"


def report(out, path):
    m = out["meta"]
    ref = out["chain"]
    md = [f"## End to end on a real-timed chain ({BLOCK_S} s blocks, finality {CONFIRMATIONS} blocks)\n",
          f"Chain: a private anvil mining a block every {BLOCK_S} s (`--block-time {BLOCK_S}`), block gas limit "
          f"{GAS_LIMIT:,}; deposits final {CONFIRMATIONS} blocks on top (`ZL_FINALITY=confirmations "
          f"ZL_CONFIRMATIONS={CONFIRMATIONS}`); otherwise as `bench/run e2e` (one copy per stage, "
          "ZL_MINT_RECEIPT_WAIT_MS=200, ZL_RETRY_TIERS_MS=1000,2000,5000, ZL_DETECT_POLL_MS="
          f"{m['detect_poll_ms']}, {R.PARTS} partitions, this run's Kafka, PostgreSQL and Kubo). Everything "
          "shares the machine's cores (the load average at start and end is in the header): compare each figure "
          "with its reference from the same run, not with other days.\n",
          "**Reference, the chain alone** (nothing else running): "
          f"{ref['n']:,} transfers sent as fast as the node takes them; admitted {fmt(ref['admitted_per_s'], 1)}/s, "
          f"mined {fmt(ref['mined_per_s'], 1)}/s ({ref['mined']:,} transfers in {ref['blocks']} blocks, the largest "
          f"{ref['largest_block']:,}).\n",
          "**Latency** = a deposit's block time (when this bench first saw that block as the head, polling every "
          f"{int(BLOCK_POLL_S * 1000)} ms) → its `credited` transition (PostgreSQL `now()`), same host clock. It "
          f"includes the finality wait: at least {CONFIRMATIONS} blocks ({CONFIRMATIONS * BLOCK_S} s). "
          f"*Sustained*: every deposit was credited, and credits came at least {SUSTAIN_SHARE:.0%} as fast as "
          "deposits were sent (*credited /s* = credited / first → last credit). *Backlog*: deposits detected and "
          "not yet terminal, sampled every second; its growth is the slope over the load's second half.\n",
          "| offered /s | sent /s | credited | credited /s | block→credited p50 s | p95 | p99 | max | "
          "detected→credited p50 | p99 | backlog growth /s | backlog max | sustained | chain mined /s (reference) |",
          "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in out["rate"]:
        b, d = r["block_to_credited_s"], r["detected_to_credited_s"] or {}
        md.append(f"| {fmt(r['offered_per_s'], 0)} | {fmt(r['load']['achieved_rate'], 1)} | "
                  f"{r['states']['credited']:,}/{r['load']['sent']:,} | {fmt(r['credited_per_s'], 1)} | "
                  f"{fmt(b.get('p50'))} | {fmt(b.get('p95'))} | "
                  f"{fmt(b.get('p99'))} | {fmt(b.get('max'))} | {fmt(d.get('p50'))} | {fmt(d.get('p99'))} | "
                  f"{fmt(r['backlog_growth_per_s'])} | {r['backlog_max']:,} | {'yes' if r['sustained'] else 'no'} | "
                  f"{fmt(ref['mined_per_s'], 1)} |")
    ok = [r["offered_per_s"] for r in out["rate"] if r["sustained"]]
    md.append(f"\n**Highest offered rate sustained:** {fmt(max(ok), 0) + '/s' if ok else 'none of those offered'} "
              f"(of {', '.join(fmt(x, 0) for x in RATES)}), beside the chain's own {fmt(ref['mined_per_s'], 1)} "
              "transfers/s mined in this run.\n")
    md.append("Time per stage (s, p50 / p99: from the previous transition to this one, queue + work) and each "
              "stage's own rate (deposits it moved / its first → last transition):\n")
    stages = list(out["rate"][0]["stage_s"]) if out["rate"] else []
    md.append("| offered /s | " + " | ".join(stages) + " | mint rate /s | anvil CPU ms/deposit |")
    md.append("|---:|" + "---|" * len(stages) + "---:|---:|")
    for r in out["rate"]:
        cells = [f"{fmt((r['stage_s'][s] or {}).get('p50'))} / {fmt((r['stage_s'][s] or {}).get('p99'))}"
                 for s in stages]
        md.append(f"| {fmt(r['offered_per_s'], 0)} | " + " | ".join(cells) +
                  f" | {fmt(r['stage_rate_per_s'].get('mint'), 1)} | "
                  f"{fmt(r['cpu']['ms_per_deposit'].get('anvil'))} |")
    if out["recovery"]:
        recs = out["recovery"]
        md.append("\n### Recovery after SIGKILL\n")
        md.append(f"One copy per stage, {fmt(recs[0].get('rate', 20.0), 0)} deposits/s going on; each stage in "
                  "turn SIGKILLed and restarted at once. Seconds from the SIGKILL to the restarted copy's first "
                  "processed message (its /metrics counter leaves 0; for detect, its first deposit recorded), and "
                  "from its restart to /health/ready. *static*: the default now, each copy under its name "
                  "(`ZL_GROUP_INSTANCE_ID`, as `deploy/k8s` and the harness set it); *dynamic* (the reference, same "
                  "run): no instance id, so the killed member's partitions wait out the session timeout (10 s). "
                  "Target: ≤ 3 s.\n")
        labels = [r["label"].split("-", 1)[1] for r in recs]
        md.append("| stage | " + " | ".join(f"{lb}: SIGKILL → consumed again s | restart → ready s"
                                            for lb in labels) + " |")
        md.append("|---|" + "---:|---:|" * len(recs))
        for stage in recs[0]["results"]:
            cells = []
            for r in recs:
                v = r["results"].get(stage, {})
                cells += [fmt(v.get("killed_to_first_processed_s")), fmt(v.get("ready_s"))]
            md.append(f"| {stage} | " + " | ".join(cells) + " |")
        md.append("\n" + "; ".join(f"{lb}: deposits sent meanwhile {r['sent']:,}, credited "
                                    f"{r['states']['credited']:,}, credited twice {r['credited_twice']}"
                                    for lb, r in zip(labels, recs)) + ".\n")
    md.append(f"Whole suite: {m['duration_s']} s.\n")
    path.write_text("\n".join(md) + "\n")


def main():
    R.WORK = WORK / "e2e-chain"
    R.WORK.mkdir(parents=True, exist_ok=True)
    (R.WORK / "trials.jsonl").write_text("")
    t0 = time.monotonic()
    chain = R.Chain(block_time_s=BLOCK_S, gas_limit=GAS_LIMIT)
    meta = {"block_time_s": BLOCK_S, "gas_limit": GAS_LIMIT, "confirmations": CONFIRMATIONS, "rates": RATES,
            "rate_s": RATE_S, "drain_s": DRAIN_S, "ref_n": REF_N, "detect_poll_ms": int(R.DETECT_POLL_MS),
            "partitions": R.PARTS, "senders": R.SENDERS}
    out = {"meta": meta, "chain": None, "rate": [], "recovery": []}
    try:
        out["chain"] = chain_trial(chain)
        for r in RATES:
            out["rate"].append(rate_trial(chain, r))
        if RECOVERY:
            for static in (False, True):
                rec = R.recovery_trial(chain, static, extra_env=FINALITY_ENV)
                rec["rate"] = R.RECOVERY_RATE
                out["recovery"].append(rec)
    finally:
        chain.stop()
        meta["duration_s"] = round(time.monotonic() - t0)
        (WORK / "e2e-chain.json").write_text(json.dumps(out, indent=2, sort_keys=True))
    report(out, WORK / "e2e-chain.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""bench/cluster.py: the whole pipeline's end-to-end rate and latency on one
Kafka broker, on a three-broker cluster (replication 3, min.insync.replicas
2, acks=all), and on that cluster with one broker down for the whole trial
(issue 23). What the replication costs, and what losing a broker costs.

Each trial is a pipeline of its own (tests/lib/zlharness/pipeline.py, as the
demo and the chaos suite run it: anvil with a block a second, two
confirmations, Kubo, PostgreSQL, one copy of each stage), in its own folder
under $BENCH_WORK, stopped by pid and removed afterwards. Load: RATE deposits
a second for SECONDS seconds, sent as the chaos suite sends them; the trial
ends when every deposit is credited (or DRAIN_S passes).

Figures per trial:
  offered/s       deposits sent / seconds of sending
  credited/s      deposits credited / seconds from the first detection to
                  the last credit
  p50 / p99 s     detected -> credited, from the state table's history
  credited, lost  lost = sent - credited (must be 0)

Knobs (environment): BENCH_CLUSTER_RATE (50), BENCH_CLUSTER_SECONDS (30),
BENCH_CLUSTER_DRAIN_S (240), BENCH_CLUSTER_TRIALS ("1 3 3-down").
Writes $BENCH_WORK/cluster.json and cluster.md (bench/run adds the header).
"""
import json
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "lib"))
from zlharness.pipeline import STAGES, LocalPipeline  # noqa: E402

RATE = int(os.environ.get("BENCH_CLUSTER_RATE", "50"))
SECONDS = int(os.environ.get("BENCH_CLUSTER_SECONDS", "30"))
DRAIN_S = float(os.environ.get("BENCH_CLUSTER_DRAIN_S", "240"))
TRIALS = os.environ.get("BENCH_CLUSTER_TRIALS", "1 3 3-down").split()
# Deposit addresses per trial: deposits spread over them.
USERS = 50
# Depositor accounts: the sends of a second are spread over them.
ACCOUNTS = 4
# The broker stopped for the "3-down" trial.
DOWN_NODE = "kafka-2"


def say(msg: str) -> None:
    print(f"bench cluster: {msg}", file=sys.stderr, flush=True)


def trial(name: str, work: Path) -> dict:
    nodes = 1 if name == "1" else 3
    local = work / f"cluster-{name}"
    p = LocalPipeline(local, log=say)
    try:
        up_s = p.up(kafka_nodes=nodes)
        say(f"trial {name}: services up in {up_s:.0f} s ({nodes} broker(s))")
        p.setup(accounts=ACCOUNTS, users=USERS)
        if name.endswith("-down"):
            p.services("kill", DOWN_NODE)
            say(f"trial {name}: {DOWN_NODE} killed before the load")
        p.start_workers([(s, 1) for s in STAGES])
        # As Kubernetes would: a static member that exits 1 (fenced, or its
        # session timed out while a broker was down) is restarted under its name.
        p.supervise()
        time.sleep(5)  # every consumer in its group
        sent = 0
        t0 = time.monotonic()
        for sec in range(SECONDS):
            sent += p.make_deposits(RATE)
            time.sleep(max(0.0, t0 + sec + 1 - time.monotonic()))
        send_s = time.monotonic() - t0
        p.pool_drained(120)
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline and p.counts()["credited"] < sent:
            time.sleep(1)
        c = p.counts()
        span = p.psql("SELECT extract(epoch FROM max(h.at) - min(d.created_at)) FROM deposits d"
                      " JOIN deposit_history h ON h.deposit_id = d.deposit_id AND h.to_state = 'credited'")[0][0]
        doubled = p.psql("SELECT count(*) FROM (SELECT deposit_id FROM ledger_entries WHERE kind = 'user_credit'"
                         " GROUP BY deposit_id HAVING count(*) > 1) x")[0][0]
        p50, p99 = p.latency_s()
        span_s = float(span or 0)
        return {"trial": name, "brokers": nodes, "down": DOWN_NODE if name.endswith("-down") else "",
                "sent": sent, "offered_per_s": round(sent / send_s, 1), "credited": c["credited"],
                "lost": sent - c["credited"], "doubled": int(doubled),
                "credited_per_s": round(c["credited"] / span_s, 1) if span_s > 0 else 0.0,
                "p50_s": round(p50, 2), "p99_s": round(p99, 2), "states": c}
    finally:
        p.stop_workers()
        p.down()
        shutil.rmtree(local, ignore_errors=True)


def main() -> int:
    work = Path(os.environ.get("BENCH_WORK", REPO / ".local" / "bench-cluster"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in TRIALS:
        r = trial(name, work)
        say(json.dumps(r))
        rows.append(r)
    (work / "cluster.json").write_text(json.dumps({"rate": RATE, "seconds": SECONDS, "trials": rows}, indent=1))
    md = ["## End to end on one broker, three, and three with one down", "",
          f"Offered {RATE} deposits/s for {SECONDS} s; one copy per stage; anvil a block a second, "
          "2 confirmations; detected -> credited latency from the state table. Each trial runs services of "
          "its own (deploy/local/services with ZL_KAFKA_NODES 1 or 3, Kafka 3.9.1), not the run's services "
          "named above; in the last trial the broker is SIGKILLed after the topics exist and before the "
          "workers start, and stays down.", "",
          "| Kafka | sent | offered/s | credited | lost | doubled | credited/s | p50 s | p99 s |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    label = {"1": "1 broker (replication 1)", "3": "3 brokers (replication 3, min ISR 2)",
             "3-down": f"3 brokers, {DOWN_NODE} down"}
    for r in rows:
        md.append(f"| {label.get(r['trial'], r['trial'])} | {r['sent']} | {r['offered_per_s']} | {r['credited']} |"
                  f" {r['lost']} | {r['doubled']} | {r['credited_per_s']} | {r['p50_s']} | {r['p99_s']} |")
    (work / "cluster.md").write_text("\n".join(md) + "\n")
    return 0 if all(r["lost"] == 0 and r["doubled"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

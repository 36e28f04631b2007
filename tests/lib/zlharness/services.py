"""deploy/local/services (PostgreSQL, Kafka, anvil, Kubo in ZL_LOCAL_DIR)."""
import json
import os
import re
import subprocess
import time
from pathlib import Path

from .env import REPO, HarnessError
from .procs import run

SERVICES = REPO / "deploy" / "local" / "services"


def services(*args: str, env: dict | None = None, timeout: float = 180) -> str:
    """Runs the services script (its ZL_LOCAL_DIR from env, default ours)."""
    return run([SERVICES, *args], env=env, timeout=timeout)


def services_env(env: dict | None = None) -> dict[str, str]:
    """The ZL_* variables `services env` exports, as a dict."""
    out = {}
    for line in services("env", env=env).splitlines():
        k, _, v = line.removeprefix("export ").partition("=")
        out[k] = v.strip("'")
    return out


def ports(local: Path) -> dict[str, str]:
    """The ports the script chose for the services in `local`."""
    return dict(line.split("=", 1) for line in (local / "ports.env").read_text().split())


def local_env(local: Path) -> dict:
    """os.environ with ZL_LOCAL_DIR=local: services of a folder of one's own."""
    return dict(os.environ, ZL_LOCAL_DIR=str(local))


# ------------------------------------------------------------ a Kafka cluster
# `services` with ZL_KAFKA_NODES=3 runs kafka-1..kafka-3, node id N on
# service kafka-N. These read its state with kcat (fast: no JVM) and change
# it with Kafka's own tools, from the same jars as the brokers.

# How long a cluster change (leaders elected, replicas back in sync, a
# reassignment done) may take before it is reported as stuck.
CLUSTER_WAIT_S = 180
KAFKA_TOOL_TIMEOUT_S = 120
# How long a preferred election may take to show in the brokers' metadata.
ELECTION_SEEN_S = 10


def node_service(broker_id: int) -> str:
    """The service name of the cluster node with this id."""
    return f"kafka-{broker_id}"


def partitions(brokers: str, topics: list[str] | None = None) -> list[dict]:
    """Every partition of `topics` (default every topic) as the cluster
    reports it: {topic, partition, leader (-1: none), replicas, isr}."""
    out = []
    for topic in topics or [None]:
        r = subprocess.run(["kcat", "-b", brokers, "-L", "-J", *(["-t", topic] if topic else [])],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise HarnessError(f"kcat -L failed: {r.stderr}")
        for t in json.loads(r.stdout)["topics"]:
            for p in t["partitions"]:
                out.append({"topic": t["topic"], "partition": p["partition"], "leader": p["leader"],
                            "replicas": [x["id"] for x in p["replicas"]], "isr": [x["id"] for x in p["isrs"]]})
    return out


def busiest_leader(brokers: str, topic: str) -> tuple[int, int]:
    """The broker leading the most partitions of topic, and how many."""
    per: dict[int, int] = {}
    for p in partitions(brokers, [topic]):
        if p["leader"] >= 0:
            per[p["leader"]] = per.get(p["leader"], 0) + 1
    if not per:
        raise HarnessError(f"{topic} has no partition with a leader")
    best = max(sorted(per), key=lambda b: per[b])
    return best, per[best]


def wait_cluster(brokers: str, ok, what: str, timeout_s: float = CLUSTER_WAIT_S) -> float:
    """Polls ok(partitions) until true; the seconds it took. The cluster may
    be mid-change (a broker down answers nothing): errors are retried."""
    t0 = time.monotonic()
    last = ""
    while time.monotonic() - t0 < timeout_s:
        try:
            if ok(partitions(brokers)):
                return time.monotonic() - t0
        except (HarnessError, ValueError, KeyError, OSError) as e:
            last = str(e)
        time.sleep(0.5)
    raise HarnessError(f"cluster: {what} not reached in {timeout_s:.0f} s {last}")


def wait_led_without(brokers: str, broker_id: int, timeout_s: float = CLUSTER_WAIT_S) -> float:
    """Waits until every partition has a leader other than broker_id."""
    return wait_cluster(brokers, lambda ps: all(p["leader"] >= 0 and p["leader"] != broker_id for p in ps),
                        f"every partition led by a broker other than {broker_id}", timeout_s)


def wait_in_sync(brokers: str, timeout_s: float = CLUSTER_WAIT_S) -> float:
    """Waits until every partition has a leader and every replica in sync."""
    return wait_cluster(brokers, lambda ps: all(p["leader"] >= 0 and sorted(p["isr"]) == sorted(p["replicas"])
                                                for p in ps), "every replica in sync", timeout_s)


def kafka_tool(env: dict, cls: str, *args: str, timeout: float = KAFKA_TOOL_TIMEOUT_S) -> str:
    """One of Kafka's command-line tools (a class of the broker's jars) against
    env's ZL_KAFKA_BROKERS; its stdout."""
    home = env["ZL_KAFKA_HOME"]
    return run(["java", "-Xmx256m", "-cp", f"{home}/lib/*", cls, "--bootstrap-server", env["ZL_KAFKA_BROKERS"],
                *args], env=env, timeout=timeout)


def group_coordinator(env: dict, group: str) -> int:
    """The broker id of a consumer group's coordinator (the consumer-groups
    tool's --describe --state: GROUP COORDINATOR (ID) ...)."""
    out = kafka_tool(env, "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "--describe", "--state",
                     "--group", group)
    m = re.search(r"^\S+\s+\S+:\d+\s+\((\d+)\)", out, re.M)
    if not m:
        raise HarnessError(f"no coordinator for group {group} in: {out}")
    return int(m.group(1))


def another_first(p: dict) -> list[int]:
    """p's replicas with the one after its leader first: a preferred leader
    other than the current one (after earlier failovers the leader is often
    not the first replica, and a plain rotation can make it first again)."""
    r = p["replicas"]
    nxt = r[(r.index(p["leader"]) + 1) % len(r)] if p["leader"] in r else r[1 % len(r)]
    return [nxt] + [b for b in r if b != nxt]


def reassign_rotated(env: dict, topic: str, scratch: Path) -> dict:
    """Reassigns every partition of topic to its replicas reordered so that
    another broker is each partition's preferred leader (another_first) with
    kafka-reassign-partitions, waits for it to finish, then elects the
    preferred leaders: every partition's leader moves, under whatever load is
    running. Returns {partitions, leaders_moved, seconds}."""
    import json
    t0 = time.monotonic()
    parts = partitions(env["ZL_KAFKA_BROKERS"], [topic])
    plan = {"version": 1, "partitions": [{"topic": topic, "partition": p["partition"], "replicas": another_first(p)}
                                         for p in parts]}
    f = scratch / f"reassign-{topic}-{int(time.time() * 1000)}.json"
    f.write_text(json.dumps(plan))
    cmd = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"
    kafka_tool(env, cmd, "--reassignment-json-file", str(f), "--execute")
    deadline = time.monotonic() + CLUSTER_WAIT_S
    while "is still in progress" in kafka_tool(env, cmd, "--reassignment-json-file", str(f), "--verify"):
        if time.monotonic() > deadline:
            raise HarnessError(f"reassignment of {topic} still in progress after {CLUSTER_WAIT_S} s")
        time.sleep(1)
    elect = scratch / f"elect-{topic}-{int(time.time() * 1000)}.json"
    elect.write_text(json.dumps({"partitions": [{"topic": topic, "partition": p["partition"]} for p in parts]}))
    said = kafka_tool(env, "org.apache.kafka.tools.LeaderElectionCommand", "--election-type", "preferred",
                      "--path-to-json-file", str(elect))
    # The brokers' metadata follows the controller's a moment later.
    before = {p["partition"]: p["leader"] for p in parts}
    deadline = time.monotonic() + ELECTION_SEEN_S
    while True:
        moved = sum(1 for p in partitions(env["ZL_KAFKA_BROKERS"], [topic]) if p["leader"] != before[p["partition"]])
        if moved == len(parts) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    out = {"partitions": len(parts), "leaders_moved": moved, "seconds": time.monotonic() - t0}
    if moved < len(parts):  # shown in the chaos log: why some leader stayed
        out["election"] = " ".join(said.split())[-300:]
    return out

"""Kafka through kcat and zl-topics."""
import json
import os
import subprocess
import time

from .env import HarnessError, bin_path, need_env
from .procs import run

KCAT_TIMEOUT_S = 60


def kcat(*args: str, data: str | None = None, brokers: str | None = None, timeout: float = KCAT_TIMEOUT_S) -> str:
    """kcat against brokers (default ZL_KAFKA_BROKERS); its stdout."""
    # errors="replace": a topic may hold poison bytes that are not UTF-8.
    out = subprocess.run(["kcat", "-b", brokers or need_env("ZL_KAFKA_BROKERS"), *args], input=data,
                         capture_output=True, text=True, errors="replace", timeout=timeout)
    if out.returncode != 0:
        raise HarnessError(f"kcat {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def produce(topic: str, records: list[tuple[str, str]], brokers: str | None = None,
            partition: int | None = None) -> None:
    """(key, value) records, acks=all (keys and values hold no tab or newline);
    into `partition` when given, else the partition the key picks."""
    lines = "".join(f"{k}\t{v}\n" for k, v in records)
    where = ["-p", str(partition)] if partition is not None else []
    kcat("-P", "-t", topic, *where, "-K", "\t", "-X", "acks=all", data=lines, brokers=brokers)


def produce_deposits(topic: str, deposits: list[dict], key: str | None = None, brokers: str | None = None,
                     partition: int | None = None) -> None:
    """Deposit events as JSON, keyed by deposit_id (or by `key`; a stage
    refuses a key other than the deposit id as poison: to keep several
    deposits in order on one partition, name the partition)."""
    produce(topic, [(key or d["deposit_id"], json.dumps(d)) for d in deposits], brokers, partition)


def produce_bytes(topic: str, key: str, value: bytes, brokers: str, retry_s: float = 0,
                  hdrs: dict[str, str] | None = None) -> None:
    """One message with any bytes as its value (and text headers hdrs);
    retried for retry_s seconds (the broker may be restarting)."""
    deadline = time.monotonic() + retry_s
    hargs = [a for name, v in (hdrs or {}).items() for a in ("-H", f"{name}={v}")]
    while True:
        out = subprocess.run(["kcat", "-b", brokers, "-P", "-t", topic, "-k", key, *hargs], input=value,
                             capture_output=True, timeout=KCAT_TIMEOUT_S)
        if out.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise HarnessError(f"kcat could not produce to {topic}: {out.stderr.decode(errors='replace')}")
        time.sleep(1)


def consume(topic: str, fmt: str = "%s\n", brokers: str | None = None) -> str:
    """Every message on topic from the beginning, formatted by kcat's -f."""
    return kcat("-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", fmt, brokers=brokers)


def consume_json(topic: str, brokers: str | None = None) -> list[dict]:
    """Every message value on topic, decoded (duplicates kept)."""
    return [json.loads(v) for v in consume(topic, brokers=brokers).splitlines() if v]


def headers(text: str) -> dict[str, str]:
    """kcat's %h (name=value,name=value) as a dict."""
    out = {}
    for pair in text.split(","):
        name, _, value = pair.partition("=")
        if name:
            out[name] = value
    return out


def keyed_headers(topic: str, brokers: str | None = None) -> list[dict]:
    """Each message's key, produce time (ms) and headers (a DLQ as operators
    see it with kcat)."""
    msgs = []
    for rec in consume(topic, "%k|%T|%h\x1e", brokers).split("\x1e"):
        if not rec.strip():
            continue
        key, _, rest = rec.partition("|")
        ts, _, hdrs = rest.partition("|")
        msgs.append({"key": key.lstrip("\n"), "ts": int(ts), "headers": headers(hdrs)})
    return msgs


def first_defer_waits(topic: str, brokers: str | None = None) -> dict[str, int]:
    """Per message key, its first defer's wait on retry topic `topic`:
    zl-retry-due-at minus the retry's produce time, ms."""
    out = {}
    for m in keyed_headers(topic, brokers):
        h = m["headers"]
        if h.get("zl-last-error-class") == "defer" and m["key"] not in out:
            out[m["key"]] = int(h["zl-retry-due-at"]) - m["ts"]
    return out


def create_topics(env: dict, stages: str | None = None, partitions: int | None = None) -> None:
    """zl-topics with env (its prefix); stages: ZL_TOPICS_STAGES (default all)."""
    env = dict(env)
    if stages:
        env["ZL_TOPICS_STAGES"] = stages
    if partitions:
        env["ZL_TOPIC_PARTITIONS"] = str(partitions)
    env.setdefault("PATH", os.environ["PATH"])
    # The test services' broker count decides (deploy/local/services env):
    # one broker is a local setup; a cluster takes the production path.
    env.setdefault("ZL_TOPIC_REPLICATION", os.environ.get("ZL_TOPIC_REPLICATION", "1"))
    if int(env["ZL_TOPIC_REPLICATION"]) < 3:
        env.setdefault("ZL_TOPICS_LOCAL", os.environ.get("ZL_TOPICS_LOCAL", "true"))
    run([bin_path("zl-topics", dict(os.environ, **env))], env=env, timeout=120)

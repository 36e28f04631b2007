"""Helpers for the operations tests (replay, sweep, admin, runbook): an
isolated passthrough pipeline plus the operations tools, run as processes
against the real broker and database.

Reuses runtime_helpers.Pipeline (topics, the passthrough stage, kcat); adds
running zl-replay, starting zl-sweep / zl-admin, and reading what the tools
put on the topics.
"""
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from conftest import REPO, need_env
from runtime_helpers import Pipeline, kcat, psql, states, wait_until

ADMIN_TOKEN = "test-admin-token-" + "x" * 16


def bin_path(name: str) -> str:
    return str(Path(need_env("ZL_BIN_DIR")) / name)


def migrate() -> None:
    env = dict(os.environ, ZL_SCHEMA_DIR=str(REPO / "schemas" / "sql"))
    out = subprocess.run([bin_path("zl-migrate")], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    psql("CREATE TABLE IF NOT EXISTS pt_effects (deposit_id text PRIMARY KEY, n integer NOT NULL)")


def base_env(prefix: str, brokers: str | None = None) -> dict:
    return {
        "PATH": os.environ["PATH"],
        "ZL_KAFKA_BROKERS": brokers or need_env("ZL_KAFKA_BROKERS"),
        "ZL_PG_DSN": need_env("ZL_PG_DSN"),
        "ZL_TOPIC_PREFIX": prefix,
        "ZL_GROUP_ID": f"zl-passthrough-{prefix}",
        "ZL_RETRY_TIERS_MS": "500,1000",
        "ZL_BATCH_SIZE_MAX": "10",
        "ZL_OUTAGE_CAP_MS": "1000",
        "ZL_INPLACE_BASE_MS": "10",
        "ZL_INPLACE_CAP_MS": "50",
        "ZL_LOG_LEVEL": "info",
    }


def make_pipeline(tmp_path: Path, brokers: str | None = None, partitions: int = 3) -> Pipeline:
    prefix = f"o{uuid.uuid4().hex[:10]}."
    env = base_env(prefix, brokers)
    topics_env = dict(env, ZL_TOPICS_STAGES="passthrough", ZL_TOPIC_PARTITIONS=str(partitions))
    out = subprocess.run([bin_path("zl-topics")], env=topics_env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return Pipeline(prefix=prefix, workdir=tmp_path, env=env)


def run_replay(p: Pipeline, *args: str, group: str | None = None, timeout: float = 120,
               **extra_env: str) -> subprocess.CompletedProcess:
    env = dict(p.env)
    env["ZL_REPLAY_GROUP_ID"] = group or f"zl-replay-{p.prefix}"
    env["ZL_REPLAY_RATE"] = "0"
    env.update({k: str(v) for k, v in extra_env.items()})
    return subprocess.run([bin_path("zl-replay"), "--from-stage", "passthrough", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def summary(out: subprocess.CompletedProcess) -> dict[str, int]:
    """The counts of zl-replay's summary line: {'sent': 2, 'refused': 0, ...}."""
    line = [l for l in out.stdout.splitlines() if l.startswith("zl-replay ")]
    assert line, f"no summary line: {out.stdout} {out.stderr}"
    counts = {}
    for part in line[-1].split(":", 1)[1].split(","):
        words = part.split()
        if len(words) >= 2 and words[1].isdigit():
            counts[words[0]] = int(words[1])
    return counts


def topic_messages(topic: str, brokers: str | None = None) -> list[dict]:
    """Every message on topic: key, headers (dict) and value."""
    args = ["-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k\x1f%h\x1f%s\x1e"]
    if brokers:
        out = subprocess.run(["kcat", "-b", brokers, *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        text = out.stdout
    else:
        text = kcat(*args)
    msgs = []
    for rec in text.split("\x1e"):
        if not rec.strip():
            continue
        key, hdrs, value = rec.lstrip("\n").split("\x1f", 2)
        headers = {}
        for pair in hdrs.split(","):
            name, _, v = pair.partition("=")
            if name:
                headers[name] = v
        msgs.append({"key": key, "headers": headers, "value": value})
    return msgs


def replayed_keys(p: Pipeline) -> list[str]:
    return [m["key"] for m in topic_messages(p.in_topic) if "zl-replayed-from" in m["headers"]]


def chain_deposit(chain_id: int, user: str = "u1") -> dict:
    """A deposit on a chain of the test's own, so a sweeper limited to that
    chain (ZL_SWEEP_CHAIN_ID) never touches anyone else's rows."""
    from runtime_helpers import new_deposit
    d = new_deposit(user)
    d["chain_id"] = chain_id
    d["deposit_id"] = f"{chain_id}:{d['tx_hash']}:0"
    return d


def make_dead(p: Pipeline, n: int, user: str = "poisoned", chain_id: int | None = None) -> list[dict]:
    """n deposits the passthrough stage fails permanently: rows end 'dead',
    one dead letter each. The worker is stopped afterwards."""
    from runtime_helpers import insert_rows, new_deposit
    deps = [chain_deposit(chain_id, user) if chain_id else new_deposit(user_id=user) for _ in range(n)]
    insert_rows(deps)
    p.produce(deps)
    w = p.start(f"failing-{uuid.uuid4().hex[:6]}", ZL_PT_PERMANENT_USER=user)
    ids = [d["deposit_id"] for d in deps]
    wait_until(lambda: list(states(ids).values()).count("dead") == n, 60, f"{n} rows dead")
    wait_until(lambda: len(p.dlq_messages()) >= n, 30, f"{n} dead letters")
    stop(w)
    return deps


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            return proc.wait(timeout=10)
    return proc.returncode


def start_tool(p: Pipeline, name: str, binary: str, **extra_env: str) -> subprocess.Popen:
    env = dict(p.env)
    env.update({k: str(v) for k, v in extra_env.items()})
    env["ZL_HTTP_PORT_FILE"] = str(p.workdir / f"{name}.port")
    log = open(p.workdir / f"{name}.log", "ab")
    proc = subprocess.Popen([bin_path(binary)], env=env, stdout=log, stderr=log, start_new_session=True)
    log.close()
    proc.zl_name = name
    p.procs.append(proc)
    return proc


def token_file(workdir: Path, token: str = ADMIN_TOKEN) -> Path:
    f = workdir / "admin_token"
    f.write_text(token + "\n")
    f.chmod(0o600)
    return f


def http(method: str, url: str, token: str | None = ADMIN_TOKEN, body: dict | None = None,
         headers: dict | None = None, timeout: float = 15) -> tuple[int, dict | str]:
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    req = urllib.request.Request(url, data=data, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text

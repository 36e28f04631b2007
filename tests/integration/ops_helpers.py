"""Helpers for the operations tests (replay, sweep, admin, runbook): an
isolated passthrough pipeline plus the operations tools, run as processes
against the real broker and database.

Reuses runtime_helpers.Pipeline (topics, the passthrough stage, kcat); adds
running zl-replay, starting zl-sweep / zl-admin, and reading what the tools
put on the topics.
"""
import subprocess
import uuid
from pathlib import Path

import pytest

from runtime_helpers import Pipeline, insert_rows, kcat, new_deposit, psql, states, wait_until  # noqa: F401
from zlharness.env import REPO, need_env  # noqa: F401 (names other tests import from here)
from zlharness.env import bin_path, write_secret  # noqa: F401
from zlharness.pg import ensure_pt_effects
from zlharness.pg import migrate as zl_migrate
from zlharness.procs import stop  # noqa: F401
from zlharness.stage import new_stage_pipeline, stage_env
from zlharness.kafka import headers
from zlharness.web import http_json

ADMIN_TOKEN = "test-admin-token-" + "x" * 16


def migrate() -> None:
    zl_migrate()
    ensure_pt_effects()


def base_env(prefix: str, brokers: str | None = None) -> dict:
    return stage_env(prefix, f"zl-passthrough-{prefix}", brokers, ZL_BATCH_SIZE_MAX="10")


def make_pipeline(tmp_path: Path, brokers: str | None = None, partitions: int = 3) -> Pipeline:
    return new_stage_pipeline(Pipeline, tmp_path, "passthrough", letter="o", partitions=partitions, brokers=brokers,
                              ZL_BATCH_SIZE_MAX="10")


@pytest.fixture
def pipeline(tmp_path):
    """An isolated passthrough pipeline per test (import into a test module)."""
    p = make_pipeline(tmp_path)
    yield p
    p.stop_all()


def run_replay(p: Pipeline, *args: str, group: str | None = None, timeout: float = 120,
               **extra_env: str) -> subprocess.CompletedProcess:
    env = dict(p.env)
    env["ZL_REPLAY_GROUP_ID"] = group or f"zl-replay-{p.prefix}"
    env["ZL_REPLAY_RATE"] = "0"
    # zl-replay sends a letter to the input of the stage whose DLQ it reads; the
    # passthrough test stage is not one it knows, so name its input as the
    # stage's own ZL_IN_TOPIC would.
    env["ZL_IN_TOPIC"] = p.in_topic
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
    text = kcat("-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k\x1f%h\x1f%s\x1e", brokers=brokers)
    msgs = []
    for rec in text.split("\x1e"):
        if not rec.strip():
            continue
        key, hdrs, value = rec.lstrip("\n").split("\x1f", 2)
        msgs.append({"key": key, "headers": headers(hdrs), "value": value})
    return msgs


def replayed_keys(p: Pipeline) -> list[str]:
    return [m["key"] for m in topic_messages(p.in_topic) if "zl-replayed-from" in m["headers"]]


def chain_deposit(chain_id: int, user: str = "u1") -> dict:
    """A deposit on a chain of the test's own, so a sweeper limited to that
    chain (ZL_SWEEP_CHAIN_ID) never touches anyone else's rows."""
    d = new_deposit(user)
    d["chain_id"] = chain_id
    d["deposit_id"] = f"{chain_id}:{d['tx_hash']}:0"
    return d


def make_dead(p: Pipeline, n: int, user: str = "poisoned", chain_id: int | None = None) -> list[dict]:
    """n deposits the passthrough stage fails permanently: rows end 'dead',
    one dead letter each. The worker is stopped afterwards."""
    deps = [chain_deposit(chain_id, user) if chain_id else new_deposit(user_id=user) for _ in range(n)]
    insert_rows(deps)
    p.produce(deps)
    w = p.start(f"failing-{uuid.uuid4().hex[:6]}", ZL_PT_PERMANENT_USER=user)
    ids = [d["deposit_id"] for d in deps]
    wait_until(lambda: list(states(ids).values()).count("dead") == n, 60, f"{n} rows dead")
    wait_until(lambda: len(p.dlq_messages()) >= n, 30, f"{n} dead letters")
    stop(w)
    return deps


def start_tool(p: Pipeline, name: str, binary: str, **extra_env: str) -> subprocess.Popen:
    return p.start(name, binary=binary, **extra_env)


def token_file(workdir: Path, token: str = ADMIN_TOKEN) -> Path:
    return write_secret(workdir / "admin_token", token)


def http(method: str, url: str, token: str | None = ADMIN_TOKEN, body: dict | None = None,
         headers: dict | None = None, timeout: float = 15) -> tuple[int, dict | str]:
    return http_json(method, url, token, body, headers, timeout)

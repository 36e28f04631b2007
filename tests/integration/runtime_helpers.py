"""Helpers for driving stage workers against the real broker and database.

Each test gets its own topic prefix and consumer group, so tests never see
each other's messages, and its own random deposit ids, so rows never collide.
"""
import json
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from conftest import REPO, need_env

CHAIN_ID = 31337


def psql(sql: str, *params: str) -> list[list[str]]:
    """Runs one statement through psql; returns rows as lists of text.
    Parameters are passed as psql variables and quoted by psql (:'v1')."""
    cmd = [os.path.join(need_env("ZL_PG_BIN"), "psql"), need_env("ZL_PG_DSN"), "-v", "ON_ERROR_STOP=1",
           "-X", "-q", "-tA", "-F", "\t"]
    for i, p in enumerate(params, 1):
        cmd += ["-v", f"v{i}={p}"]
    out = subprocess.run(cmd, input=sql, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"psql failed: {out.stderr}")
    return [line.split("\t") for line in out.stdout.splitlines() if line]


def kcat(*args: str, data: str | None = None, timeout: float = 60) -> str:
    out = subprocess.run(["kcat", "-b", need_env("ZL_KAFKA_BROKERS"), *args], input=data, capture_output=True,
                         text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"kcat {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def new_deposit(user_id: str = "u1") -> dict:
    tx = "0x" + uuid.uuid4().hex + uuid.uuid4().hex
    return {
        "schema": "zl.deposits.detected/v1",
        "event_id": str(uuid.uuid4()),
        "deposit_id": f"{CHAIN_ID}:{tx}:0",
        "chain_id": CHAIN_ID,
        "tx_hash": tx,
        "log_index": 0,
        "block_number": 100,
        "block_hash": "0x" + "ab" * 32,
        "token": "0x" + "11" * 20,
        "from": "0x" + "22" * 20,
        "to": "0x" + "33" * 20,
        "user_id": user_id,
        "amount": "1000000000000000000",
        "occurred_at": "2026-11-23T10:00:00.000Z",
    }


def insert_rows(deposits: list[dict]) -> None:
    """What the detector does first: the row exists before any event."""
    values = ",".join(
        f"('{d['deposit_id']}', {d['chain_id']}, '{d['tx_hash']}', {d['log_index']}, {d['block_number']},"
        f" '{d['block_hash']}', '{d['token']}', '{d['from']}', '{d['to']}', '{d['user_id']}', {d['amount']},"
        f" '{d['occurred_at']}')" for d in deposits)
    # Test data only (hex ids and fixed strings we generated), not user input.
    psql("INSERT INTO deposits (deposit_id, chain_id, tx_hash, log_index, block_number, block_hash, token,"
         " from_addr, to_addr, user_id, amount, occurred_at) VALUES " + values)


@dataclass
class Pipeline:
    """One isolated stage pipeline: its topics, group and workers. The base
    runs the passthrough test stage; a stage's helpers subclass it and set
    STAGE, IN, OUT and BINARY."""
    prefix: str
    workdir: Path
    env: dict
    procs: list = field(default_factory=list)

    STAGE = "passthrough"
    IN = "deposits.detected"
    OUT = "deposits.verified"
    BINARY = None  # None: the passthrough test stage in ZL_BUILD_DIR/tests

    @property
    def in_topic(self) -> str:
        return self.prefix + self.IN

    @property
    def out_topic(self) -> str:
        return self.prefix + self.OUT

    @property
    def dlq_topic(self) -> str:
        return self.prefix + self.STAGE + ".dlq"

    def binary_path(self) -> Path:
        if self.BINARY is None:
            return Path(need_env("ZL_BUILD_DIR")) / "tests" / "zl-passthrough"
        return Path(need_env("ZL_BIN_DIR")) / self.BINARY

    def produce(self, deposits: list[dict], key: str | None = None) -> None:
        lines = [f"{key or d['deposit_id']}\t{json.dumps(d)}" for d in deposits]
        kcat("-P", "-t", self.in_topic, "-K", "\t", "-X", "acks=all", data="\n".join(lines) + "\n")

    def produce_raw(self, key: str, value: str) -> None:
        kcat("-P", "-t", self.in_topic, "-K", "\t", data=f"{key}\t{value}\n")

    def start(self, name: str, **extra_env: str) -> subprocess.Popen:
        env = dict(self.env)
        env.update({k: str(v) for k, v in extra_env.items()})
        env["ZL_HTTP_PORT_FILE"] = str(self.workdir / f"{name}.port")
        log = open(self.workdir / f"{name}.log", "ab")
        p = subprocess.Popen([str(self.binary_path())], env=env, stdout=log, stderr=log, start_new_session=True)
        log.close()
        p.zl_name = name
        self.procs.append(p)
        return p

    def http_port(self, name: str, timeout_s: float = 20) -> int:
        path = self.workdir / f"{name}.port"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if path.exists() and path.read_text().strip():
                return int(path.read_text())
            time.sleep(0.1)
        raise AssertionError(f"{name} wrote no HTTP port file")

    def stop_all(self) -> None:
        """Kills every worker still running, then fails if any worker's log
        shows a sanitizer report (make check runs these tests under
        ASan+UBSan, and a finding must fail the test, not hide in a log)."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=10)
        for p in self.procs:
            text = self.log(p.zl_name)
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                if marker in text:
                    at = text.index(marker)
                    raise AssertionError(f"sanitizer report in {p.zl_name}'s log:\n{text[at:at + 3000]}")

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def outputs(self) -> list[dict]:
        """Every message on the output topic, decoded (duplicates kept)."""
        out = kcat("-C", "-t", self.out_topic, "-o", "beginning", "-e", "-q", "-f", "%s\n")
        return [json.loads(v) for v in out.splitlines() if v]

    def output_deposit_ids(self) -> list[str]:
        """deposit_id of every message on the output topic (duplicates kept)."""
        out = kcat("-C", "-t", self.out_topic, "-o", "beginning", "-e", "-q", "-f", "%s\n")
        return [json.loads(v)["deposit_id"] for v in out.splitlines() if v]

    def dlq_messages(self) -> list[dict]:
        """Each DLQ message's key and headers, as kcat shows them to operators."""
        out = kcat("-C", "-t", self.dlq_topic, "-o", "beginning", "-e", "-q", "-f", "%k|%h\x1e")
        msgs = []
        for rec in out.split("\x1e"):
            if not rec.strip():
                continue
            key, _, hdrs = rec.partition("|")
            headers = {}
            for pair in hdrs.split(","):
                name, _, value = pair.partition("=")
                headers[name] = value
            msgs.append({"key": key, "headers": headers})
        return msgs


def states(ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    arr = "{" + ",".join(ids) + "}"
    rows = psql("SELECT deposit_id, state FROM deposits WHERE deposit_id = ANY(:'v1'::text[])", arr)
    return {r[0]: r[1] for r in rows}


def effects(ids: list[str]) -> dict[str, int]:
    arr = "{" + ",".join(ids) + "}"
    rows = psql("SELECT deposit_id, n FROM pt_effects WHERE deposit_id = ANY(:'v1'::text[])", arr)
    return {r[0]: int(r[1]) for r in rows}


def wait_until(pred, timeout_s: float, what: str, interval_s: float = 0.25):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")

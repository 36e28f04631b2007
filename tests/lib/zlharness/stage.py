"""One stage on a topic prefix of its own, and the test deposits it eats.

Each test gets its own topic prefix and consumer group, so tests never see
each other's messages, and its own random deposit ids, so rows never collide.
"""
import os
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .chain import CHAIN_ID
from .env import need_env
from .kafka import consume, consume_json, create_topics, keyed_headers, kcat, produce_deposits
from .pg import psql
from .procs import ProcessGroup
from .web import http_get

# The short tiers and waits of a test worker: its retries and outage
# probes happen within seconds.
TEST_TIMINGS = {
    "ZL_RETRY_TIERS_MS": "500,1000",
    "ZL_OUTAGE_CAP_MS": "1000",
    "ZL_INPLACE_BASE_MS": "10",
    "ZL_INPLACE_CAP_MS": "50",
    "ZL_LOG_LEVEL": "info",
}


def new_tx_hash(tag: str = "") -> str:
    """A random 32-byte hash ending in tag (hex), as on a chain."""
    return "0x" + (uuid.uuid4().hex + uuid.uuid4().hex)[:64 - len(tag)] + tag


def new_deposit(user_id: str = "u1", tx: str | None = None) -> dict:
    """A zl.deposits.detected/v1 event with a fresh random id."""
    tx = tx or new_tx_hash()
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


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58(raw: bytes) -> str:
    """Bitcoin-alphabet base58, as Solana writes keys and signatures."""
    n = int.from_bytes(raw, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def new_sol_deposit(user_id: str = "u1", cluster: str = "localnet", place: str = "2") -> dict:
    """A Solana zl.deposits.detected/v1 event with a fresh random signature
    (issue 22): "chain" instead of chain_id, "instruction" instead of
    log_index, no block_hash, base58 keys."""
    sig = b58(os.urandom(64))
    return {
        "schema": "zl.deposits.detected/v1",
        "event_id": str(uuid.uuid4()),
        "deposit_id": f"{cluster}:{sig}:{place}",
        "chain": cluster,
        "tx_hash": sig,
        "instruction": place,
        "block_number": 4242,
        "token": "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB",
        "from": b58(b"\x02" * 32),
        "to": b58(b"\x03" * 32),
        "user_id": user_id,
        "amount": "1000000",
        "occurred_at": "2026-11-23T10:00:00.000Z",
    }


def _sql_or_null(v) -> str:
    return "NULL" if v is None else f"'{v}'" if isinstance(v, str) else str(v)


def insert_rows(deposits: list[dict], dsn: str | None = None) -> None:
    """What the detector does first: the row exists before any event
    (in the database of dsn, default ZL_PG_DSN). A Solana deposit's row has
    no chain_id, log_index or block_hash."""
    values = ",".join(
        f"('{d['deposit_id']}', {_sql_or_null(d.get('chain_id'))}, '{d['tx_hash']}',"
        f" {_sql_or_null(d.get('log_index'))}, {d['block_number']},"
        f" {_sql_or_null(d.get('block_hash'))}, '{d['token']}', '{d['from']}', '{d['to']}', '{d['user_id']}',"
        f" {d['amount']}, '{d['occurred_at']}')" for d in deposits)
    # Test data only (hex ids and fixed strings we generated), not user input.
    psql("INSERT INTO deposits (deposit_id, chain_id, tx_hash, log_index, block_number, block_hash, token,"
         " from_addr, to_addr, user_id, amount, occurred_at) VALUES " + values, dsn=dsn)


def id_array(ids: list[str]) -> str:
    """ids as a PostgreSQL array literal (our ids hold no commas, braces,
    quotes or spaces)."""
    return "{" + ",".join(ids) + "}"


def states(ids: list[str], dsn: str | None = None) -> dict[str, str]:
    if not ids:
        return {}
    rows = psql("SELECT deposit_id, state FROM deposits WHERE deposit_id = ANY(:'v1'::text[])", id_array(ids),
                dsn=dsn)
    return {r[0]: r[1] for r in rows}


def effects(ids: list[str], dsn: str | None = None) -> dict[str, int]:
    rows = psql("SELECT deposit_id, n FROM pt_effects WHERE deposit_id = ANY(:'v1'::text[])", id_array(ids),
                dsn=dsn)
    return {r[0]: int(r[1]) for r in rows}


def stage_env(prefix: str, group: str | None = None, brokers: str | None = None, dsn: str | None = None,
              **settings: str) -> dict:
    """A test worker's whole environment (nothing inherited but PATH):
    the shared services, the topic prefix, TEST_TIMINGS, then settings."""
    env = {
        "PATH": os.environ["PATH"],
        "ZL_KAFKA_BROKERS": brokers or need_env("ZL_KAFKA_BROKERS"),
        "ZL_PG_DSN": dsn or need_env("ZL_PG_DSN"),
        "ZL_TOPIC_PREFIX": prefix,
    }
    if group:
        env["ZL_GROUP_ID"] = group
    env.update(TEST_TIMINGS)
    env.update({k: str(v) for k, v in settings.items()})
    return env


@dataclass
class StagePipeline(ProcessGroup):
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

    def binary_path(self, binary: str | None = None) -> Path:
        binary = binary or self.BINARY
        if binary is None:
            return Path(need_env("ZL_BUILD_DIR")) / "tests" / "zl-passthrough"
        return Path(need_env("ZL_BIN_DIR")) / binary

    def produce(self, deposits: list[dict], key: str | None = None, partition: int | None = None) -> None:
        produce_deposits(self.in_topic, deposits, key, partition=partition)

    def produce_raw(self, key: str, value: str, partition: int | None = None) -> None:
        where = ["-p", str(partition)] if partition is not None else []
        kcat("-P", "-t", self.in_topic, *where, "-K", "\t", data=f"{key}\t{value}\n")

    def start(self, name: str, binary: str | None = None, **extra_env: str) -> subprocess.Popen:
        """A worker named name (its log and port file in workdir); binary:
        another zeroloss binary on the same env (a tool), default the stage."""
        env = dict(self.env)
        env.update({k: str(v) for k, v in extra_env.items()})
        return self.launch(name, [self.binary_path(binary)], env)

    def metrics(self, name: str) -> str:
        return http_get(f"http://127.0.0.1:{self.http_port(name)}/metrics")[1].decode()

    def ready(self, name: str) -> int:
        """The HTTP status of the worker's /health/ready (503 while paused)."""
        return http_get(f"http://127.0.0.1:{self.http_port(name)}/health/ready")[0]

    def outputs(self) -> list[dict]:
        """Every message on the output topic, decoded (duplicates kept)."""
        return consume_json(self.out_topic)

    def output_deposit_ids(self) -> list[str]:
        """deposit_id of every message on the output topic (duplicates kept)."""
        return [d["deposit_id"] for d in self.outputs()]

    def dlq_messages(self) -> list[dict]:
        """Each DLQ message's key and headers, as kcat shows them to operators."""
        return keyed_headers(self.dlq_topic)

    def dlq_keys(self) -> list[str]:
        return [k for k in consume(self.dlq_topic, "%k\n").splitlines() if k]


def new_stage_pipeline(cls, workdir: Path, stages: str, letter: str = "t", partitions: int = 3,
                       brokers: str | None = None, dsn: str | None = None, **settings: str):
    """cls (a StagePipeline) on a fresh topic prefix `<letter><hex>.` with
    its topics created and a consumer group of its own (a killed worker of
    one test must not slow the next test's rebalances); the caller stops
    it with stop_all()."""
    prefix = f"{letter}{uuid.uuid4().hex[:10]}."
    env = stage_env(prefix, f"zl-{stages}-{prefix}", brokers, dsn, **settings)
    create_topics(env, stages, partitions)
    return cls(prefix=prefix, workdir=workdir, env=env)

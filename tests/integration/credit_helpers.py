"""Helpers for the credit stage's tests: a database of their own (the audit
test plants discrepancies, which must never reach the shared database other
suites audit), minted rows and events, and a credit pipeline.
"""
import os
import random
import secrets
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from conftest import need_env
from runtime_helpers import new_deposit
from zlharness.env import REPO  # noqa: F401 (names other tests import from here)
from zlharness.kafka import kcat  # noqa: F401
from zlharness.pg import create_database as create_db
from zlharness.pg import drop_database, dsn_for, local_dsn, migrate  # noqa: F401
from zlharness.pg import psql
from zlharness.procs import wait_until
from zlharness.services import local_env, services
from zlharness.stage import StagePipeline, new_stage_pipeline, states

B32 = "abcdefghijklmnopqrstuvwxyz234567"
UINT256_MAX = 2**256 - 1


def psql_at(dsn: str, sql: str, *params: str, check: bool = True) -> list[list[str]]:
    """One statement on dsn; parameters are psql variables (:'v1'), quoted by psql."""
    return psql(sql, *params, dsn=dsn, check=check)


def create_database() -> tuple[str, str]:
    """A fresh database on the shared server with every migration applied."""
    name = "zl_credit_" + uuid.uuid4().hex[:10]
    return name, create_db(name)


_RC = [0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000, 0x000000000000808B,
       0x0000000080000001, 0x8000000080008081, 0x8000000000008009, 0x000000000000008A, 0x0000000000000088,
       0x0000000080008009, 0x000000008000000A, 0x000000008000808B, 0x800000000000008B, 0x8000000000008089,
       0x8000000000008003, 0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
       0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008]
_ROT = [[0, 36, 3, 41, 18], [1, 44, 10, 45, 2], [62, 6, 43, 15, 61], [28, 55, 25, 21, 56], [27, 20, 39, 8, 14]]
_M64 = 2**64 - 1


def _keccak_f(a):
    for rc in _RC:
        c = [a[x][0] ^ a[x][1] ^ a[x][2] ^ a[x][3] ^ a[x][4] for x in range(5)]
        d = [c[(x - 1) % 5] ^ (((c[(x + 1) % 5] << 1) | (c[(x + 1) % 5] >> 63)) & _M64) for x in range(5)]
        a = [[a[x][y] ^ d[x] for y in range(5)] for x in range(5)]
        b = [[0] * 5 for _ in range(5)]
        for x in range(5):
            for y in range(5):
                r = _ROT[x][y]
                b[y][(2 * x + 3 * y) % 5] = ((a[x][y] << r) | (a[x][y] >> (64 - r))) & _M64 if r else a[x][y]
        a = [[b[x][y] ^ ((~b[(x + 1) % 5][y]) & b[(x + 2) % 5][y]) for y in range(5)] for x in range(5)]
        a[0][0] ^= rc
    return a


def keccak256(data: bytes) -> bytes:
    """Ethereum's Keccak-256 (padding 0x01, not SHA3's 0x06), for token ids."""
    rate = 136
    msg = bytearray(data) + b"\x01" + b"\x00" * ((-len(data) - 1) % rate)
    msg[-1] |= 0x80
    a = [[0] * 5 for _ in range(5)]
    for off in range(0, len(msg), rate):
        block = msg[off:off + rate]
        for i in range(rate // 8):
            a[i % 5][i // 5] ^= int.from_bytes(block[8 * i:8 * i + 8], "little")
        a = _keccak_f(a)
    return b"".join(a[i % 5][i // 5].to_bytes(8, "little") for i in range(4))


def minted_deposit(user_id: str, amount: int, token: str) -> dict:
    """A zl.nft.minted/v1 event with plausible stage fields."""
    d = new_deposit(user_id)
    d["schema"] = "zl.nft.minted/v1"
    d["token"] = token
    d["amount"] = str(amount)
    d["from"] = "0x" + secrets.token_hex(20)
    d["confirmations"] = 12
    cid = "bafkrei" + "".join(random.choice(B32) for _ in range(52))
    d["metadata_cid"] = cid
    d["token_uri"] = "ipfs://" + cid
    d["mint_tx_hash"] = "0x" + secrets.token_hex(32)
    d["token_id"] = str(int.from_bytes(keccak256(d["deposit_id"].encode()), "big"))
    d["nft_contract"] = "0x" + "44" * 20
    return d


def insert_minted_rows(dsn: str, deposits: list[dict]) -> None:
    """The rows as the mint stage leaves them: state minted with its results."""
    for d in deposits:
        psql_at(dsn,
                "INSERT INTO deposits (deposit_id, chain_id, tx_hash, log_index, block_number, block_hash, token,"
                " from_addr, to_addr, user_id, amount, occurred_at, state, confirmations, metadata_cid, token_uri,"
                " nft_contract, token_id, mint_tx_hash) VALUES (:'v1', :'v2', :'v3', :'v4', :'v5', :'v6', :'v7',"
                " :'v8', :'v9', :'v10', :'v11', :'v12', 'minted', 12, :'v13', :'v14', :'v15', :'v16', :'v17')",
                d["deposit_id"], str(d["chain_id"]), d["tx_hash"], str(d["log_index"]), str(d["block_number"]),
                d["block_hash"], d["token"], d["from"], d["to"], d["user_id"], d["amount"], d["occurred_at"],
                d["metadata_cid"], d["token_uri"], d["nft_contract"], d["token_id"], d["mint_tx_hash"])


def expected_eggs(amount: int, rate: str, decimals: int = 18) -> int:
    """floor(amount * rate / 10^decimals) with Python integers only."""
    whole, _, frac = rate.partition(".")
    r = int(whole + frac)
    return amount * r // 10 ** (decimals + len(frac))


@dataclass
class CreditPipeline(StagePipeline):
    """One isolated credit pipeline on the database dsn."""
    dsn: str = ""

    STAGE = "credit"
    IN = "nft.minted"
    OUT = "credits.applied"
    BINARY = "credit"

    def sql(self, statement: str, *params: str, check: bool = True) -> list[list[str]]:
        return psql_at(self.dsn, statement, *params, check=check)

    def dlq(self) -> list[dict]:
        return self.dlq_messages()

    def states(self, ids: list[str]) -> dict[str, str]:
        return states(ids, dsn=self.dsn)

    def entries(self, ids: list[str]) -> list[dict]:
        rows = self.sql("SELECT deposit_id, kind, entry_id, credit_id, account_id, amount, rate, rate_source"
                        " FROM ledger_entries WHERE deposit_id = ANY(:'v1'::text[])", "{" + ",".join(ids) + "}")
        keys = ["deposit_id", "kind", "entry_id", "credit_id", "account_id", "amount", "rate", "rate_source"]
        return [dict(zip(keys, r)) for r in rows]

    def audit(self, **extra_env: str) -> subprocess.CompletedProcess:
        env = dict(os.environ, ZL_PG_DSN=self.dsn)
        env.update(extra_env)
        return subprocess.run([str(Path(need_env("ZL_BIN_DIR")) / "zl-audit")], env=env, capture_output=True,
                              text=True, timeout=60)


def new_pipeline(dsn: str, workdir: Path) -> CreditPipeline:
    p = new_stage_pipeline(CreditPipeline, workdir, "credit", letter="c", dsn=dsn, ZL_RETRY_TIERS_MS="300,600",
                           ZL_BATCH_SIZE_MAX="50")
    p.dsn = dsn
    return p


def wait_for(pred, timeout_s: float, what: str, interval_s: float = 0.2):
    return wait_until(pred, timeout_s, what, interval_s)


def insert_minted_rows_bulk(dsn: str, deposits: list[dict]) -> None:
    """insert_minted_rows for hundreds of rows: one COPY instead of one psql
    per row. The values are our own hex, digits and timestamps (no tabs,
    backslashes or newlines), so COPY's text format needs no escaping."""
    cols = ["deposit_id", "chain_id", "tx_hash", "log_index", "block_number", "block_hash", "token", "from_addr",
            "to_addr", "user_id", "amount", "occurred_at", "state", "confirmations", "metadata_cid", "token_uri",
            "nft_contract", "token_id", "mint_tx_hash"]
    keys = ["deposit_id", "chain_id", "tx_hash", "log_index", "block_number", "block_hash", "token", "from", "to",
            "user_id", "amount", "occurred_at", None, "confirmations", "metadata_cid", "token_uri", "nft_contract",
            "token_id", "mint_tx_hash"]
    lines = []
    for d in deposits:
        vals = ["minted" if k is None else str(d[k]) for k in keys]
        assert not any(ch in v for v in vals for ch in "\t\n\\"), vals
        lines.append("\t".join(vals))
    script = f"COPY deposits ({', '.join(cols)}) FROM STDIN;\n" + "\n".join(lines) + "\n\\.\n"
    psql_at(dsn, script)


class OwnPostgres:
    """A PostgreSQL server of the test's own, from the project's services
    script in a folder of its own (ZL_LOCAL_DIR), with every migration
    applied, so a test may stop and restart it without disturbing the shared
    one. Stopped by that script (by pid) and its folder removed in close().

    The folder is made outside pytest's per-user temp tree (mode 0700): the
    script runs the server as the postgres user when we are root, and that
    user must be able to reach its data directory."""

    def __init__(self):
        self.local = Path(tempfile.mkdtemp(prefix="zl-credit-pg-"))
        self.local.chmod(0o755)
        self.env = local_env(self.local)
        self.started = False

    def svc(self, *args: str) -> None:
        services(*args, env=self.env, timeout=120)

    def start(self) -> None:
        self.started = True
        self.svc("start", "postgres")

    def stop(self) -> None:
        self.svc("stop", "postgres")

    @property
    def dsn(self) -> str:
        return local_dsn(self.local)

    def migrate(self) -> None:
        migrate(self.dsn)

    def close(self) -> None:
        try:
            if self.started:
                self.stop()
        finally:
            shutil.rmtree(self.local, ignore_errors=True)

"""The mint stage against a database whose mint migration (004_mint.sql, the
nonce store) was never applied: a person must act, nothing is wrong with
the deposit, so mint pauses (an outage) instead of walking the retry tiers
into the DLQ, and resumes by itself once the migration is applied.

The test runs on a database of its own in the shared server, migrated with
every migration but 004, so the shared database keeps its schema.
"""
import os
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from conftest import REPO, need_env
from ipfs_helpers import http_get
from mint_helpers import chain, insert_pinned_rows, new_pipeline, pinned_deposit, row, signer_txs, token_id  # noqa: F401
from runtime_helpers import kcat, psql, wait_until

SCHEMA_DIR = REPO / "schemas" / "sql"
MINT_MIGRATION = "004_mint.sql"
# How long the paused stage is watched for a DLQ write or a resume.
PAUSE_WATCH_S = 4


def migrate(dsn: str, schema_dir: Path) -> None:
    env = dict(os.environ, ZL_PG_DSN=dsn)
    out = subprocess.run([str(Path(need_env("ZL_BIN_DIR")) / "zl-migrate"), "up", "--dir", str(schema_dir)],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def dlq_keys(topic: str) -> list[str]:
    """Keys on a DLQ topic; none when the topic does not exist."""
    try:
        out = kcat("-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k\n", timeout=30)
    except RuntimeError:
        return []
    return [k for k in out.splitlines() if k]


@pytest.fixture
def database_without_mint_migration(tmp_path, monkeypatch):
    """A fresh database with every migration but 004_mint.sql; ZL_PG_DSN
    points at it for the test (the helpers' psql and the worker's env)."""
    name = f"zl_mig_{uuid.uuid4().hex[:10]}"
    psql(f"CREATE DATABASE {name}")
    base = urlsplit(need_env("ZL_PG_DSN"))
    dsn = urlunsplit(base._replace(path="/" + name))
    partial = tmp_path / "schema-without-mint"
    partial.mkdir()
    for f in sorted(SCHEMA_DIR.glob("*.sql")):
        if f.name != MINT_MIGRATION:
            (partial / f.name).symlink_to(f)
    try:
        migrate(dsn, partial)
        monkeypatch.setenv("ZL_PG_DSN", dsn)
        yield dsn
    finally:
        monkeypatch.undo()
        psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_missing_mint_migration_pauses_mint_and_it_resumes_once_applied(tmp_path, chain,
                                                                          database_without_mint_migration):
    """Guards against a missing migration being the deposit's fault: with
    the nonce tables absent, mint must report not-ready (503), stay paused
    (no resume while the tables are missing), leave the row pinned and put
    nothing in any DLQ; once 004 is applied it must resume on its own and
    mint the deposit exactly once."""
    p = new_pipeline(tmp_path, chain)
    try:
        d = pinned_deposit()
        insert_pinned_rows([d])
        p.produce([d])
        p.start("m")
        port = p.http_port("m")
        ready = lambda: http_get(f"http://127.0.0.1:{port}/health/ready")[0]
        # The outage itself, not the not-ready of a copy still joining its
        # group (under the sanitizers the join and the first batch are
        # seconds apart, and ready is 200 in between).
        wait_until(lambda: "outage: pausing consumption" in p.log("m"), 30, "mint to pause for the outage")
        wait_until(lambda: ready() == 503, 30, "mint to report not-ready")
        deadline = time.monotonic() + PAUSE_WATCH_S
        while time.monotonic() < deadline:
            assert ready() == 503, p.log("m")[-2000:]
            time.sleep(0.2)
        assert row(d["deposit_id"])["state"] == "pinned"
        assert d["deposit_id"] not in dlq_keys(p.dlq_topic)
        assert d["deposit_id"] not in dlq_keys("zl.mint.dlq")
        assert "outage over" not in p.log("m"), p.log("m")[-2000:]

        migrate(database_without_mint_migration, SCHEMA_DIR)
        wait_until(lambda: row(d["deposit_id"]).get("state") == "minted", 60, "minted after the migration")
        assert chain.owner_of(chain.nft, token_id(d["deposit_id"])) == d["from"]
        txs = signer_txs(p.signer)
        assert [(t["purpose"], t["status"], t["receipt_status"]) for t in txs] == [("mint", "mined", 1)], txs
        assert chain.nonce(p.signer) == 1
        wait_until(lambda: d["deposit_id"] in p.output_deposit_ids(), 30, "the mint published")
        assert p.output_deposit_ids() == [d["deposit_id"]]
        assert d["deposit_id"] not in dlq_keys(p.dlq_topic)
        assert d["deposit_id"] not in dlq_keys("zl.mint.dlq")
        wait_until(lambda: ready() == 200, 30, "mint ready again")
    finally:
        p.stop_all()

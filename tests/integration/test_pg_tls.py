"""PostgreSQL with sslmode=verify-full, the DSN docs/deploy.md gives, end to
end through zl-migrate and a stage worker, and the ways a client must fail:
a CA it does not trust, a server whose certificate names another host. libpq
never retries without TLS under verify-full; the server here would refuse
such a retry anyway (hostnossl reject), so a client error naming the
certificate, not pg_hba, shows no plaintext attempt was what failed.

This module starts a SECOND real PostgreSQL (zlharness.pg_tls.TlsPostgres:
initdb in a folder of its own, TLS only, certificates made here with
openssl, stopped by pid even when a test fails). Kafka is the shared dev
broker.
"""
import os
import subprocess
import urllib.parse
import uuid

import pytest

from conftest import need_env
from zlharness.env import SCHEMA_DIR
from zlharness.kafka import produce_deposits
from zlharness.pg import ensure_pt_effects, psql
from zlharness.pg_tls import TlsPostgres
from zlharness.procs import running, wait_until
from zlharness.stage import StagePipeline, effects, insert_rows, new_deposit, new_stage_pipeline, states
from zlharness.tls import deploy_doc_blocks, make_ca

DEPOSITS = 5
# A refused client must say so at once, not hang.
GIVE_UP_S = 20
# libpq's words for each failure (libpq 15).
UNTRUSTED = "certificate verify failed"
NAME_MISMATCH = "does not match host name"
# pg_hba's words for a plaintext connection: never what a TLS client should see.
PLAINTEXT_REFUSED = "no encryption"


@pytest.fixture(scope="module")
def server():
    with running(TlsPostgres()) as s:
        yield s


@pytest.fixture(scope="module")
def stranger_ca(tmp_path_factory):
    return make_ca(tmp_path_factory.mktemp("stranger-ca"), "stranger")


def zl_migrate(dsn: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "ZL_PG_DSN": dsn, "ZL_SCHEMA_DIR": str(SCHEMA_DIR)}
    return subprocess.run([os.path.join(need_env("ZL_BIN_DIR"), "zl-migrate")], env=env, capture_output=True,
                          text=True, timeout=GIVE_UP_S)


def refused(dsn: str) -> str:
    """zl-migrate with dsn must exit non-zero; its output."""
    out = zl_migrate(dsn)
    text = out.stdout + out.stderr
    assert out.returncode != 0, f"zl-migrate connected where it must not:\n{text[-3000:]}"
    assert PLAINTEXT_REFUSED not in text, f"the client tried plaintext:\n{text[-3000:]}"
    return text


def test_migrate_and_stage_worker_over_verify_full(server, tmp_path):
    """Guards against a DSN's TLS parameters (sslmode, sslrootcert) being
    dropped or rewritten by our binaries: zl-migrate builds the schema and
    the passthrough stage applies and marks deposits, each over a TLS-only
    server, with the certificate chain and the host name checked."""
    dsn = server.dsn()
    out = zl_migrate(dsn)
    assert out.returncode == 0, f"zl-migrate failed over verify-full: {out.stderr}"
    ssl = psql("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()", dsn=dsn)
    assert ssl[0][0] == "t", f"psql's session is not encrypted: {ssl}"
    ensure_pt_effects(dict(os.environ, ZL_PG_DSN=dsn))

    stage = new_stage_pipeline(StagePipeline, tmp_path, "passthrough", letter="p", dsn=dsn)
    deposits = [new_deposit() for _ in range(DEPOSITS)]
    ids = [d["deposit_id"] for d in deposits]
    insert_rows(deposits, dsn=dsn)
    produce_deposits(stage.in_topic, deposits)
    stage.start("w")
    try:
        wait_until(lambda: states(ids, dsn) == {i: "verified" for i in ids}, 45,
                   "every deposit verified in the TLS-only database")
        assert effects(ids, dsn) == {i: 1 for i in ids}
        # Each of the worker's sessions (hostnossl is rejected, so all are
        # TLS) shows in pg_stat_ssl under its application name.
        sessions = psql("SELECT a.application_name, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s"
                        " ON s.pid = a.pid WHERE a.backend_type = 'client backend'"
                        " AND a.pid <> pg_backend_pid()", dsn=dsn)
        assert sessions and all(r[1] == "t" for r in sessions), f"a session without TLS: {sessions}"
        wait_until(lambda: sorted(stage.output_deposit_ids()) == sorted(ids), 20, "every deposit published")
    finally:
        stage.stop_all()


def test_server_refuses_plaintext(server):
    """Guards against the fixture proving nothing: the server rejects a
    client that does not speak TLS, so every success above was TLS."""
    out = zl_migrate(server.dsn(sslmode="disable"))
    assert out.returncode != 0, "the TLS-only server served a plaintext client"
    assert PLAINTEXT_REFUSED in out.stderr, f"not refused by pg_hba: {out.stderr[-3000:]}"


def test_untrusted_ca_fails_loudly(server, stranger_ca):
    """Guards against a man in the middle with a certificate from another
    CA: verify-full with a root the server's certificate does not chain to
    must fail on the certificate, in zl-migrate and in a stage worker (which
    pauses as an outage, not ready, naming the cause in its log)."""
    dsn = server.dsn(ca=stranger_ca.crt)
    text = refused(dsn)
    assert UNTRUSTED in text, f"no certificate error in:\n{text[-3000:]}"


def test_stage_worker_with_an_untrusted_ca_pauses_and_says_why(server, stranger_ca, tmp_path):
    """Guards against a stage that, unable to verify the database, carries
    on or crashes quietly: it must stay not ready and log the certificate
    error, and no deposit moves."""
    dsn = server.dsn(ca=stranger_ca.crt)
    stage = new_stage_pipeline(StagePipeline, tmp_path, "passthrough", letter="p", dsn=dsn)
    deposit = new_deposit()
    insert_rows([deposit], dsn=server.dsn())
    produce_deposits(stage.in_topic, [deposit])
    stage.start("w")
    try:
        wait_until(lambda: UNTRUSTED in stage.log("w"), GIVE_UP_S, "the certificate error in the worker's log")
        assert stage.ready("w") == 503, "the worker reports ready without a database"
        assert states([deposit["deposit_id"]], server.dsn()) == {deposit["deposit_id"]: "detected"}
    finally:
        stage.stop_all()


def test_host_name_mismatch_fails_loudly(server):
    """Guards against checking the chain only (sslmode=verify-ca): a
    certificate from the right CA but for another host must be refused.
    hostaddr reaches the real server while libpq checks the name `host`."""
    other = f"db-{uuid.uuid4().hex[:6]}.example"
    text = refused(server.dsn(host=other, hostaddr="127.0.0.1"))
    assert NAME_MISMATCH in text and other in text, f"no host name error in:\n{text[-3000:]}"


def test_docs_show_the_dsn_these_tests_prove(server):
    """Guards against docs/deploy.md drifting from what is tested: its
    verify-full DSN carries exactly the TLS parameters the tests use."""
    def params(dsn: str) -> dict:
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(dsn).query))
    shown = [params(line) for block in deploy_doc_blocks() for line in block.splitlines()
             if line.startswith("postgresql://") and "sslmode=" in line]
    assert shown, "docs/deploy.md shows no DSN with sslmode"
    tested = params(server.dsn())
    assert set(shown[0]) == set(tested) and shown[0]["sslmode"] == tested["sslmode"] == "verify-full", \
        f"docs show {shown[0]}, tests use {tested}"

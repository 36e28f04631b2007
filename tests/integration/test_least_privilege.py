"""Least privilege (issue 17): each stage and tool has a database role and a
Kafka principal of its own, granted only what it does, so a stage that is
taken over cannot write another stage's part of the state: ipfs-upload
cannot write the ledger, verify cannot publish pinned NFTs.

The database half uses schemas/sql/009_roles.sql in a database of its own,
with LOGIN roles that are members of the group roles (as docs/deploy.md
tells operators to do). The Kafka half starts a broker of its own
(test_kafka_sasl's SaslBroker: KRaft, SASL/PLAIN, one user per stage) with
KRaft's StandardAuthorizer denying whatever no ACL allows, applies
deploy/kafka/acls.sh, and produces and consumes as the stages' principals."""
import os
import random
import subprocess
import urllib.parse
import uuid

import pytest

from credit_helpers import B32, insert_minted_rows, minted_deposit, new_pipeline, wait_for
from conftest import REPO, need_env
from ipfs_helpers import IMAGE_FILE, IpfsPipeline, insert_verified_rows, rows, verified_deposit
from test_credit import db  # noqa: F401  (the module's own database, a fixture)
from test_kafka_sasl import ADMIN_PASSWORD, ADMIN_USER, SaslBroker, sasl_props, write_props_file, zl_topics
from zlharness.pg import migrate, psql
from zlharness.procs import wait_until
from zlharness.stage import new_stage_pipeline

TOKEN = "0x" + "5b" * 20


@pytest.fixture
def login_role(db):
    """login_role("zl_credit") -> the DSN (on the module's database, or on
    dsn) of a new LOGIN role that is a member of that group role and of
    nothing else; dropped afterwards."""
    made = []

    def make(group: str, dsn: str | None = None) -> str:
        dsn = dsn or db
        name = f"zlt_{group}_{uuid.uuid4().hex[:8]}"
        psql(f'CREATE ROLE "{name}" LOGIN IN ROLE {group}', dsn=db)
        made.append(name)
        u = urllib.parse.urlsplit(dsn)
        host = u.netloc.rsplit("@", 1)[-1]
        return urllib.parse.urlunsplit((u.scheme, f"{name}@{host}", u.path, u.query, u.fragment))

    yield make
    for name in made:
        psql(f'DROP ROLE IF EXISTS "{name}"', dsn=db, check=False)


def as_role(dsn: str, sql: str, *params: str) -> str:
    """Runs sql as the role of dsn; "" when it worked, else psql's error."""
    out = psql(sql, *params, dsn=dsn, check=False)
    return out[0][1] if out and out[0][0] == "ERROR" else ""


LEDGER_INSERT = ("INSERT INTO ledger_entries (entry_id, credit_id, deposit_id, kind, account_id, amount, token_amount,"
                 " token_decimals, rate, rate_source) VALUES (gen_random_uuid(), gen_random_uuid(), :'v1',"
                 " 'user_credit', 'user:mallory', 1, 1000000000000000000, 18, 1, 'static')")


def a_minted_row(db: str) -> dict:
    dep = minted_deposit(f"u-{uuid.uuid4().hex[:8]}", 10**18, TOKEN)
    insert_minted_rows(db, [dep])
    return dep


def test_the_ipfs_upload_role_cannot_write_the_ledger_but_can_do_its_own_work(db, login_role):
    """Guards against every stage sharing one all-powerful database role: a
    taken-over ipfs-upload could credit anyone anything."""
    dep = a_minted_row(db)
    iu = login_role("zl_ipfs_upload")
    err = as_role(iu, LEDGER_INSERT, dep["deposit_id"])
    assert "permission denied" in err and "ledger_entries" in err, err
    err = as_role(iu, "UPDATE ledger_accounts SET balance = balance + 1")
    assert "permission denied" in err, err
    # Nor another stage's columns of the row.
    err = as_role(iu, "UPDATE deposits SET credit_id = gen_random_uuid() WHERE deposit_id = :'v1'", dep["deposit_id"])
    assert "permission denied" in err, err
    err = as_role(iu, "UPDATE deposits SET token_id = 7 WHERE deposit_id = :'v1'", dep["deposit_id"])
    assert "permission denied" in err, err
    # What ipfs-upload does (workers/ipfs-upload, common/state.c): it reads
    # the row, records its images and the metadata CID and URI, moves the
    # row's state (the history row is the trigger's to write).
    assert as_role(iu, "SELECT state FROM deposits WHERE deposit_id = :'v1'", dep["deposit_id"]) == ""
    cid = "bafkrei" + "".join(random.choice(B32) for _ in range(52))
    assert as_role(iu, "INSERT INTO ipfs_images (cid, providers, tier, bytes, source) VALUES (:'v1', 'kubo', 'hot',"
                       " 10, 'test') ON CONFLICT (cid, providers) DO NOTHING", cid) == ""
    assert as_role(iu, "SELECT 1 FROM ipfs_images WHERE cid = :'v1'", cid) == ""
    assert as_role(iu, "UPDATE deposits SET metadata_cid = :'v2', token_uri = 'ipfs://' || :'v2', updated_at = now()"
                       " WHERE deposit_id = :'v1'", dep["deposit_id"], cid) == ""
    history = lambda: int(psql("SELECT count(*) FROM deposit_history WHERE deposit_id = :'v1'",  # noqa: E731
                               dep["deposit_id"], dsn=db)[0][0])
    before = history()
    assert as_role(iu, "UPDATE deposits SET state = 'pinned', attempts = 0, last_error = NULL,"
                       " next_attempt_at = NULL, updated_at = now() WHERE deposit_id = :'v1'", dep["deposit_id"]) == ""
    assert history() == before + 1, "the state change left no history row"
    # It cannot write the history by hand either.
    err = as_role(iu, "INSERT INTO deposit_history (deposit_id, to_state) VALUES (:'v1', 'credited')",
                  dep["deposit_id"])
    assert "permission denied" in err, err


def test_the_credit_role_can_write_the_ledger_and_nothing_of_the_operators(db, login_role):
    """Guards against grants too narrow for the stage that owns the ledger,
    and against a stage able to forge the operators' audit trail."""
    dep = a_minted_row(db)
    cr = login_role("zl_credit")
    assert as_role(cr, "BEGIN; INSERT INTO ledger_accounts (account_id, kind, owner, balance)"
                       " VALUES ('user:mallory', 'user', 'mallory', 1); " + LEDGER_INSERT + "; ROLLBACK",
                   dep["deposit_id"]) == ""
    assert as_role(cr, "SELECT rate FROM credit_rates LIMIT 1") == ""
    err = as_role(cr, "INSERT INTO admin_audit (actor, action, reason) VALUES ('alice', 'resolve', 'x')")
    assert "permission denied" in err, err
    err = as_role(cr, "INSERT INTO signer_txs (chain_id) VALUES (1)")
    assert "permission denied" in err, err
    err = as_role(cr, "UPDATE deposits SET metadata_cid = 'x' WHERE deposit_id = :'v1'", dep["deposit_id"])
    assert "permission denied" in err, err


def test_zl_address_registers_and_widens_under_its_own_role(db, login_role):
    """Guards against a grant missing for the late-registration columns (008):
    zl-address under zl_address alone registers an address (the default
    lookback reads detect's cursor: block 100,000 less the default 10,000),
    registers it again from an earlier block (a new seq from the sequence),
    and cannot touch the deposits."""
    dsn = login_role("zl_address")
    psql("INSERT INTO detector_cursor (chain_id, token, block_number, block_hash) VALUES (31337, :'v1', 100000, :'v2')"
         " ON CONFLICT DO NOTHING", TOKEN, "0x" + "ab" * 32, dsn=db)
    addr = "0x" + uuid.uuid4().hex[:8] + "cd" * 16
    binary = os.path.join(need_env("ZL_BIN_DIR"), "zl-address")
    env = dict(os.environ, ZL_PG_DSN=dsn, ZL_CHAIN_ID="31337")
    for extra in ([], ["--since-block", "3"]):
        r = subprocess.run([binary, "add", addr, "u-late", *extra], env=env, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, (extra, r.stdout, r.stderr)
    got = psql("SELECT scan_from_block FROM deposit_addresses WHERE address = :'v1'", addr, dsn=db)
    assert got == [["3"]], got
    assert "permission denied" in as_role(dsn, "UPDATE deposits SET state = 'dead'")


def test_the_credit_stage_credits_under_its_own_role(db, login_role, tmp_path):
    """Guards against grants that miss a statement the stage runs: the credit
    stage, connected as a member of zl_credit only, credits a deposit end to
    end (ledger, row, history, published event)."""
    p = new_pipeline(db, tmp_path)
    try:
        psql("INSERT INTO credit_rates (token, rate, effective_from) VALUES (:'v1', 1000, now() - interval '1 s')"
             " ON CONFLICT DO NOTHING", TOKEN, dsn=db)
        dep = a_minted_row(db)
        p.produce([dep])
        p.start("w1", ZL_PG_DSN=login_role("zl_credit"))
        wait_for(lambda: p.states([dep["deposit_id"]])[dep["deposit_id"]] == "credited", 60, "credited")
        kinds = sorted(e["kind"] for e in p.entries([dep["deposit_id"]]))
        assert kinds == ["system_debit", "user_credit"], kinds
        wait_for(lambda: dep["deposit_id"] in {o["deposit_id"] for o in p.outputs()}, 30, "published")
        assert "permission denied" not in p.log("w1")
    finally:
        p.stop_all()


def test_the_ipfs_upload_stage_pins_under_its_own_role(login_role, tmp_path):
    """Guards against grants that miss a statement ipfs-upload runs: the
    stage, connected as a member of zl_ipfs_upload only, pins deposits end
    to end (images table, the row's CID and URI, the state, the event)."""
    migrate()  # the shared database, where the stage's test rows live
    shared = need_env("ZL_PG_DSN")
    p = new_stage_pipeline(IpfsPipeline, tmp_path, "ipfs-upload", ZL_BATCH_SIZE_MAX="10",
                           ZL_IPFS_PROVIDERS=f"kubo={need_env('ZL_IPFS_API_URL')}",
                           ZL_IPFS_GATEWAY_URLS=need_env("ZL_IPFS_GATEWAY_URLS").split(",")[0],
                           ZL_NFT_IMAGE_FILE=str(IMAGE_FILE))
    try:
        deposits = [verified_deposit(amount=str(10 ** i + i)) for i in range(5)]
        insert_verified_rows(deposits)
        ids = [d["deposit_id"] for d in deposits]
        p.produce(deposits)
        p.start("w", ZL_PG_DSN=login_role("zl_ipfs_upload", shared))
        wait_until(lambda: all(r["state"] == "pinned" and r["cid"] for r in rows(ids).values()), 60,
                   "every deposit pinned")
        wait_until(lambda: {o["deposit_id"] for o in p.outputs()} >= set(ids), 30, "every deposit published")
        assert "permission denied" not in p.log("w")
        assert p.dlq_headers() == []
    finally:
        p.stop_all()


# ---------------------------------------------------------------- Kafka

STAGE_USERS = {"zl-verify": "verify-secret-for-tests", "zl-ipfs-upload": "ipfs-upload-secret-for-tests"}
AUTHORIZER = """\
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
# The controller listener is loopback PLAINTEXT (ANONYMOUS): the broker's own
# calls to its controller come from there.
super.users=User:admin;User:ANONYMOUS
"""
ACL_APPLY_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory):
    """A broker with the authorizer, zeroloss's topics (prefix zl.) and
    deploy/kafka/acls.txt applied by deploy/kafka/acls.sh as the admin."""
    work = tmp_path_factory.mktemp("acl-kafka")
    b = SaslBroker(work, users=STAGE_USERS, extra_properties=AUTHORIZER)
    try:
        b.start()
        admin = sasl_props(ADMIN_USER, ADMIN_PASSWORD)
        env = {"PATH": os.environ["PATH"], "ZL_KAFKA_BROKERS": b.bootstrap, "ZL_PG_DSN": need_env("ZL_PG_DSN"),
               "ZL_TOPIC_PARTITIONS": "1", "ZL_ADMIN_TIMEOUT_MS": "8000",
               "ZL_KAFKA_PROPERTIES_FILE": str(write_props_file(work / "admin.properties", admin))}
        out = zl_topics(env)
        assert out.returncode == 0, f"zl-topics as the admin: {out.stderr}"
        # The ACL tool is a Java client: its properties are Java's, not librdkafka's.
        java_admin = work / "admin-java.properties"
        java_admin.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
                              "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required"
                              f' username="{ADMIN_USER}" password="{ADMIN_PASSWORD}";\n')
        java_admin.chmod(0o600)
        out = subprocess.run([str(REPO / "deploy" / "kafka" / "acls.sh"), b.bootstrap, str(java_admin)],
                             env=dict(os.environ, ZL_TOPIC_PREFIX="zl."), capture_output=True, text=True,
                             timeout=ACL_APPLY_TIMEOUT_S)
        assert out.returncode == 0, f"acls.sh failed:\n{out.stdout}{out.stderr}"
        yield b
    finally:
        b.stop()


def as_principal(b: SaslBroker, user: str, *args: str, data: str | None = None) -> subprocess.CompletedProcess:
    return b.kcat(*args, props=sasl_props(user, STAGE_USERS[user]), data=data)


def produce(b: SaslBroker, user: str, topic: str) -> subprocess.CompletedProcess:
    key = uuid.uuid4().hex
    return as_principal(b, user, "-P", "-t", topic, "-K", "\t", "-X", "acks=all", "-X", "message.timeout.ms=10000",
                        data=f"{key}\t{{\"probe\":\"{key}\"}}\n")


def denied(out: subprocess.CompletedProcess) -> bool:
    return "authorization failed" in (out.stdout + out.stderr).lower()


def test_the_verify_principal_cannot_publish_a_pinned_nft(acl_broker):
    """Guards against every stage sharing one Kafka user: a taken-over verify
    could publish zl.nft.pinned and have mint act on it."""
    out = produce(acl_broker, "zl-verify", "zl.nft.pinned")
    assert out.returncode != 0 and denied(out), f"verify wrote zl.nft.pinned:\n{out.stdout}{out.stderr}"
    out = produce(acl_broker, "zl-verify", "zl.deposits.verified")
    assert out.returncode == 0 and not denied(out), out.stderr
    out = produce(acl_broker, "zl-verify", "zl.verify.dlq")
    assert out.returncode == 0, out.stderr
    out = produce(acl_broker, "zl-verify", "zl.verify.retry.0")
    assert out.returncode == 0, out.stderr
    # Another stage's DLQ or retry tier is not its own.
    assert denied(produce(acl_broker, "zl-verify", "zl.mint.dlq"))
    assert denied(produce(acl_broker, "zl-verify", "zl.credit.retry.0"))


def test_each_principal_reads_only_its_input_in_its_group(acl_broker):
    """Guards against a principal able to read (and so commit offsets past)
    another stage's input."""
    out = as_principal(acl_broker, "zl-verify", "-G", "zl-verify", "-o", "beginning", "-e", "zl.deposits.detected")
    assert out.returncode == 0 and not denied(out), out.stderr
    out = as_principal(acl_broker, "zl-verify", "-C", "-t", "zl.nft.minted", "-o", "beginning", "-e")
    assert denied(out), f"verify read zl.nft.minted:\n{out.stderr}"
    # ipfs-upload writes what verify may not, and not verify's output.
    assert produce(acl_broker, "zl-ipfs-upload", "zl.nft.pinned").returncode == 0
    assert denied(produce(acl_broker, "zl-ipfs-upload", "zl.deposits.verified"))
    out = as_principal(acl_broker, "zl-ipfs-upload", "-C", "-t", "zl.deposits.verified", "-o", "beginning", "-e")
    assert out.returncode == 0 and not denied(out), out.stderr

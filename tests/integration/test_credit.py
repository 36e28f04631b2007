"""The credit stage against the real Kafka and PostgreSQL: every minted
deposit is credited exactly once, in exact integer eggs, with both ledger
entries, the balances and the state change in one transaction; and zl-audit
finds every kind of discrepancy planted by hand.

The module works in a database of its own (created and dropped here), so the
discrepancies planted for the audit never reach the shared database.
The PostgreSQL-restart test goes further: a server of its own (from
deploy/local/services, in a temporary ZL_LOCAL_DIR), so stopping it
disturbs nobody.
"""
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest

from credit_helpers import (UINT256_MAX, OwnPostgres, create_database, drop_database, expected_eggs,
                            insert_minted_rows, insert_minted_rows_bulk, minted_deposit, new_pipeline, wait_for)
from conftest import need_env

TOKEN = "0x" + "5a" * 20
RATE = "1000.5"


@pytest.fixture(scope="module")
def db():
    name, dsn = create_database()
    yield dsn
    drop_database(name)


@pytest.fixture
def pipe(db, tmp_path):
    p = new_pipeline(db, tmp_path)
    yield p
    p.stop_all()


def set_rate(p, token: str, rate: str) -> None:
    p.sql("INSERT INTO credit_rates (token, rate, effective_from) VALUES (:'v1', :'v2'::numeric, now() - interval '1 s')",
          token, rate)


def deposits_for(p, amounts, token=TOKEN, user=None):
    user = user or f"u-{uuid.uuid4().hex[:8]}"
    deps = [minted_deposit(user, a, token) for a in amounts]
    insert_minted_rows(p.dsn, deps)
    return deps


def assert_credited_once(p, deps, rate=RATE):
    """Exactly one balanced entry pair per deposit, exact eggs, the row
    agreeing with the ledger, and at least one published event each, all
    naming the same credit."""
    ids = [d["deposit_id"] for d in deps]
    entries = p.entries(ids)
    by_dep = {}
    for e in entries:
        by_dep.setdefault(e["deposit_id"], []).append(e)
    for d in deps:
        es = by_dep.get(d["deposit_id"], [])
        kinds = sorted(e["kind"] for e in es)
        assert kinds == ["system_debit", "user_credit"], f"{d['deposit_id']}: entries {kinds}"
        want = expected_eggs(int(d["amount"]), rate)
        uc = next(e for e in es if e["kind"] == "user_credit")
        assert int(uc["amount"]) == want, f"eggs {uc['amount']} != floor(amount*rate/1e18) = {want}"
        assert sum(int(e["amount"]) for e in es) == 0
        assert uc["rate"] == rate
    rows = p.sql("SELECT deposit_id, state, credit_id::text, credit_eggs::text FROM deposits"
                 " WHERE deposit_id = ANY(:'v1'::text[])", "{" + ",".join(ids) + "}")
    credit_of = {}
    for dep_id, state, credit_id, eggs in rows:
        assert state == "credited", f"{dep_id} is {state}"
        uc = next(e for e in by_dep[dep_id] if e["kind"] == "user_credit")
        assert (credit_id, eggs) == (uc["entry_id"], uc["amount"])
        credit_of[dep_id] = (credit_id, eggs, uc["rate"])
    # The row moves before its output is delivered (commit, then publish).
    wait_for(lambda: {o["deposit_id"] for o in p.outputs()} >= set(ids), 30, "every credit published")
    outs = [o for o in p.outputs() if o["deposit_id"] in credit_of]
    assert {o["deposit_id"] for o in outs} == set(ids), "a credited deposit was never published"
    for o in outs:
        assert o["schema"] == "zl.credits.applied/v1"
        assert (o["credit_id"], o["credit_eggs"], o["rate"]) == credit_of[o["deposit_id"]], \
            f"published {o['credit_id']}/{o['credit_eggs']}/{o['rate']} != ledger {credit_of[o['deposit_id']]}"
    return outs


def assert_audit_clean(p):
    out = p.audit()
    assert out.returncode == 0, f"zl-audit found discrepancies:\n{out.stdout}{out.stderr}"
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True and summary["discrepancies"] == 0


def all_credited(p, ids):
    return lambda: list(p.states(ids).values()).count("credited") == len(ids)


def test_credits_exact_rounded_eggs_once_and_balances_add_up(pipe):
    """Guards against eggs computed through a double or rounded up, a credit
    missing one side of its entry pair, and balances drifting from the
    entries: 18-decimal amounts at the rounding edge and the largest uint256."""
    set_rate(pipe, TOKEN, RATE)
    amounts = [10**18, 1, 999, 1999999999999999999, 2 * 10**18 - 1, 123456789012345678901234567890,
               UINT256_MAX, 0, 999500249875062468]
    deps = deposits_for(pipe, amounts)
    ids = [d["deposit_id"] for d in deps]
    pipe.produce(deps)
    pipe.start("w1")
    wait_for(all_credited(pipe, ids), 40, "every deposit credited")
    wait_for(lambda: {o["deposit_id"] for o in pipe.outputs()} >= set(ids), 20, "every credit published")
    assert_credited_once(pipe, deps)
    user = deps[0]["user_id"]
    bal = pipe.sql("SELECT balance::text FROM ledger_accounts WHERE account_id = :'v1'", "user:" + user)
    assert int(bal[0][0]) == sum(expected_eggs(a, RATE) for a in amounts)
    assert_audit_clean(pipe)


def test_duplicates_to_three_parallel_copies_credit_once_and_republish(pipe):
    """Guards against a double credit when the same deposits are delivered
    twice and raced by three copies of the stage, and against a duplicate
    delivery being swallowed instead of re-published from the ledger."""
    set_rate(pipe, TOKEN, RATE)
    deps = deposits_for(pipe, [10**18 + i * 7919 for i in range(30)])
    ids = [d["deposit_id"] for d in deps]
    pipe.produce(deps)
    pipe.produce(deps)
    for n in range(3):
        pipe.start(f"w{n}")
    wait_for(all_credited(pipe, ids), 60, "every deposit credited")
    wait_for(lambda: len([o for o in pipe.outputs() if o["deposit_id"] in set(ids)]) >= 2 * len(ids), 30,
             "both deliveries of every deposit answered")
    assert_credited_once(pipe, deps)
    # A third delivery, long after: re-published from the ledger, not re-credited.
    before = len(pipe.outputs())
    pipe.produce(deps[:5])
    wait_for(lambda: len(pipe.outputs()) >= before + 5, 30, "re-publication of a credited deposit")
    assert_credited_once(pipe, deps)
    assert_audit_clean(pipe)


@pytest.mark.parametrize("point", ["after_db_commit", "before_produce"])
def test_credit_survives_kill_at_fault_point(pipe, point):
    """Guards against loss or a double credit when the worker dies after the
    ledger transaction committed but before its event was published."""
    set_rate(pipe, TOKEN, RATE)
    deps = deposits_for(pipe, [3 * 10**18 + i for i in range(20)])
    ids = [d["deposit_id"] for d in deps]
    pipe.produce(deps)
    w = pipe.start("killed", ZL_FAULT_POINT=point, ZL_FAULT_AFTER="1")
    w.wait(timeout=60)
    assert w.returncode == -signal.SIGKILL, f"worker exited {w.returncode}, expected SIGKILL at {point}"
    pipe.start("restarted")
    wait_for(all_credited(pipe, ids), 60, "every deposit credited after the restart")
    wait_for(lambda: {o["deposit_id"] for o in pipe.outputs()} >= set(ids), 30, "every credit published")
    assert_credited_once(pipe, deps)
    assert_audit_clean(pipe)


def test_permanent_failures_go_to_the_dlq_without_stopping_good_credits(pipe):
    """Guards against a bad deposit crashing the stage or holding up the
    others: no rate for the token, eggs beyond a uint256, and an event whose
    amount differs from its row are dead-lettered with the reason; the good
    deposit in the same batch is credited. The event whose amount differs is
    bad input, not a bad deposit (issue 17, the row is the truth): poison,
    its row left minted, and the genuine event then credits it."""
    set_rate(pipe, TOKEN, RATE)
    unpriced = deposits_for(pipe, [10**18], token="0x" + "77" * 20)
    huge_token = "0x" + "78" * 20
    set_rate(pipe, huge_token, "100000000000000000000")
    overflow = deposits_for(pipe, [UINT256_MAX], token=huge_token)
    tampered = deposits_for(pipe, [10**18])
    good = deposits_for(pipe, [5 * 10**18])
    forged = dict(tampered[0], amount=str(10**21))  # the event claims more than the row holds
    pipe.produce(unpriced + overflow + [forged] + good)
    w = pipe.start("w1")
    bad_ids = [unpriced[0]["deposit_id"], overflow[0]["deposit_id"], tampered[0]["deposit_id"]]
    wait_for(lambda: {m["key"] for m in pipe.dlq()} >= set(bad_ids), 40, "three dead letters")
    wait_for(all_credited(pipe, [good[0]["deposit_id"]]), 20, "the good deposit credited")
    assert w.poll() is None, "the worker died on a bad message"
    reasons = {m["key"]: m["headers"].get("zl-dlq-error", "") for m in pipe.dlq()}
    assert "no rate for token" in reasons[unpriced[0]["deposit_id"]]
    assert "uint256" in reasons[overflow[0]["deposit_id"]]
    assert "amount differs" in reasons[tampered[0]["deposit_id"]]
    classes = {m["key"]: m["headers"].get("zl-dlq-error-class") for m in pipe.dlq()}
    assert set(classes[i] for i in bad_ids[:2]) == {"permanent"}
    assert classes[tampered[0]["deposit_id"]] == "poison"
    assert set(pipe.states(bad_ids[:2]).values()) == {"dead"}
    assert pipe.states([tampered[0]["deposit_id"]]) == {tampered[0]["deposit_id"]: "minted"}
    assert pipe.entries(bad_ids) == [], "a dead-lettered deposit has ledger entries"
    assert_credited_once(pipe, good)
    pipe.produce(tampered)
    wait_for(all_credited(pipe, [tampered[0]["deposit_id"]]), 20, "the genuine event credits the row's amount")
    assert_credited_once(pipe, good + tampered)
    assert_audit_clean(pipe)


def test_negative_balance_is_refused_by_the_check(pipe):
    """Guards against a debit path (refund, spend, manual fix) taking a user
    below zero: the database refuses it with the constraint's name."""
    set_rate(pipe, TOKEN, RATE)
    deps = deposits_for(pipe, [10**18])
    pipe.produce(deps)
    pipe.start("w1")
    wait_for(all_credited(pipe, [deps[0]["deposit_id"]]), 30, "credited")
    acct = "user:" + deps[0]["user_id"]
    out = pipe.sql("UPDATE ledger_accounts SET balance = balance - 1000001 WHERE account_id = :'v1'", acct,
                   check=False)
    assert out and out[0][0] == "ERROR" and "ledger_accounts_balance_nonnegative" in out[0][1], out
    bal = pipe.sql("SELECT balance::text FROM ledger_accounts WHERE account_id = :'v1'", acct)
    assert bal == [[str(expected_eggs(10**18, RATE))]]


class PriceHandler(http.server.BaseHTTPRequestHandler):
    rate = "2000"

    def do_GET(self):  # noqa: N802 (http.server's name)
        body = json.dumps({"rate": self.rate}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def metric(text: str, source: str) -> int:
    m = re.search(r'^zl_credit_rate_source_total\{source="%s"\} (\d+)' % source, text, re.M)
    return int(m.group(1)) if m else 0


def test_rate_fallback_http_then_stale_cache_until_max_age_then_static(pipe):
    """Guards against crediting at a guess while fresher data exists, or
    stopping when the price source dies: with the source down the stale
    cache is used until its maximum age, then the static rate; each is
    recorded on the entry and counted in the metric."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PriceHandler)
    port = server.server_address[1]
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        pipe.start("w1", ZL_CREDIT_RATE_URL=f"http://127.0.0.1:{port}/rate/{{token}}", ZL_CREDIT_RATE_TTL_MS="200",
                   ZL_CREDIT_RATE_STALE_MAX_MS="4000", ZL_CREDIT_RATE_STATIC="1", ZL_CREDIT_RATE_TIMEOUT_MS="500")
        a = deposits_for(pipe, [10**18])
        pipe.produce(a)
        wait_for(all_credited(pipe, [a[0]["deposit_id"]]), 30, "credit at the live rate")
        fetched_at = time.monotonic()
    finally:
        server.shutdown()
        server.server_close()
    # The source is gone: nothing listens on its port any more.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    time.sleep(0.3)  # past the TTL
    b = deposits_for(pipe, [10**18])
    pipe.produce(b)
    wait_for(all_credited(pipe, [b[0]["deposit_id"]]), 30, "credit at the stale rate")
    assert time.monotonic() - fetched_at < 4, "test too slow to see the stale cache"
    time.sleep(max(0.0, 4.5 - (time.monotonic() - fetched_at)))  # past the stale maximum age
    c = deposits_for(pipe, [10**18])
    pipe.produce(c)
    wait_for(all_credited(pipe, [c[0]["deposit_id"]]), 30, "credit at the static rate")

    got = {e["deposit_id"]: (e["rate_source"], e["rate"]) for e in pipe.entries(
        [a[0]["deposit_id"], b[0]["deposit_id"], c[0]["deposit_id"]]) if e["kind"] == "user_credit"}
    assert got[a[0]["deposit_id"]] == ("http", "2000")
    assert got[b[0]["deposit_id"]] == ("stale_cache", "2000")
    assert got[c[0]["deposit_id"]] == ("static", "1")
    m = pipe.metrics("w1")
    assert (metric(m, "http"), metric(m, "stale_cache"), metric(m, "static")) == (1, 1, 1), m
    assert_credited_once(pipe, a, rate="2000")
    assert_credited_once(pipe, c, rate="1")


@pytest.fixture
def own_pipe(tmp_path):
    """A pipeline on a database of its own, for planting discrepancies."""
    name, dsn = create_database()
    p = new_pipeline(dsn, tmp_path)
    try:
        yield p
    finally:
        p.stop_all()
        drop_database(name)


def test_audit_names_every_planted_discrepancy(own_pipe):
    """Guards against an audit that passes broken books: each kind of
    discrepancy planted by hand (a deleted entry, a double credit, a tampered
    balance, a credited row without entries, a row disagreeing with its
    entry) is named with its deposit or account, and the tool exits 1."""
    pipe = own_pipe
    set_rate(pipe, TOKEN, RATE)
    deps = deposits_for(pipe, [10**18 * (i + 1) for i in range(5)])
    ids = [d["deposit_id"] for d in deps]
    pipe.produce(deps)
    pipe.start("w1")
    wait_for(all_credited(pipe, ids), 30, "credited")
    assert_audit_clean(pipe)
    spare = deposits_for(pipe, [10**18])  # minted, never credited
    pipe.stop_all()

    # 1. an entry deleted: the pair is incomplete and unbalanced
    pipe.sql("DELETE FROM ledger_entries WHERE deposit_id = :'v1' AND kind = 'system_debit'", ids[0])
    # 2. a double credit (the unique constraint removed by hand first)
    pipe.sql("ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_one_per_deposit_kind")
    pipe.sql("INSERT INTO ledger_entries (entry_id, credit_id, deposit_id, kind, account_id, amount, token_amount,"
             " token_decimals, rate, rate_source) SELECT gen_random_uuid(), credit_id, deposit_id, kind, account_id,"
             " amount, token_amount, token_decimals, rate, rate_source FROM ledger_entries WHERE deposit_id = :'v1'",
             ids[1])
    # 3. a balance changed by hand
    pipe.sql("UPDATE ledger_accounts SET balance = balance + 5 WHERE account_id = :'v1'", "user:" + deps[2]["user_id"])
    # 4. a row credited without any entry
    pipe.sql("UPDATE deposits SET state = 'credited' WHERE deposit_id = :'v1'", spare[0]["deposit_id"])
    # 5. a row disagreeing with its entry
    pipe.sql("UPDATE deposits SET credit_eggs = credit_eggs + 1 WHERE deposit_id = :'v1'", ids[3])
    out = pipe.audit()
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    text = "\n".join(lines[:-1])
    assert summary["ok"] is False
    for check, subject in [("missing_entries", ids[0]), ("unbalanced", ids[0]), ("credited_twice", ids[1]),
                           ("balance_mismatch", "user:" + deps[2]["user_id"]),
                           ("missing_entries", spare[0]["deposit_id"]), ("row_mismatch", ids[3]),
                           ("totals", "user_balances")]:
        assert f"DISCREPANCY {check} {subject}:" in text, f"audit did not name {check} {subject}:\n{text}"
        assert summary["checks"].get(check, 0) >= 1
    assert ids[4] not in text, "the intact deposit was reported"


def test_audit_checks_nft_ownership_on_chain(own_pipe, tmp_path):
    """Guards against books that balance while the chain disagrees: a minted
    deposit whose NFT is owned by someone else, or was never minted, is
    named (ownerOf(keccak256(deposit_id)) on a private anvil); the deposit
    whose depositor owns its token is not."""
    from mint_helpers import ANVIL_KEY0, Anvil, cast

    pipe = own_pipe
    chain = Anvil(tmp_path)
    try:
        nft = chain.deploy(tmp_path)
        deps = [dict(minted_deposit("u-chain", 10**18, TOKEN), nft_contract=nft) for _ in range(3)]
        insert_minted_rows(pipe.dsn, deps)
        owner_ok, wrong, unminted = deps
        stranger = "0x" + "99" * 20
        for d, to in [(owner_ok, owner_ok["from"]), (wrong, stranger)]:
            cast("send", "--rpc-url", chain.url, "--private-key", ANVIL_KEY0, nft, "mint(address,uint256,string)",
                 to, d["token_id"], d["token_uri"])
        out = pipe.audit(ZL_AUDIT_RPC_URLS=chain.url)
    finally:
        chain.stop()
    assert out.returncode == 1, out.stdout + out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["chain"] == {"checked": 3, "rows": 3, "skipped": False}
    assert f"DISCREPANCY not_owner {wrong['deposit_id']}:" in out.stdout
    assert f"DISCREPANCY not_owner {unminted['deposit_id']}:" in out.stdout
    assert owner_ok["deposit_id"] not in out.stdout


@pytest.fixture
def own_pg_pipe(tmp_path):
    """A pipeline on a PostgreSQL server of its own (the test restarts it;
    the shared one is never touched), with the shared Kafka."""
    pg = OwnPostgres()
    p = None
    try:
        pg.start()
        pg.migrate()
        p = new_pipeline(pg.dsn, tmp_path)
        yield p, pg
    finally:
        try:
            if p is not None:
                p.stop_all()
        finally:
            pg.close()


def paused_gauge(text: str) -> int:
    m = re.search(r"^zl_outage_paused(?:\{[^}]*\})? (\d+)", text, re.M)
    assert m, "no zl_outage_paused gauge in /metrics"
    return int(m.group(1))


def test_postgres_restart_mid_batch_leaves_nothing_half_applied(own_pg_pipe):
    """Guards against a credit half-applied when PostgreSQL goes away in the
    middle of a batch (state moved to credited without its ledger entries,
    one entry of a pair, a balance updated without its entry), against the
    batch being dead-lettered or the worker crashing for an outage, and
    against deposits lost or credited twice when the worker resumes: the
    server is stopped while a batch transaction has already moved its rows
    to credited and waits inside the ledger statement, kept down 5 s, and
    started again."""
    pipe, pg = own_pg_pipe
    token = "0x" + uuid.uuid4().hex[:20] * 2
    set_rate(pipe, token, RATE)
    users = [f"u-{uuid.uuid4().hex[:8]}" for _ in range(15)]
    deps = [minted_deposit(users[i % len(users)], 10**18 + i * 104729, token) for i in range(300)]
    insert_minted_rows_bulk(pipe.dsn, deps)
    ids = [d["deposit_id"] for d in deps]
    first, rest = deps[:40], deps[40:]

    w = pipe.start("w1", ZL_BATCH_SIZE_MAX="200", ZL_OUTAGE_CAP_MS="500")
    pipe.produce(first)
    wait_for(all_credited(pipe, [d["deposit_id"] for d in first]), 30, "the first deposits credited")

    # Hold the token's system account, which every credit updates, so the
    # next batch stops inside its transaction: its rows already CAS-ed to
    # credited, the ledger statement waiting on the lock. The holder's
    # session dies with the server.
    sysacct = "system:" + token.lower()
    holder = subprocess.Popen(
        [os.path.join(need_env("ZL_PG_BIN"), "psql"), pipe.dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1",
         "-v", f"acct={sysacct}"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
        start_new_session=True)
    try:
        holder.stdin.write("BEGIN;\nSELECT 1 FROM ledger_accounts WHERE account_id = :'acct' FOR UPDATE;\n"
                           "SELECT pg_sleep(120);\n")
        holder.stdin.flush()
        # psql runs the script in order: asleep means the lock is held.
        wait_for(lambda: pipe.sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
                                  " AND state = 'active'")[0][0] != "0", 10, "the lock holder")
        pipe.produce(rest)
        wait_for(lambda: pipe.sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                  " AND query LIKE '%ledger_accounts%'")[0][0] != "0", 30,
                 "a batch waiting inside its ledger statement")
        credited = list(pipe.states(ids).values()).count("credited")
        assert len(first) <= credited < len(ids), f"{credited} credited: not in the middle"

        pg.stop()  # fast shutdown: the waiting batch transaction is aborted
        down_at = time.monotonic()
        wait_for(lambda: "outage: pausing consumption" in pipe.log("w1"), 10, "the worker to pause")
        assert pipe.ready("w1") == 503, "not-ready expected while the database is down"
        assert paused_gauge(pipe.metrics("w1")) == 1
        time.sleep(max(0.0, 5 - (time.monotonic() - down_at)))
        assert w.poll() is None, f"the worker exited ({w.returncode}) while the database was down"
        pg.start()
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=10)

    # Right after the restart, whatever the worker is doing: one snapshot
    # shows no credit without both entries and no entry without its credit.
    early = pipe.audit()
    assert early.returncode == 0, f"half-applied after the restart:\n{early.stdout}{early.stderr}"

    wait_for(all_credited(pipe, ids), 40, "every deposit credited after the restart")
    wait_for(lambda: {o["deposit_id"] for o in pipe.outputs()} >= set(ids), 30, "every credit published")
    assert w.poll() is None, "the worker died after the outage"
    assert_credited_once(pipe, deps)
    assert_audit_clean(pipe)
    bal = dict((u, int(b)) for u, b in pipe.sql(
        "SELECT owner, balance::text FROM ledger_accounts WHERE kind = 'user' AND owner = ANY(:'v1'::text[])",
        "{" + ",".join(users) + "}"))
    want = {}
    for d in deps:
        want[d["user_id"]] = want.get(d["user_id"], 0) + expected_eggs(int(d["amount"]), RATE)
    assert bal == want, "user balances differ from the sum of their credits"
    assert pipe.sql("SELECT balance::text FROM ledger_accounts WHERE account_id = :'v1'", sysacct) == \
        [[str(-sum(want.values()))]]
    assert pipe.dlq() == [], "the outage dead-lettered something"
    assert "outage over" in pipe.log("w1")
    wait_for(lambda: paused_gauge(pipe.metrics("w1")) == 0 and pipe.ready("w1") == 200, 10, "ready again")

"""Live updates (issue 21, common/live.h): a user's deposit state changes as
Server-Sent Events from the state history, against the real PostgreSQL.

The stream tests run tests/c/live_server on a database of their own and move
rows by hand (the history trigger writes what a stage's update would); the
last test makes a real deposit through every stage and watches headless
Chromium show it credited on the server's page.
"""
import os
import re
import secrets
import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

from conftest import REPO, need_env
from zlharness.live import Chromium, LiveServer, SseClient, chromium_path, mint_token
from zlharness.pg import create_database, drop_database, psql
from zlharness.procs import wait_until
from zlharness.web import http_get

PATH = ["detected", "verified", "pinned", "mint_submitted", "minted", "credited"]
TOKEN = "0x" + "5a" * 20
# An event reaches a connected client within a few poll intervals (100 ms here).
EVENT_WAIT_S = 15
# Long enough for several polls: what has not arrived by then is held back.
HELD_BACK_S = 1.5


@pytest.fixture(scope="module")
def db():
    name = f"zl_live_{uuid.uuid4().hex[:8]}"
    dsn = create_database(name)
    yield dsn
    drop_database(name)


@pytest.fixture
def live(db, tmp_path):
    server = LiveServer(tmp_path, db).start()
    yield server
    assert server.stop() == 0, f"live_server did not stop cleanly:\n{server.log()[-2000:]}"


def runbook_recipe() -> str:
    """The Python block under <!-- live-token-recipe --> in docs/operations.md."""
    text = (REPO / "docs" / "operations.md").read_text()
    m = re.search(r"<!-- live-token-recipe -->\s*```python\n(.*?)```", text, re.S)
    assert m, "docs/operations.md lost its live token recipe"
    return m.group(1)


def new_deposit(dsn: str, user: str) -> str:
    """A deposit row of user's in state detected (its first history row)."""
    tx = "0x" + secrets.token_hex(32)
    dep = f"31337:{tx}:0"
    psql("INSERT INTO deposits (deposit_id, chain_id, tx_hash, log_index, block_number, block_hash, token,"
         " from_addr, to_addr, user_id, amount, occurred_at)"
         " VALUES (:'v1', 31337, :'v2', 0, 1, :'v3', :'v4', :'v5', :'v6', :'v7', 1000000, now())",
         dep, tx, "0x" + secrets.token_hex(32), TOKEN, "0x" + secrets.token_hex(20), "0x" + secrets.token_hex(20),
         user, dsn=dsn)
    return dep


def move(dsn: str, dep: str, *states: str) -> None:
    for s in states:
        psql("UPDATE deposits SET state = :'v2', updated_at = now() WHERE deposit_id = :'v1'", dep, s, dsn=dsn)


def history_ids(dsn: str, dep: str) -> list[str]:
    return [r[0] for r in psql("SELECT id FROM deposit_history WHERE deposit_id = :'v1' ORDER BY id", dep, dsn=dsn)]


def states_of(events: list[dict], dep: str) -> list[str]:
    return [e["data"]["state"] for e in events if e["data"]["deposit_id"] == dep]


def wait_events(client: SseClient, pred, what: str) -> list[dict]:
    wait_until(lambda: pred(client.events()), EVENT_WAIT_S, what, interval_s=0.05)
    return client.events()


def test_missing_wrong_or_expired_token_is_refused_401(live):
    """Guards against a stream opened without a valid token: none, garbage,
    another secret's, an expired one, and one whose user was swapped are all
    401; the same user's valid token opens it (header and ?token= alike)."""
    now = int(time.time())
    good = live.token("alice")
    sig = good.rsplit(".", 1)[1]
    bad = {
        "none": None,
        "garbage": "not-a-token",
        "other secret": mint_token("another secret", "alice", now + 3600),
        "expired": mint_token(live.secret, "alice", now - 1),
        "user swapped": f"mallory.{good.split('.')[1]}.{sig}",
        "expiry extended": f"alice.{now + 99999}.{sig}",
    }
    for why, tok in bad.items():
        c = SseClient(live.url, tok)
        assert c.status == 401, f"{why}: expected 401, got {c.status}"
        c.close()
        q = SseClient(live.url, tok, via_query=True)
        assert q.status == 401, f"{why} (?token=): expected 401, got {q.status}"
        q.close()
    for via_query in (False, True):
        ok = SseClient(live.url, good, via_query=via_query)
        assert ok.status == 200, f"a valid token was refused: {ok.status}"
        ok.close()
    # The runbook's recipe, run as written, mints a token the server takes.
    recipe = {}
    exec(runbook_recipe(), recipe)  # noqa: S102 - our own documentation's code
    doc_token = recipe["live_token"](live.secret, "alice", 60)
    c = SseClient(live.url, doc_token)
    assert c.status == 200, f"the runbook's token was refused: {c.status}"
    c.close()
    # The runner's minting command computes the documented recipe.
    out = subprocess.run([str(live.binary), "--mint-token", "alice", "60"], env=live.env, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    user, expiry, mac = out.stdout.strip().split(".")
    assert (user, out.stdout.strip()) == ("alice", mint_token(live.secret, "alice", int(expiry)))


def test_client_sees_its_own_deposits_detected_to_credited_and_nothing_of_another_user(live, db):
    """Guards against a stream that misses a state, reorders one deposit's
    states, or shows a user another user's deposits."""
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    a = SseClient(live.url, live.token(alice))
    b = SseClient(live.url, live.token(bob), via_query=True)
    assert (a.status, b.status) == (200, 200)
    a_dep, b_dep = new_deposit(db, alice), new_deposit(db, bob)
    for s in PATH[1:]:
        move(db, a_dep, s)
        if s in ("verified", "pinned"):
            move(db, b_dep, s)
    got = wait_events(a, lambda ev: "credited" in states_of(ev, a_dep), "alice's deposit credited on her stream")
    assert states_of(got, a_dep) == PATH
    assert {e["data"]["user_id"] for e in got} == {alice}, "alice's stream carried another user's event"
    assert [e["id"] for e in got] == history_ids(db, a_dep), "event ids are not the history rows' ids"
    got_b = wait_events(b, lambda ev: "pinned" in states_of(ev, b_dep), "bob's deposit pinned on his stream")
    time.sleep(HELD_BACK_S)
    assert {e["data"]["deposit_id"] for e in b.events()} == {b_dep}, "bob saw a deposit of alice's"
    assert states_of(got_b, b_dep) == ["detected", "verified", "pinned"]
    a.close()
    b.close()


def test_resume_with_last_event_id_misses_nothing_and_repeats_nothing(live, db):
    """Guards against a reconnect that loses what happened while the client
    was away, or replays what it had: resuming after the last event seen
    (Last-Event-ID header, or ?last_event_id= on a first connect) yields
    exactly the rest."""
    user = f"carol-{uuid.uuid4().hex[:6]}"
    dep = new_deposit(db, user)
    move(db, dep, "verified", "pinned")
    first = SseClient(live.url, live.token(user))
    seen = wait_events(first, lambda ev: len(ev) >= 3, "the history so far replayed on connect")
    first.close()
    assert states_of(seen, dep) == PATH[:3]
    # While the client is away: the rest of the path, and a second deposit.
    move(db, dep, *PATH[3:])
    dep2 = new_deposit(db, user)
    move(db, dep2, "verified")
    want = history_ids(db, dep)[3:] + history_ids(db, dep2)
    for how in ("header", "query"):
        last = seen[-1]["id"]
        c = (SseClient(live.url, live.token(user), last_event_id=last) if how == "header" else
             SseClient(live.url, live.token(user), query=f"?last_event_id={last}"))
        got = wait_events(c, lambda ev: len(ev) >= len(want), f"the missed events ({how})")
        time.sleep(HELD_BACK_S)
        got = c.events()
        c.close()
        assert [e["id"] for e in got] == want, f"resume by {how} after {last}: expected {want}, got " \
                                               f"{[e['id'] for e in got]}"


def test_a_row_committed_late_with_a_smaller_id_is_not_skipped(live, db):
    """Guards against the gap of bigserial ids: a history row whose
    transaction commits after one holding a larger id must still reach the
    client (a reader polling "id > last" moves past it and never sends it).
    Neither row may be sent while the older transaction is open."""
    user = f"dave-{uuid.uuid4().hex[:6]}"
    c = SseClient(live.url, live.token(user))
    assert c.status == 200
    # An open transaction holds the smaller id ...
    held = subprocess.Popen([f"{need_env('ZL_PG_BIN')}/psql", db, "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        tx = "0x" + secrets.token_hex(32)
        late = f"31337:{tx}:0"
        held.stdin.write(
            "BEGIN;\n"
            "INSERT INTO deposits (deposit_id, chain_id, tx_hash, log_index, block_number, block_hash, token,"
            " from_addr, to_addr, user_id, amount, occurred_at) VALUES"
            f" ('{late}', 31337, '{tx}', 0, 1, '0x{secrets.token_hex(32)}', '{TOKEN}', '0x{'11' * 20}',"
            f" '0x{'22' * 20}', '{user}', 5, now());\n"
            f"SELECT id FROM deposit_history WHERE deposit_id = '{late}';\n")
        held.stdin.flush()
        late_id = held.stdout.readline().strip()
        assert late_id.isdigit(), f"the held transaction's history id: {late_id!r} {held.stderr.read()}"
        # ... while a later one with a larger id commits first.
        early = new_deposit(db, user)
        early_id = history_ids(db, early)[0]
        assert int(early_id) > int(late_id)
        time.sleep(HELD_BACK_S)
        assert c.events() == [], "a row was sent while an older transaction was still open"
        held.stdin.write("COMMIT;\n")
        held.stdin.close()
        assert held.wait(timeout=30) == 0, held.stderr.read()
    finally:
        if held.poll() is None:
            held.kill()
            held.wait()
    got = wait_events(c, lambda ev: len(ev) >= 2, "both rows after the older transaction committed")
    time.sleep(HELD_BACK_S)
    assert [e["id"] for e in c.events()] == [late_id, early_id]
    # A client resuming after the late row gets the early one, and only it.
    r = SseClient(live.url, live.token(user), last_event_id=late_id)
    wait_events(r, lambda ev: len(ev) >= 1, "the rest after the late row")
    time.sleep(HELD_BACK_S)
    assert [e["id"] for e in r.events()] == [early_id]
    r.close()
    c.close()
    assert got[0]["data"]["deposit_id"] == late


def test_clients_over_the_limit_are_answered_503(db, tmp_path):
    """Guards against unbounded streams: one more than ZL_LIVE_CLIENTS_MAX is
    refused at once (and a freed slot is taken again)."""
    server = LiveServer(tmp_path, db, ZL_LIVE_CLIENTS_MAX=2).start()
    try:
        tok = server.token("erin")
        c1, c2 = SseClient(server.url, tok), SseClient(server.url, tok)
        c3 = SseClient(server.url, tok)
        assert (c1.status, c2.status, c3.status) == (200, 200, 503)
        c3.close()
        c1.close()

        def slot_free() -> bool:
            c = SseClient(server.url, tok)
            c.close()
            return c.status == 200
        wait_until(slot_free, 10, "a freed slot taken again")
        c2.close()
    finally:
        assert server.stop() == 0


def test_the_server_works_as_zl_notify_and_that_role_cannot_write_the_state(db, tmp_path):
    """Guards against the live server needing more than the grants of
    016_live.sql (it reads as zl_notify, as docs/deploy.md's per-binary
    LOGIN roles do), and against those grants letting it change a row."""
    name = f"zlt_notify_{uuid.uuid4().hex[:8]}"
    psql(f'CREATE ROLE "{name}" LOGIN IN ROLE zl_notify', dsn=db)
    try:
        u = urllib.parse.urlsplit(db)
        role_dsn = urllib.parse.urlunsplit((u.scheme, f"{name}@{u.netloc.rsplit('@', 1)[-1]}", u.path, "", ""))
        # Read only: a taken-over live server cannot move a deposit.
        denied = psql("UPDATE deposits SET state = 'credited' WHERE false", dsn=role_dsn, check=False)
        assert denied and denied[0][0] == "ERROR" and "permission denied" in denied[0][1], denied
        server = LiveServer(tmp_path, role_dsn).start()
        try:
            user = f"frank-{uuid.uuid4().hex[:6]}"
            dep = new_deposit(db, user)
            move(db, dep, "verified")
            c = SseClient(server.url, server.token(user))
            got = wait_events(c, lambda ev: len(ev) >= 2, "the deposit's history read as zl_notify")
            c.close()
            assert states_of(got, dep) == ["detected", "verified"]
        finally:
            assert server.stop() == 0, server.log()[-2000:]
    finally:
        psql(f'DROP ROLE IF EXISTS "{name}"', dsn=db, check=False)


def test_a_client_that_falls_behind_is_dropped_resumes_whole_and_holds_nobody_up(db, tmp_path):
    """Guards against one client's backlog growing without bound or holding
    up the others: more events at once than ZL_LIVE_QUEUE_EVENTS_MAX end that
    client's stream (a warning says so), another user's client gets its
    event all the same, and the dropped client, resuming with the last id it
    got, receives every remaining event once."""
    server = LiveServer(tmp_path, db, ZL_LIVE_QUEUE_EVENTS_MAX=8).start()
    try:
        busy, calm = f"gina-{uuid.uuid4().hex[:6]}", f"hal-{uuid.uuid4().hex[:6]}"
        a = SseClient(server.url, server.token(busy))
        b = SseClient(server.url, server.token(calm))
        time.sleep(HELD_BACK_S)  # both caught up (nothing yet) and in the fan-out
        psql("INSERT INTO deposits (deposit_id, chain_id, tx_hash, log_index, block_number, block_hash, token,"
             " from_addr, to_addr, user_id, amount, occurred_at)"
             " SELECT '31337:' || h || ':0', 31337, h, 0, 1, h, :'v2', '0x' || repeat('1', 40),"
             " '0x' || repeat('2', 40), :'v1', i, now()"
             " FROM (SELECT i, '0x' || md5(:'v1' || i) || md5(i || :'v1') AS h FROM generate_series(1, 60) i) x",
             busy, TOKEN, dsn=db)
        calm_dep = new_deposit(db, calm)
        wait_events(b, lambda ev: len(ev) == 1, "the calm user's event while the busy one overflows")
        wait_until(lambda: a.ended, EVENT_WAIT_S, "the busy client's stream to end")
        assert "fell 8 events behind: dropped" in server.log()
        first = a.events()
        a.close()
        want = [r[0] for r in psql("SELECT h.id FROM deposit_history h JOIN deposits d USING (deposit_id)"
                                   " WHERE d.user_id = :'v1' ORDER BY h.tx, h.id", busy, dsn=db)]
        assert len(want) == 60 and len(first) < 60
        r = SseClient(server.url, server.token(busy), last_event_id=first[-1]["id"] if first else None)
        wait_events(r, lambda ev: len(first) + len(ev) >= 60, "the rest after resuming")
        time.sleep(HELD_BACK_S)
        got = [e["id"] for e in first] + [e["id"] for e in r.events()]
        r.close()
        assert got == want, f"resumed stream: {len(got)} events, {len(set(got))} distinct, want {len(want)}"
        assert states_of(b.events(), calm_dep) == ["detected"]
        b.close()
    finally:
        assert server.stop() == 0


def test_a_wrong_setting_is_a_configuration_error(db, tmp_path):
    """Guards against a live server that starts without a way to check
    tokens, or on an address it cannot mean: both exit 2 (configuration),
    naming the setting."""
    server = LiveServer(tmp_path, db)
    for change, setting in (({"ZL_LIVE_TOKEN_SECRET_FILE": ""}, "ZL_LIVE_TOKEN_SECRET_FILE"),
                            ({"ZL_LIVE_ADDR": "localhost"}, "ZL_LIVE_ADDR")):
        out = subprocess.run([str(server.binary)], env=dict(server.env, **change), capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 2 and setting in out.stdout + out.stderr, (out.returncode, out.stdout, out.stderr)


def page_state(browser: Chromium, dep: str):
    """The text of the deposit's state cell on the page, None if not shown."""
    return browser.evaluate(
        f"(function(){{var r=document.getElementById({dep!r}.replace(/^/,'dep-'));"
        f"return r ? r.querySelector('td.state').textContent : null;}})()")


@pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed (deploy/local/deps apt)")
def test_page_in_headless_chromium_shows_a_real_deposit_reach_credited(tmp_path):
    """Guards against a live page that does not work in a real browser: a
    deposit made on chain, through every stage, must show as "credited" in
    its row of the page in headless Chromium (read from the DOM the page's
    script builds); the same stream, read directly, carries the deposit from
    detected to credited and nothing of another user's deposit. The page
    is served by the notify stage itself (ZL_LIVE_PORT), as deployed."""
    from zlharness.pipeline import STAGES, scratch_pipeline
    with scratch_pipeline("live") as p:
        p.setup(accounts=1, users=2)
        mine, other = p.deposit_addrs[0], p.deposit_addrs[1]
        user = p.user_of[mine]
        run_dir = p.local / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        notify = Path(os.environ.get("ZL_BIN_DIR", Path(os.environ["ZL_BUILD_DIR"]) / "bin")) / "notify"
        server = LiveServer(tmp_path, p.env["ZL_PG_DSN"], env=p.worker_env("notify"), pid_file=run_dir / "live.pid",
                            binary=notify).start()
        browser = None
        try:
            stream = SseClient(server.url, server.token(user))
            browser = Chromium(tmp_path, pid_file=run_dir / "chromium.pid")
            browser.open(f"{server.url}/#token={server.token(user)}")
            wait_until(lambda: browser.evaluate("document.getElementById('status').textContent") == "live", 30,
                       "the page's stream open")
            p.start_workers([(s, 1) for s in STAGES])
            assert p.make_deposits(2, [mine, other], amount_of=lambda _j: 2 * 10**18) == 2
            rows = wait_until(lambda: p.psql("SELECT deposit_id FROM deposits WHERE to_addr = :'v1'", mine), 120,
                              "the deposit detected")
            dep = rows[0][0]
            shown = []

            def credited_on_page():
                s = page_state(browser, dep)
                if s and (not shown or shown[-1] != s):
                    shown.append(s)
                return s == "credited"
            wait_until(credited_on_page, 240, "the page to show the deposit credited", interval_s=0.2)
            got = stream.events()
            assert states_of(got, dep) == PATH, f"the stream carried {states_of(got, dep)}"
            assert {e["data"]["user_id"] for e in got} == {user}, "the stream carried another user's deposit"
            other_dep = p.psql("SELECT deposit_id FROM deposits WHERE to_addr = :'v1'", other)[0][0]
            assert page_state(browser, other_dep) is None, "the page shows another user's deposit"
            stream.close()
        finally:
            if browser is not None:
                browser.close()
            server.stop()


def test_the_page_is_served_inline(live):
    """Guards against a page that needs anything but this server: no
    external script, style or image."""
    status, body = http_get(live.url + "/")
    assert status == 200
    html = body.decode()
    assert "EventSource" in html and "<script src" not in html and "http" not in html.split("<body>", 1)[1]


"""The notify stage (issue 21) against the real Kafka and PostgreSQL: the
credit stage credits minted deposits, notify consumes zl.credits.applied
and sends each active subscriber one signed webhook per credit, to a
receiver written here in a few lines of Python that checks the signature
with the recipe of docs/architecture.md ("Notify").

The module works in a database of its own: subscribers are global to a
database, and another suite's credits must not reach these receivers.
"""
import hashlib
import hmac
import http.server
import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid

import pytest

from credit_helpers import insert_minted_rows, minted_deposit, new_pipeline, psql_at, wait_for
from ops_helpers import ADMIN_TOKEN, bin_path, token_file
from ops_helpers import http as admin_http
from test_credit import db  # noqa: F401  (a database of this module's own, a fixture)
from zlharness.kafka import consume, keyed_headers, kcat
from zlharness.procs import kill, stop, wait_until

TOKEN = "0x" + "5c" * 20
RATE = "2.5"
# webhook_delivery_id() in schemas/sql/015_webhooks.sql
DELIVERY_NS = uuid.UUID("5b0d7e3c-5a8f-4f3e-9c1a-2d6f0e4b7a91")
TOLERANCE_S = 300
# Short backoff so a subscriber that comes back is served within seconds.
NOTIFY_FAST = {"ZL_NOTIFY_BACKOFF_BASE_MS": "200", "ZL_NOTIFY_BACKOFF_CAP_MS": "2000", "ZL_NOTIFY_POLL_MS": "50",
               "ZL_NOTIFY_SENDERS": "2"}


def verify(header: str, body: bytes, secret: str, now: float | None = None) -> bool:
    """The documented recipe: HMAC-SHA256(secret, "<t>.<raw body>") in hex
    equals one of the v1= values, and t is within the tolerance window."""
    parts = header.split(",")
    if not parts[0].startswith("t="):
        return False
    t = int(parts[0][2:])
    want = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    sigs = [p[3:] for p in parts[1:] if p.startswith("v1=")]
    return abs((now or time.time()) - t) <= TOLERANCE_S and any(hmac.compare_digest(want, s) for s in sigs)


class Receiver:
    """A webhook endpoint in a thread: records every POST (time, headers,
    raw body) and answers `status` (200 unless told otherwise)."""

    def __init__(self, port: int = 0):
        self.posts: list[dict] = []
        self.lock = threading.Lock()
        self.status = 200
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with rec.lock:
                    rec.posts.append({"at": time.time(), "headers": dict(self.headers), "body": body})
                self.send_response(rec.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def received(self) -> list[dict]:
        with self.lock:
            return list(self.posts)

    def deposit_ids(self) -> list[str]:
        return [json.loads(p["body"])["deposit_id"] for p in self.received()]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    """A port nothing listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def pipe(db, tmp_path):
    p = new_pipeline(db, tmp_path)
    # new_pipeline made the credit stage's topics; notify's retry tiers and DLQ too.
    from zlharness.kafka import create_topics
    create_topics(p.env, "notify", 3)
    p.sql("UPDATE webhook_subscribers SET active = false")
    p.sql("INSERT INTO credit_rates (token, rate, effective_from) VALUES (:'v1', :'v2'::numeric,"
          " now() - interval '1 s') ON CONFLICT DO NOTHING", TOKEN, RATE)
    yield p
    p.stop_all()


@pytest.fixture
def receivers():
    made = []

    def make(port: int = 0) -> Receiver:
        r = Receiver(port)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture
def as_role(db):
    """as_role("zl_notify") -> the DSN of a new LOGIN role on the module's
    database that is a member of that group role only (docs/deploy.md);
    dropped afterwards."""
    made = []

    def make(group: str) -> str:
        name = f"zlt_{group}_{uuid.uuid4().hex[:8]}"
        psql_at(db, f'CREATE ROLE "{name}" LOGIN IN ROLE {group}')
        made.append(name)
        u = urllib.parse.urlsplit(db)
        return urllib.parse.urlunsplit((u.scheme, f"{name}@{u.netloc.rsplit('@', 1)[-1]}", u.path, u.query, ""))

    yield make
    for name in made:
        psql_at(db, f'DROP OWNED BY "{name}"; DROP ROLE IF EXISTS "{name}"', check=False)


@pytest.fixture
def zlctl(pipe, as_role):
    """zlctl(*args) -> its JSON answer, against a zl-admin of the test's own
    on the module's database (asserts exit 0 unless check=False)."""
    # As its own least-privileged role: the webhook grants of 015 suffice.
    pipe.start("admin", binary="zl-admin", ZL_ADMIN_TOKEN_FILE=str(token_file(pipe.workdir)),
               ZL_PG_DSN=as_role("zl_admin"))
    base = f"http://127.0.0.1:{pipe.http_port('admin')}"
    wait_until(lambda: admin_http("GET", base + "/health/live", token=None)[0] == 200, 20, "zl-admin up")
    env = dict(os.environ, ZL_ADMIN_URL=base, ZL_ADMIN_TOKEN_FILE=str(pipe.workdir / "admin_token"))

    def run(*args: str, check: bool = True):
        out = subprocess.run([bin_path("zlctl"), "webhook", *args], env=env, capture_output=True, text=True,
                             timeout=30)
        assert not check or out.returncode == 0, f"zlctl webhook {args}: {out.returncode} {out.stdout}{out.stderr}"
        return json.loads(out.stdout) if out.stdout.strip() else None

    run.base = base
    return run


def secret_file(p, secret: str):
    path = p.workdir / f"secret-{uuid.uuid4().hex[:6]}"
    path.write_text(secret + "\n")
    return str(path)


def subscribe(p, url: str, secret: str) -> str:
    return p.sql("INSERT INTO webhook_subscribers (url, secret) VALUES (:'v1', :'v2') RETURNING subscriber_id::text",
                 url, secret)[0][0]


def new_secret() -> str:
    return "whsec_" + uuid.uuid4().hex


def minted(p, users: list[str], per_user: int) -> list[dict]:
    deps = [minted_deposit(u, 10**18 + i, TOKEN) for i in range(per_user) for u in users]
    insert_minted_rows(p.dsn, deps)
    return deps


def start_notify(p, name: str, **env: str):
    return p.start(name, binary="notify", **dict(NOTIFY_FAST, **env))


def check_delivery(p, post: dict, sub: str, secret: str) -> dict:
    """One POST as a receiver checks it: the signature, the headers, the
    id it can deduplicate on, and the body against the ledger's row."""
    h = post["headers"]
    assert verify(h["ZL-Signature"], post["body"], secret), f"signature does not verify: {h['ZL-Signature']}"
    assert h["ZL-Event"] == "credit.applied"
    body = json.loads(post["body"])
    assert h["ZL-Delivery-Id"] == body["delivery_id"]
    assert body["delivery_id"] == str(uuid.uuid3(DELIVERY_NS, f"{sub}:{body['deposit_id']}"))
    row = p.sql("SELECT user_id, token, amount::text, credit_eggs::text, credit_id::text, tx_hash FROM deposits"
                " WHERE deposit_id = :'v1'", body["deposit_id"])[0]
    got = [body[k] for k in ("user_id", "token", "amount", "eggs", "credit_id", "tx_hash")]
    assert got == row, f"body {got} != row {row}"
    assert body["occurred_at"].endswith("Z") and body["credited_at"].endswith("Z")
    return body


def test_one_signed_delivery_per_credit_and_none_again_after_a_restart(pipe, receivers, as_role):
    """Guards against a credit nobody is told about, a delivery a receiver
    cannot verify, and a second delivery (or a second id) for one credit
    when notify is killed and the credits are consumed again."""
    rec = receivers()
    secret = new_secret()
    sub = subscribe(pipe, rec.url, secret)
    deps = minted(pipe, [f"u-{uuid.uuid4().hex[:6]}" for _ in range(3)], 4)
    ids = {d["deposit_id"] for d in deps}
    pipe.produce(deps)
    pipe.start("credit")
    notify_dsn = as_role("zl_notify")  # its own role: 015's grants are enough, and no more
    n1 = start_notify(pipe, "notify1", ZL_PG_DSN=notify_dsn)
    wait_for(lambda: set(rec.deposit_ids()) >= ids, 60, "a delivery for every credit")
    for post in rec.received():
        check_delivery(pipe, post, sub, secret)
    # A crash, and every credit consumed again (the credit stage re-publishes).
    kill(n1)
    kcat("-P", "-t", pipe.out_topic, "-K", "\t",
         data="".join(f"{k}\t{v}\n" for k, v in (line.split("\t", 1) for line in
                                                consume(pipe.out_topic, "%k\t%s\n").splitlines() if line)))
    start_notify(pipe, "notify2", ZL_PG_DSN=notify_dsn)
    time.sleep(5)
    assert sorted(rec.deposit_ids()) == sorted(ids), "a credit was delivered twice or not at all"
    rows = pipe.sql("SELECT count(*), count(DISTINCT deposit_id), count(*) FILTER (WHERE state = 'delivered')"
                    " FROM webhook_deliveries WHERE subscriber_id = :'v1'", sub)[0]
    assert rows == [str(len(ids))] * 3, f"deliveries (all, distinct, delivered) {rows}, expected {len(ids)} each"
    # Its role reads the credit and writes the outbox, never the ledger or the row.
    for sql in ("UPDATE deposits SET credit_eggs = 1 WHERE false", "UPDATE deposits SET state = 'dead' WHERE false",
                "INSERT INTO ledger_accounts (account_id, kind, owner, balance) VALUES ('user:m', 'user', 'm', 1)",
                "UPDATE webhook_subscribers SET url = 'http://evil.example/' WHERE false"):
        out = psql_at(notify_dsn, sql, check=False)
        assert out and out[0][0] == "ERROR" and "permission denied" in out[0][1], f"zl_notify may: {sql} ({out})"


def test_a_subscriber_down_for_a_minute_gets_everything_in_order_and_delays_no_one(pipe, receivers):
    """Guards against one subscriber's outage holding up the others or the
    stage, against losing what it missed, and against reordering a user's
    deliveries when it comes back."""
    a = receivers()
    b_port = free_port()
    sa, sb = new_secret(), new_secret()
    sub_a = subscribe(pipe, a.url, sa)
    sub_b = subscribe(pipe, f"http://127.0.0.1:{b_port}/hook", sb)
    pipe.start("credit")
    start_notify(pipe, "notify")
    users = [f"u-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    all_ids: list[str] = []
    lags: list[float] = []
    down_until = time.time() + 60
    while time.time() < down_until:
        deps = minted(pipe, users, 2)
        ids = [d["deposit_id"] for d in deps]
        pipe.produce(deps)
        all_ids += ids
        wait_for(lambda: set(a.deposit_ids()) >= set(ids), 20, "subscriber A served while B is down")
        credited = {r[0]: float(r[1]) for r in pipe.sql(
            "SELECT deposit_id, extract(epoch FROM updated_at) FROM deposits WHERE deposit_id = ANY(:'v1'::text[])",
            "{" + ",".join(ids) + "}")}
        at = {json.loads(p["body"])["deposit_id"]: p["at"] for p in a.received()}
        lags += [at[i] - credited[i] for i in ids]
        time.sleep(8)
    assert max(lags) < 10, f"subscriber A waited {max(lags):.1f} s for a delivery while B was down"
    pending_b = int(pipe.sql("SELECT count(*) FROM webhook_deliveries WHERE subscriber_id = :'v1'"
                             " AND state = 'pending'", sub_b)[0][0])
    assert pending_b == len(all_ids), f"B should have {len(all_ids)} pending, has {pending_b}"
    failures = int(pipe.sql("SELECT failures FROM webhook_subscribers WHERE subscriber_id = :'v1'", sub_b)[0][0])
    assert failures > 0, "B's failures were never counted"
    b = receivers(b_port)
    wait_for(lambda: set(b.deposit_ids()) >= set(all_ids), 30, "B gets every delivery once it is back")
    for post in b.received():
        check_delivery(pipe, post, sub_b, sb)
    assert len(b.deposit_ids()) == len(set(b.deposit_ids())), "B got a delivery twice"
    order = [r[0] for r in pipe.sql("SELECT deposit_id FROM webhook_deliveries WHERE subscriber_id = :'v1'"
                                    " ORDER BY seq", sub_b)]
    for u in users:
        mine = [json.loads(p["body"])["deposit_id"] for p in b.received() if json.loads(p["body"])["user_id"] == u]
        assert mine == [i for i in order if i in set(mine)], f"user {u}'s deliveries to B out of order"
    assert set(a.deposit_ids()) == set(all_ids) and sub_a != sub_b


def test_a_rotated_secret_and_the_old_one_both_verify_until_retired(pipe, receivers, zlctl):
    """Guards against a rotation that breaks receivers still on the old
    secret, an old secret that stays valid after retirement, and secrets
    shown by the listing; all through zlctl, each change audited."""
    rec = receivers()
    old, new = new_secret(), new_secret()
    sub = zlctl("add", "--url", rec.url, "--secret-file", secret_file(pipe, old))["subscriber_id"]
    zlctl("rotate", sub, "--secret-file", secret_file(pipe, new))
    listed = zlctl("list")
    assert [x["subscriber_id"] for x in listed if x["active"]] == [sub] and listed[-1]["old_secret_valid"], listed
    assert old not in json.dumps(listed) and new not in json.dumps(listed), "the listing shows a secret"
    pipe.start("credit")
    start_notify(pipe, "notify")

    def next_signature(what: str) -> tuple[str, bytes]:
        pipe.produce(minted(pipe, ["u-rot"], 1))
        n = len(rec.received()) + 1
        wait_for(lambda: len(rec.received()) >= n, 60, what)
        post = rec.received()[n - 1]
        return post["headers"]["ZL-Signature"], post["body"]

    sig, body = next_signature("a delivery during the rotation")
    assert sig.count("v1=") == 2 and verify(sig, body, old) and verify(sig, body, new), sig
    zlctl("retire-secret", sub)
    sig, body = next_signature("a delivery after retirement")
    assert sig.count("v1=") == 1 and verify(sig, body, new) and not verify(sig, body, old), sig
    assert len(zlctl("deliveries", sub, "--state", "delivered")) == 2
    actions = [r[0] for r in pipe.sql("SELECT action FROM admin_audit WHERE detail->>'subscriber_id' = :'v1'"
                                      " ORDER BY id", sub)]
    assert actions == ["webhook_add", "webhook_rotate", "webhook_retire_secret"], actions
    audit_text = json.dumps(pipe.sql("SELECT row_to_json(a)::text FROM admin_audit a"))
    assert old not in audit_text and new not in audit_text and ADMIN_TOKEN not in audit_text
    assert old not in pipe.log("admin") + pipe.log("notify"), "a secret was logged"
    # Disabled: no new deliveries.
    zlctl("disable", sub)
    deps = minted(pipe, ["u-rot"], 1)
    pipe.produce(deps)
    wait_for(lambda: pipe.states([deps[0]["deposit_id"]])[deps[0]["deposit_id"]] == "credited", 30, "credited")
    time.sleep(3)
    assert len(rec.received()) == 2, "a disabled subscriber got a delivery"


def test_a_poison_message_goes_to_the_dlq_and_blocks_nothing(pipe, receivers):
    """Guards against a message notify cannot read stopping the stage (its
    partition, the credits behind it) instead of going to zl.notify.dlq."""
    rec = receivers()
    sub = subscribe(pipe, rec.url, new_secret())
    kcat("-P", "-t", pipe.out_topic, "-p", "0", "-K", "\t", data="poison-key\tnot json at all\n")
    pipe.start("credit")
    n = start_notify(pipe, "notify")
    deps = minted(pipe, ["u-poison"], 6)
    pipe.produce(deps)
    wait_for(lambda: set(rec.deposit_ids()) >= {d["deposit_id"] for d in deps}, 60, "credits behind the poison")
    dlq = pipe.prefix + "notify.dlq"
    wait_for(lambda: any(m["key"] == "poison-key" for m in keyed_headers(dlq)), 30, "the poison in zl.notify.dlq")
    m = next(m for m in keyed_headers(dlq) if m["key"] == "poison-key")
    assert m["headers"]["zl-dlq-stage"] == "notify" and m["headers"]["zl-dlq-error-class"] == "poison", m
    assert sub
    # SIGTERM: the consumer drains and the senders stop (joined, handles freed).
    assert stop(n) == 0, "notify did not stop cleanly on SIGTERM"


def test_a_delivery_failing_past_the_give_up_time_is_dead_lettered_and_can_be_rearmed(pipe, receivers, zlctl):
    """Guards against a delivery retried forever (or dropped silently) when
    a subscriber never answers: after ZL_NOTIFY_GIVE_UP_MS it is failed, in
    zl.notify.dlq with readable headers, and a re-armed one is sent."""
    port = free_port()
    secret = new_secret()
    sub = subscribe(pipe, f"http://127.0.0.1:{port}/hook", secret)
    pipe.start("credit")
    start_notify(pipe, "notify", ZL_NOTIFY_GIVE_UP_MS="1500")
    deps = minted(pipe, ["u-give-up"], 1)
    pipe.produce(deps)
    dlq = pipe.prefix + "notify.dlq"
    wait_for(lambda: any(m["key"] == deps[0]["deposit_id"] for m in keyed_headers(dlq)), 60, "the dead letter")
    m = next(m for m in keyed_headers(dlq) if m["key"] == deps[0]["deposit_id"])
    did = str(uuid.uuid3(DELIVERY_NS, f"{sub}:{deps[0]['deposit_id']}"))
    assert m["headers"]["zl-webhook-delivery-id"] == did and m["headers"]["zl-webhook-subscriber-id"] == sub
    assert "gave up" in m["headers"]["zl-dlq-error"], m
    state = pipe.sql("SELECT state FROM webhook_deliveries WHERE delivery_id = :'v1'", did)[0][0]
    assert state == "failed"
    assert [d["delivery_id"] for d in zlctl("deliveries", sub, "--state", "failed")] == [did]
    # Back up, and re-armed by the operator.
    rec = receivers(port)
    assert zlctl("redeliver", did)["state"] == "pending"
    wait_for(lambda: len(rec.received()) == 1, 30, "the re-armed delivery")
    check_delivery(pipe, rec.received()[0], sub, secret)

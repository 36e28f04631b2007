"""The HTTP side of the admin surface (issue 17): the admin API rate limits
after authentication, so a flood without the token cannot lock operators
out; a worker's /admin/ needs the admin token; the audit records the token's
fingerprint and the caller's address, not only what the caller says."""
import hashlib
import threading
import time

from ops_helpers import ADMIN_TOKEN, http, make_dead, pipeline, start_tool, token_file  # noqa: F401
from runtime_helpers import psql, wait_until

FLOOD_PER_S = 30
FLOOD_S = 4


def start_admin(p, **env) -> str:
    start_tool(p, "admin", "zl-admin", ZL_ADMIN_TOKEN_FILE=str(token_file(p.workdir)), **env)
    base = f"http://127.0.0.1:{p.http_port('admin')}"
    wait_until(lambda: http("GET", base + "/health/live", token=None)[0] == 200, 20, "zl-admin up")
    return base


def test_an_unauthenticated_flood_does_not_lock_operators_out(pipeline):
    """Guards against a rate limit taken before authentication: one bucket for
    everyone, so anyone who can reach the port spends the operators' budget
    and the one call that matters during an incident gets 429."""
    # A small budget for the token, so a shared bucket would be empty within
    # the first second of the flood.
    base = start_admin(pipeline, ZL_ADMIN_RATE_PER_S="5", ZL_ADMIN_BURST="10")
    flood_codes: list[int] = []
    stop = threading.Event()

    def flood() -> None:
        start = time.monotonic()
        n = 0
        while not stop.is_set() and time.monotonic() - start < FLOOD_S:
            token = None if n % 2 else "guessed-token-0123456789"
            flood_codes.append(http("GET", base + "/admin/dead?limit=1", token=token, timeout=5)[0])
            n += 1
            time.sleep(max(0.0, start + n / FLOOD_PER_S - time.monotonic()))

    t = threading.Thread(target=flood)
    t.start()
    operator_codes = []
    try:
        time.sleep(1.0)  # the flood has spent any shared budget by now
        for _ in range(FLOOD_S - 1):
            operator_codes.append(http("GET", base + "/admin/dead?limit=1")[0])
            time.sleep(0.8)
    finally:
        stop.set()
        t.join(timeout=30)
    assert len(flood_codes) >= FLOOD_PER_S * (FLOOD_S - 1), f"the flood sent only {len(flood_codes)} requests"
    assert set(flood_codes) <= {401, 429}, sorted(set(flood_codes))
    assert 429 in flood_codes, "failed attempts have no budget of their own"
    assert operator_codes == [200] * len(operator_codes), operator_codes


def test_each_token_is_a_caller_with_its_own_budget(pipeline):
    """Guards against one operator's script spending every operator's budget:
    with one token per line in the token file, each token is rate limited on
    its own and named by its own fingerprint in the audit."""
    bob = "bob-token-" + "y" * 16
    token_file(pipeline.workdir, f"{ADMIN_TOKEN}\n{bob}")
    start_tool(pipeline, "admin", "zl-admin", ZL_ADMIN_TOKEN_FILE=str(pipeline.workdir / "admin_token"),
               ZL_ADMIN_RATE_PER_S="1", ZL_ADMIN_BURST="3")
    base = f"http://127.0.0.1:{pipeline.http_port('admin')}"
    wait_until(lambda: http("GET", base + "/health/live", token=None)[0] == 200, 20, "zl-admin up")
    codes = [http("GET", base + "/admin/dead?limit=1")[0] for _ in range(6)]
    assert codes[:3] == [200] * 3 and 429 in codes[3:], codes
    assert http("GET", base + "/admin/dead?limit=1", token=bob)[0] == 200, "bob was limited by alice's calls"
    status, answer = http("POST", base + "/admin/sweep", token=bob, body={"reason": "bob checks", "stale_ms": 60000})
    assert status == 202, answer
    rows = psql("SELECT detail->>'token_fingerprint' FROM admin_audit WHERE reason = 'bob checks'"
                " AND detail->>'peer' = '127.0.0.1' ORDER BY id DESC LIMIT 1")
    assert rows and rows[0][0] == hashlib.sha256(bob.encode()).hexdigest()[:16], rows


def test_the_audit_records_the_token_fingerprint_and_the_peer(pipeline):
    """Guards against an audit log whose only "who" is a header the caller
    writes: X-Actor says alice, the entry must also say which token was used
    (fingerprint, never the token) and from which address."""
    (dep,) = make_dead(pipeline, 1)
    base = start_admin(pipeline)
    did = dep["deposit_id"]
    status, answer = http("POST", base + f"/admin/dead/{did}/resolve", body={"action": "resolve", "reason": "t"},
                          headers={"X-Actor": "alice", "X-Forwarded-For": "10.1.2.3"})
    assert status == 200, answer
    status, view = http("GET", base + f"/admin/deposits/{did}")
    assert status == 200, view
    (entry,) = [a for a in view["audit"] if a["action"] == "resolve"]
    fpr = hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()[:16]
    assert entry["detail"]["token_fingerprint"] == fpr, entry
    assert entry["detail"]["peer"] == "127.0.0.1", entry
    assert entry["actor"] == f"alice (token {fpr} from 127.0.0.1)", entry
    assert ADMIN_TOKEN not in str(entry)


def test_a_workers_admin_endpoints_need_the_admin_token(pipeline):
    """Guards against a worker's POST /admin/breakers/reset open to anyone who
    can reach its HTTP port (the port Prometheus and the kubelet reach)."""
    url_of = lambda name: f"http://127.0.0.1:{pipeline.http_port(name)}/admin/breakers/reset"  # noqa: E731
    pipeline.start("no-token")
    wait_until(lambda: http("GET", url_of("no-token").replace("/admin/breakers/reset", "/health/live"),
                            token=None)[0] == 200, 30, "worker up")
    # No token configured: refused, whatever the caller sends.
    for token in (None, ADMIN_TOKEN, ""):
        status, answer = http("POST", url_of("no-token"), token=token, body={})
        assert status == 403 and "ZL_ADMIN_TOKEN_FILE" in answer["error"], (token, status, answer)

    pipeline.start("with-token", ZL_ADMIN_TOKEN_FILE=str(token_file(pipeline.workdir)))
    wait_until(lambda: http("GET", url_of("with-token").replace("/admin/breakers/reset", "/health/live"),
                            token=None)[0] == 200, 30, "worker up")
    for token in (None, "wrong-token-0123456789", ADMIN_TOKEN[:-1]):
        assert http("POST", url_of("with-token"), token=token, body={})[0] == 401, token
    # With the token the request reaches the stage's route: the passthrough
    # stage has no breakers to reset (404), verify's answers 202.
    assert http("POST", url_of("with-token"), body={})[0] == 404
    log = pipeline.log("with-token")
    assert ADMIN_TOKEN not in log, "the token was logged"

    # zl-admin forwarding to a worker without the token says so.
    base = start_admin(pipeline, ZL_ADMIN_WORKER_URLS=f"bare=http://127.0.0.1:{pipeline.http_port('no-token')}")
    status, answer = http("POST", base + "/admin/breakers/reset", body={"worker": "bare", "reason": "t"})
    assert status == 502 and "admin token" in answer["error"], answer

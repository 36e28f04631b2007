"""The admin HTTP API (zl-admin) and its CLI (zlctl) against the real
database and broker, with the passthrough test stage as the worker."""
import json
import os
import random
import subprocess
import time
import uuid


from ops_helpers import ADMIN_TOKEN, bin_path, http, make_dead, pipeline, start_tool, stop, token_file  # noqa: F401
from runtime_helpers import psql, states, wait_until


def start_admin(p, workers: str = "", **env) -> str:
    start_tool(p, "admin", "zl-admin", ZL_ADMIN_TOKEN_FILE=str(token_file(p.workdir)), ZL_ADMIN_WORKER_URLS=workers,
               **env)
    port = p.http_port("admin")
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: http("GET", base + "/health/live", token=None)[0] == 200, 20, "zl-admin up")
    return base


def test_no_token_or_a_wrong_token_is_refused(pipeline):
    """Guards against an admin API that acts for anyone who can reach it."""
    base = start_admin(pipeline)
    for token in (None, "", "wrong-token-but-long-enough", ADMIN_TOKEN + "x", ADMIN_TOKEN[:-1]):
        for method, path, body in (("GET", "/admin/dead", None), ("GET", "/admin/health", None),
                                   ("POST", "/admin/sweep", {"reason": "x"})):
            status, answer = http(method, base + path, token=token, body=body)
            assert status == 401, (token, path, status, answer)
    # Not "Bearer <token>" but the bare token: refused too.
    status, _ = http("GET", base + "/admin/dead", token=None, headers={"Authorization": ADMIN_TOKEN})
    assert status == 401
    assert ADMIN_TOKEN not in pipeline.log("admin"), "the token was logged"
    assert http("GET", base + "/admin/dead")[0] == 200


def test_each_call_works_and_a_resolve_shows_in_the_history(pipeline):
    """Guards against operators being unable to see, resolve or requeue a
    dead letter through the API, and against a resolve leaving no audit
    trail or acting twice when retried."""
    chain = random.randrange(3 * 10**9, 4 * 10**9)
    deps = make_dead(pipeline, 2, chain_id=chain)
    ids = [d["deposit_id"] for d in deps]
    # The worker's /admin/ takes the admin token (zl-admin forwards its own).
    w = pipeline.start("healthy-worker", ZL_ADMIN_TOKEN_FILE=str(token_file(pipeline.workdir)))
    wport = pipeline.http_port("healthy-worker")
    start_tool(pipeline, "sweep", "zl-sweep", ZL_SWEEP_CHAIN_ID=chain, ZL_SWEEP_STALE_MS=86400000,
               ZL_SWEEP_INTERVAL_MS=300)
    base = start_admin(pipeline, workers=f"passthrough=http://127.0.0.1:{wport}")

    wait_until(lambda: http("GET", base + "/admin/health")[0] == 200, 30, "aggregated health ready")
    status, h = http("GET", base + "/admin/health")
    assert h["status"] == "healthy" and h["workers"][0]["name"] == "passthrough" and h["workers"][0]["ready"], h

    status, dead = http("GET", base + "/admin/dead?stage=passthrough&limit=1000")
    assert status == 200, dead
    listed = {d["deposit_id"]: d for d in dead["dead"]}
    for i in ids:
        assert i in listed, f"dead deposit {i} not listed"
        assert listed[i]["last_error_class"] == "permanent" and listed[i]["dlq_topic"] == pipeline.dlq_topic

    status, dep = http("GET", base + f"/admin/deposits/{ids[0]}")
    assert status == 200 and dep["deposit"]["state"] == "dead", dep
    assert [h["to_state"] for h in dep["history"]] == ["detected", "dead"], dep["history"]
    assert http("GET", base + "/admin/deposits/31337:0xnope:0")[0] == 404

    # resolve: a reason is required; the Idempotency-Key makes a retry harmless
    url = base + f"/admin/dead/{ids[0]}/resolve"
    assert http("POST", url, body={"action": "resolve"})[0] == 400
    key = str(uuid.uuid4())
    body = {"action": "resolve", "reason": "refunded by hand, ticket OPS-1"}
    first = http("POST", url, body=body, headers={"Idempotency-Key": key, "X-Actor": "alice"})
    again = http("POST", url, body=body, headers={"Idempotency-Key": key, "X-Actor": "alice"})
    assert first[0] == 200 and again == first, (first, again)
    assert http("POST", url, body=dict(body, reason="other"), headers={"Idempotency-Key": key})[0] == 422
    assert http("POST", url, body=body)[0] == 409, "a second resolve without the key must not act again"
    status, dep = http("GET", base + f"/admin/deposits/{ids[0]}")
    audits = [a for a in dep["audit"] if a["action"] == "resolve"]
    assert len(audits) == 1, dep["audit"]
    assert audits[0]["reason"] == body["reason"] and audits[0]["actor"].startswith("alice")
    assert ADMIN_TOKEN not in audits[0]["actor"]
    assert dep["deposit"]["resolved_by_operator"] is True
    status, dead = http("GET", base + "/admin/dead?limit=1000")
    assert ids[0] not in {d["deposit_id"] for d in dead["dead"]}, "a resolved dead letter is still listed"

    # requeue: back to the state it died in, and the sweeper re-publishes it
    status, rq = http("POST", base + f"/admin/dead/{ids[1]}/resolve",
                      body={"action": "requeue", "reason": "cause fixed"})
    assert status == 200 and rq["to_state"] == "detected", rq
    wait_until(lambda: states([ids[1]])[ids[1]] == "verified", 60, "the requeued deposit processed")
    status, dep = http("GET", base + f"/admin/deposits/{ids[1]}")
    assert [h["to_state"] for h in dep["history"]] == ["detected", "dead", "detected", "verified"], dep["history"]
    assert dep["audit"][0]["action"] == "requeue"

    # trigger a sweep
    status, sw = http("POST", base + "/admin/sweep", body={"reason": "manual check", "stale_ms": 86400000})
    assert status == 202, sw
    wait_until(lambda: http("GET", base + f"/admin/sweep/{sw['request_id']}")[1].get("done_at"), 30,
               "the sweep request served")

    # reset a breaker: the passthrough worker has no reset hook yet
    status, br = http("POST", base + "/admin/breakers/reset",
                      body={"worker": "passthrough", "dependency": "rpc", "reason": "provider fixed"})
    assert status == 501 and "no breaker reset endpoint" in br["error"], br
    assert http("POST", base + "/admin/breakers/reset", body={"worker": "nope", "reason": "x"})[0] == 400

    # metrics: the state-table gauges the alert rules read
    status, text = http("GET", base + "/metrics", token=None)
    assert status == 200
    for name in ("zl_pending_deposits", "zl_oldest_pending_seconds", "zl_dead_deposits", "zl_admin_requests_total"):
        assert f"\n{name}" in text or text.startswith(name), f"{name} missing from /metrics"

    # the CLI over the same API
    env = dict(os.environ, ZL_ADMIN_URL=base, ZL_ADMIN_TOKEN_FILE=str(pipeline.workdir / "admin_token"))
    out = subprocess.run([bin_path("zlctl"), "deposit", ids[1]], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["deposit"]["state"] == "verified"
    out = subprocess.run([bin_path("zlctl"), "resolve", ids[1], "--reason", "x"], env=env, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 1 and "not dead" in out.stdout, out.stdout + out.stderr
    stop(w)


def test_rate_limit_refuses_a_burst_beyond_the_bucket(pipeline):
    """Guards against an admin API that a script (or a token-guessing
    client) can hammer without limit."""
    # Wrong tokens draw on the peer's budget of failed attempts (admin.h).
    base = start_admin(pipeline, ZL_ADMIN_RATE_PER_S="1", ZL_ADMIN_BURST="5", ZL_ADMIN_AUTH_FAIL_PER_S="1",
                       ZL_ADMIN_AUTH_FAIL_BURST="5")
    codes = [http("GET", base + "/admin/dead?limit=1", token="wrong-token-guess-123")[0] for _ in range(10)]
    assert codes[:5] == [401] * 5 and 429 in codes[5:], codes
    time.sleep(2.2)
    assert http("GET", base + "/admin/dead?limit=1")[0] == 200

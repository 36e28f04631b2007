"""Breaker reset (issue 20) is served by every worker that has a breaker:
`zlctl breaker-reset --worker W` through zl-admin reaches mint (its RPC
endpoints), ipfs-upload (its providers) and credit (its price source), not
only verify (test_verify.py); before, those three answered 501.

Against the harness's own services (LocalPipeline), every stage running:
ipfs-upload has a dead provider listed first and credit a price source that
fails, both with breakers that stay open for ten minutes once they trip. The
operator fixes the price source, resets the breakers, and the deposit that
waited on credit is credited; the providers' breakers read closed.
"""
import json
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from runtime_helpers import wait_until
from zlharness.env import write_secret
from zlharness.procs import free_port
from zlharness.web import http_get

ADMIN_TOKEN = "breaker-reset-test-token-" + "x" * 16
# Long enough that nothing but a reset closes a breaker during the test.
BREAK_MS = "600000"


class RateSource:
    """An HTTP price source for credit ({"rate": "100"}), failing (500)
    until fixed."""

    def __init__(self):
        self.ok = False
        self.hits = 0
        source = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                source.hits += 1
                body = json.dumps({"rate": "100"}).encode() if source.ok else b"{}"
                self.send_response(200 if source.ok else 500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/rate/{{token}}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def port_of(p, name: str) -> str:
    f = p.local / "run" / f"{name}.port"
    wait_until(lambda: f.exists() and f.read_text().strip() != "", 30, f"{name}'s port")
    return f.read_text().strip()


def breaker_state(p, worker: str, dependency: str) -> str | None:
    """zl_breaker_state of a dependency on a worker's /metrics: 0 closed, 2 open."""
    text = http_get(f"http://127.0.0.1:{port_of(p, worker)}/metrics")[1].decode()
    m = re.search(r'^zl_breaker_state\{[^}]*dependency="' + re.escape(dependency) + r'"[^}]*\} (\S+)$', text, re.M)
    return m.group(1) if m else None


def zlctl(p, base: str, *args: str) -> subprocess.CompletedProcess:
    env = p.worker_env("zlctl")
    env["ZL_ADMIN_URL"] = base
    return subprocess.run([str(p.bin / "zlctl"), *args], env=env, capture_output=True, text=True, timeout=60)


def reset(p, base: str, worker: str, dependency: str) -> dict:
    out = zlctl(p, base, "breaker-reset", "--worker", worker, "--dependency", dependency, "--reason",
                "dependency fixed")
    assert out.returncode == 0, f"breaker-reset {worker}: exit {out.returncode}: {out.stdout} {out.stderr}"
    answer = json.loads(out.stdout)
    assert answer["worker"] == worker and answer["worker_answer"]["accepted"] is True, answer
    return answer


def log_of(p, worker: str) -> str:
    return (p.local / "run" / f"{worker}.log").read_text(errors="replace")


def test_mint_ipfs_upload_and_credit_serve_breaker_reset():
    """Guards against the runbook's `zlctl breaker-reset --worker mint`
    answering 501 (only verify served it): each of mint, ipfs-upload and
    credit resets its own breakers on request, an open breaker reads closed
    afterwards, and a stage paused behind one resumes at once instead of
    after its break duration."""
    from zlharness.pipeline import STAGES, scratch_pipeline
    rates = RateSource()
    try:
        with scratch_pipeline("breakers") as p:
            p.setup(accounts=1, users=1)
            tok = write_secret(p.local / "keys" / "admin.token", ADMIN_TOKEN)
            dead = f"http://127.0.0.1:{free_port()}"
            p.worker_overrides.update({
                "ZL_ADMIN_TOKEN_FILE": str(tok),
                # ipfs-upload: a dead provider first, then the real Kubo.
                "ZL_IPFS_PROVIDERS": f"kubo={dead},kubo={p.env['ZL_IPFS_API_URL']}",
                "ZL_IPFS_BREAKER_MIN_THROUGHPUT": "1",
                "ZL_IPFS_BREAKER_BREAK_MS": BREAK_MS,
                # credit: an HTTP price source, failing until fixed.
                "ZL_CREDIT_RATE_URL": rates.url,
                "ZL_CREDIT_RATE_BREAKER_MIN_THROUGHPUT": "1",
                "ZL_CREDIT_RATE_BREAKER_BREAK_MS": BREAK_MS,
            })
            p.start_workers([(s, 1) for s in STAGES])
            workers = ",".join(f"{s}=http://127.0.0.1:{port_of(p, s + '-0')}" for s in ("mint", "ipfs-upload", "credit"))
            p.worker_overrides["ZL_ADMIN_WORKER_URLS"] = workers
            p.start_workers([("zl-admin", 1)])
            base = f"http://127.0.0.1:{port_of(p, 'zl-admin-0')}"
            wait_until(lambda: http_get(base + "/health/live")[0] == 200, 30, "zl-admin up")

            addr = p.deposit_addrs[0]
            assert p.make_deposits(1, [addr], amount_of=lambda _j: 3 * 10**18) == 1
            wait_until(lambda: p.counts([addr])["minted"] == 1, 180, "the deposit minted (credit cannot price it)")
            wait_until(lambda: breaker_state(p, "ipfs-upload-0", "ipfs:0:kubo") == "2", 30,
                       "the dead provider's breaker open")
            wait_until(lambda: breaker_state(p, "credit-0", "rate-source") == "2", 30,
                       "the price source's breaker open")

            # The operator fixes the price source; the breaker would keep
            # credit paused for ten minutes more.
            rates.ok = True
            reset(p, base, "credit", "rate-source")
            wait_until(lambda: p.counts([addr])["credited"] == 1, 60, "the deposit credited after the reset")
            assert "admin: reset 1 circuit breaker(s) for dependency rate-source" in log_of(p, "credit-0")

            reset(p, base, "ipfs-upload", "ipfs")
            wait_until(lambda: breaker_state(p, "ipfs-upload-0", "ipfs:0:kubo") == "0", 10,
                       "the provider's breaker closed by the reset")
            wait_until(lambda: "admin: reset 2 circuit breaker(s) for dependency ipfs" in log_of(p, "ipfs-upload-0"),
                       10, "ipfs-upload's reset of both providers logged")

            reset(p, base, "mint", "rpc")
            wait_until(lambda: "admin: reset 1 circuit breaker(s) for dependency rpc" in log_of(p, "mint-0"), 10,
                       "mint's reset logged")
            assert breaker_state(p, "mint-0", "rpc:" + p.env["ZL_RPC_URLS"].rstrip("/")) == "0"

            audits = p.psql("SELECT detail->>'worker', (detail->>'worker_status')::int FROM admin_audit"
                            " WHERE action = 'breaker_reset' ORDER BY id")
            assert audits == [["credit", "202"], ["ipfs-upload", "202"], ["mint", "202"]], audits
    finally:
        rates.close()

"""The verify stage against a private anvil: finality, wrong facts, and
failover across misbehaving RPC endpoints (tests/integration/rpc_fault_proxy.py)."""
import pytest

from chain_helpers import Chain, Workers, dep_id, migrate, register_addresses, rows_for, wait_until
from rpc_fault_proxy import FaultProxy
from runtime_helpers import kcat


@pytest.fixture(scope="module", autouse=True)
def schema():
    migrate()


@pytest.fixture
def chain(tmp_path):
    c = Chain(tmp_path)
    yield c
    c.stop()


@pytest.fixture
def workers(tmp_path, chain):
    w = Workers(tmp_path, chain)
    yield w
    w.stop_all()


def state_of(chain, did):
    return rows_for(chain.token).get(did, {}).get("state")


def dlq_keys(w):
    out = kcat("-C", "-t", w.prefix + "verify.dlq", "-o", "beginning", "-e", "-q", "-f", "%k %h\n")
    return out


def test_nothing_verified_before_n_confirmations(chain, workers):
    """Guards against passing a deposit that is not final: with
    ZL_CONFIRMATIONS=5 the deposit stays detected until 5 blocks are on top."""
    (addr,) = register_addresses(1)
    tx = chain.transfer(0, addr, 1000)
    did = dep_id(tx, 0)
    workers.start("detect", "detect")
    workers.start("verify", "verify", ZL_CONFIRMATIONS="5")
    wait_until(lambda: state_of(chain, did) == "detected", 30, "deposit detected")
    import time
    time.sleep(3)
    assert state_of(chain, did) == "detected", "verified before 5 confirmations"
    assert workers.topic_ids("deposits.verified") == []
    chain.mine(5)
    wait_until(lambda: state_of(chain, did) == "verified", 40, "verified after 5 blocks")
    evs = [e for e in workers.topic_events("deposits.verified") if e["deposit_id"] == did]
    assert evs and all(e["confirmations"] >= 5 for e in evs)


def test_amount_below_minimum_is_dead_lettered_not_verified(chain, workers):
    """Guards against crediting dust: an amount under ZL_MIN_AMOUNT is permanent."""
    (addr,) = register_addresses(1)
    tx = chain.transfer(1, addr, 5)
    did = dep_id(tx, 0)
    workers.start("detect", "detect")
    workers.start("verify", "verify", ZL_CONFIRMATIONS="0", ZL_MIN_AMOUNT="100")
    wait_until(lambda: state_of(chain, did) == "dead", 40, "dust deposit dead-lettered")
    assert "permanent" in dlq_keys(workers)
    assert workers.topic_ids("deposits.verified") == []


def test_verify_passes_with_six_of_seven_endpoints_failing(chain, workers):
    """Guards against one bad endpoint (dead, 429, 500, garbage, stalls,
    -32005) stopping verification: seed 000's "even if 6/7 endpoints fail"."""
    modes = ["dead", "429", "500", "garbage", "stall", "32005"]
    proxies = [FaultProxy(chain.url, m, stall_s=3.0) for m in modes]
    good = FaultProxy(chain.url, "ok")
    try:
        urls = ",".join(p.url for p in proxies) + "," + good.url
        (addr,) = register_addresses(1)
        txs = [chain.transfer(i % 3, addr, 1000 + i) for i in range(3)]
        ids = {dep_id(t, 0) for t in txs}
        workers.start("detect", "detect", ZL_RPC_URLS=urls)
        workers.start("verify", "verify", ZL_RPC_URLS=urls, ZL_CONFIRMATIONS="1")
        chain.mine(2)
        wait_until(lambda: all(state_of(chain, d) == "verified" for d in ids), 60, "all verified via the one good endpoint")
        assert good.hits > 0
    finally:
        for p in proxies + [good]:
            p.close()


def test_admin_breaker_reset_closes_an_open_endpoint_breaker(chain, workers):
    """Guards against an operator being unable to end a circuit break early
    once the endpoint is fixed: POST /admin/breakers/reset on the worker
    closes the breaker (seen in /metrics and the worker's log)."""
    import json
    import re
    import subprocess

    bad = FaultProxy(chain.url, "500")
    good = FaultProxy(chain.url, "ok")
    try:
        urls = f"{bad.url},{good.url}"
        (addr,) = register_addresses(1)
        txs = [chain.transfer(i % 3, addr, 1000 + i) for i in range(6)]
        ids = {dep_id(t, 0) for t in txs}
        workers.start("detect", "detect", ZL_RPC_URLS=good.url)
        workers.start("verify", "verify", ZL_RPC_URLS=urls, ZL_CONFIRMATIONS="1", ZL_RPC_BREAKER_MIN_CALLS="1",
                      ZL_RPC_BREAKER_BREAK_MS="600000")
        chain.mine(2)
        wait_until(lambda: all(state_of(chain, d) == "verified" for d in ids), 60, "verified via the good endpoint")
        port = (workers.workdir / "verify.port").read_text().strip()
        bad_dep = "rpc:" + bad.url.rstrip("/")  # breakers are named <client>:<scheme://host:port>

        def breaker_state() -> str | None:
            body = subprocess.run(["curl", "-s", f"http://127.0.0.1:{port}/metrics"], capture_output=True,
                                  text=True, timeout=10).stdout
            m = re.search(r'zl_breaker_state\{[^}]*dependency="' + re.escape(bad_dep) + r'"[^}]*\} (\S+)', body)
            return m.group(1) if m else None

        wait_until(lambda: breaker_state() == "2", 30, f"the failing endpoint's breaker open ({bad_dep})")
        bad.set_mode("ok")  # the operator fixed it
        out = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", "-X", "POST", "-d",
                              json.dumps({"dependency": "rpc"}), f"http://127.0.0.1:{port}/admin/breakers/reset"],
                             capture_output=True, text=True, timeout=10).stdout
        body, status = out.rsplit("\n", 1)
        assert status == "202", out
        assert json.loads(body)["accepted"] is True
        wait_until(lambda: breaker_state() == "0", 10, "the breaker closed by the reset")
        assert "admin: reset 1 circuit breaker(s)" in workers.log("verify")
    finally:
        bad.close()
        good.close()

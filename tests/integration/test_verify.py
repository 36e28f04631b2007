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

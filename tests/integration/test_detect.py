"""The detect stage against a private anvil, the real database and broker.

Ground truth is the chain itself: the set of (tx_hash, log_index) of every
Transfer of the test token to a registered deposit address. The detector must
record exactly that set as rows: nothing missing, nothing twice.
"""
import time


from chain_helpers import Chain, Workers, chain, dep_id, register_addresses, rows_for, wait_until, workers  # noqa: F401
from runtime_helpers import psql


def truth_ids(chain: Chain, addrs: dict) -> set[str]:
    return {dep_id(tx, li) for tx, li in chain.transfers_to(set(addrs))}


def make_deposits(chain: Chain, addrs: list[str], n_single: int, n_same_block: int) -> None:
    """n_single deposits in their own blocks, then n_same_block in one block
    (automine off, then one block mined)."""
    for i in range(n_single):
        chain.transfer(i % 3, addrs[i % len(addrs)], 1000 + i)
    if n_same_block:
        chain.automine(False)
        for i in range(n_same_block):
            chain.transfer(i % 3, addrs[i % len(addrs)], 5000 + i, wait=False)
        chain.mine(1)
        chain.automine(True)


def test_every_deposit_detected_exactly_once_across_ranges_and_in_one_block(chain, workers):
    """Guards against missed deposits at scan-range edges, deposits sharing a
    block being collapsed, and Transfers to unknown addresses being taken."""
    addrs = register_addresses(3)
    make_deposits(chain, list(addrs), 5, 3)
    chain.transfer(0, "0x" + "77" * 20, 42)  # not ours: must be ignored
    workers.start("detect", "detect", ZL_DETECT_RANGE_MAX="2")
    want = truth_ids(chain, addrs)
    assert len(want) == 8
    wait_until(lambda: set(rows_for(chain.token)) == want, 30, "every deposit recorded")
    rows = rows_for(chain.token)
    assert all(r["state"] == "detected" for r in rows.values())
    assert all(r["user_id"] == addrs[r["to"]] for r in rows.values())
    wait_until(lambda: set(workers.topic_ids("deposits.detected")) >= want, 30, "every deposit published")
    # more deposits while it runs: picked up too, still exactly once
    make_deposits(chain, list(addrs), 2, 0)
    want = truth_ids(chain, addrs)
    wait_until(lambda: set(rows_for(chain.token)) == want, 30, "later deposits recorded")
    time.sleep(1)
    assert set(rows_for(chain.token)) == want
    dec = psql("SELECT decimals FROM token_decimals WHERE token = :'v1'", chain.token)
    assert dec == [["18"]]


def test_detect_killed_after_commit_restarts_without_loss_or_duplicate(chain, workers):
    """Guards against a crash between the DB commit and the next step losing
    or doubling deposits (the cursor moves in the same transaction)."""
    addrs = register_addresses(2)
    make_deposits(chain, list(addrs), 6, 0)
    want = truth_ids(chain, addrs)
    p = workers.start("detect", "detect1", ZL_DETECT_RANGE_MAX="3", ZL_FAULT_POINT="after_db_commit",
                      ZL_FAULT_AFTER="2")
    p.wait(timeout=30)
    assert p.returncode == -9, "the fault point should have SIGKILLed the detector"
    workers.start("detect", "detect2", ZL_DETECT_RANGE_MAX="3")
    wait_until(lambda: set(rows_for(chain.token)) == want, 30, "every deposit recorded after restart")
    time.sleep(1)
    assert set(rows_for(chain.token)) == want


def test_broker_down_while_detecting_records_every_deposit(chain, workers):
    """Guards against losing deposits when Kafka is unreachable: the rows are
    written first, and the sweeper publishes them later."""
    addrs = register_addresses(2)
    make_deposits(chain, list(addrs), 4, 2)
    want = truth_ids(chain, addrs)
    workers.start("detect", "detect", ZL_KAFKA_BROKERS="127.0.0.1:1", ZL_DELIVERY_TIMEOUT_MS="2000")
    wait_until(lambda: set(rows_for(chain.token)) == want, 30, "every deposit recorded with the broker down")


def test_standby_detector_takes_over_without_gap_or_duplicate(chain, workers):
    """Guards against two scanners racing (double insert/publish) and against
    a gap when the active one dies: one holds the advisory lock, the other
    waits and takes over."""
    addrs = register_addresses(2)
    make_deposits(chain, list(addrs), 3, 0)
    a = workers.start("detect", "detect-a", ZL_DETECT_RANGE_MAX="1")
    wait_until(lambda: "active detector" in workers.log("detect-a"), 20, "detect-a active")
    workers.start("detect", "detect-b", ZL_DETECT_RANGE_MAX="1")
    want = truth_ids(chain, addrs)
    wait_until(lambda: set(rows_for(chain.token)) == want, 30, "first deposits recorded")
    assert "active detector" not in workers.log("detect-b")
    a.kill()
    a.wait(timeout=10)
    before = want
    make_deposits(chain, list(addrs), 3, 0)
    want = truth_ids(chain, addrs)
    wait_until(lambda: set(rows_for(chain.token)) == want, 30, "deposits after failover recorded")
    assert "active detector" in workers.log("detect-b")
    # What the killed copy had queued but not delivered is the sweeper's to
    # re-publish (its rows are recorded); what b found must be published.
    wait_until(lambda: set(workers.topic_ids("deposits.detected")) >= want - before, 30, "b's deposits published")


def test_reorg_marks_orphaned_deposits_and_detects_the_reincluded_one(chain, workers):
    """Guards against passing on deposits from blocks that were replaced, and
    against losing a deposit whose transaction was re-included elsewhere."""
    addrs = register_addresses(2)
    a1, a2 = list(addrs)
    workers.start("detect", "detect")
    snap = chain.rpc("evm_snapshot").strip('"')
    tx_gone = chain.transfer(0, a1, 111)
    raw = cast_raw_tx(chain, chain.transfer(1, a2, 222))
    id_gone = dep_id(tx_gone, 0)
    wait_until(lambda: len(rows_for(chain.token)) == 2, 30, "both deposits recorded")
    old = rows_for(chain.token)
    chain.rpc("evm_revert", snap)
    chain.mine(1)  # a different block at the old height
    chain.rpc("eth_sendRawTransaction", raw)  # the second deposit comes back, in a new block
    chain.mine(3)
    wait_until(lambda: rows_for(chain.token).get(id_gone, {}).get("state") == "reorged", 30, "orphan marked")
    want = truth_ids(chain, addrs)
    assert id_gone not in want and len(want) == 1
    (back,) = want
    wait_until(lambda: rows_for(chain.token).get(back, {}).get("state") == "detected"
               and rows_for(chain.token)[back]["block_hash"] != old.get(back, {}).get("block_hash"),
               30, "re-included deposit recorded with its new block")


def cast_raw_tx(chain: Chain, tx_hash: str) -> str:
    from chain_helpers import cast
    return cast("tx", "--rpc-url", chain.url, tx_hash, "--raw")

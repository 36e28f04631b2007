"""detect writes a range's deposits chunk by chunk (one insert per eth_getLogs
sub-range, each overlapping the next request) inside the step's transaction:
a crash after some of a range's rows were written leaves none of them, and
no cursor past them."""
import time

from chain_helpers import Chain, Workers, chain, dep_id, register_addresses, rows_for, wait_until, workers  # noqa: F401
from runtime_helpers import psql


def test_detect_killed_mid_range_leaves_no_partial_range(chain, workers):
    """Guards against a crash between two chunks of one range committing the
    first chunk's deposits (or the cursor) without the rest: the deposits,
    their history rows and the cursor live and die with one transaction."""
    addrs = register_addresses(2)
    a1, a2 = list(addrs)
    for i in range(4):
        chain.transfer(i % 3, a1, 100 + i)
    chain.mine(3000)  # the two groups fall in different eth_getLogs sub-ranges (chunks) of one step
    for i in range(4):
        chain.transfer(i % 3, a2, 200 + i)
    want = {dep_id(tx, li) for tx, li in chain.transfers_to(set(addrs))}
    assert len(want) == 8
    # One step covers the whole chain; the first chunk's rows are written
    # (not committed) when the fault point kills the process.
    p = workers.start("detect", "detect1", ZL_DETECT_RANGE_MAX="1000000", ZL_FAULT_POINT="detect_after_insert",
                      ZL_FAULT_AFTER="1")
    p.wait(timeout=60)
    assert p.returncode == -9, "the fault point should have SIGKILLed the detector"
    assert "recorded" not in workers.log("detect1"), "no step may have committed before the kill"
    assert rows_for(chain.token) == {}, "a killed step must leave none of its range's rows"
    cursor = psql("SELECT count(*) FROM detector_cursor WHERE token = :'v1'", chain.token)
    assert cursor == [["0"]], "a killed step must not leave a cursor"
    history = psql("SELECT count(*) FROM deposit_history WHERE deposit_id = ANY(string_to_array(:'v1', ','))",
                   ",".join(sorted(want)))
    assert history == [["0"]], "a killed step must leave no history rows"
    workers.start("detect", "detect2", ZL_DETECT_RANGE_MAX="1000000")
    wait_until(lambda: set(rows_for(chain.token)) == want, 60, "every deposit recorded after restart")
    time.sleep(1)
    rows = rows_for(chain.token)
    assert set(rows) == want
    assert all(r["state"] == "detected" and r["user_id"] == addrs[r["to"]] for r in rows.values())
    history = psql("SELECT count(*) FROM deposit_history WHERE deposit_id = ANY(string_to_array(:'v1', ','))",
                   ",".join(sorted(want)))
    assert history == [["8"]], "each deposit's detected history row is written once"

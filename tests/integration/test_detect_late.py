"""Completeness of detect's scan (issue 18): late registration and the
address set, against a private anvil, the real database and broker.

A user often pays to an address before it is registered (addresses are
handed out and registered asynchronously). detect's live scan never looks
back, so registering records the first block the address must be scanned
from and detect backfills it; and the scan reads every Transfer of the token
and keeps those to a registered address, so no number of addresses is ever
cut off.
"""
import json
import os
import re
import secrets
import subprocess
import time
import uuid
from pathlib import Path

from conftest import need_env
from chain_helpers import Chain, Workers, chain, dep_id, register_addresses, rows_for, wait_until, workers  # noqa: F401
from runtime_helpers import psql
from zlharness.chain import cast
from zlharness.web import http_get


def zl_address(*args: str, **env: str) -> subprocess.CompletedProcess:
    r = subprocess.run([str(Path(need_env("ZL_BIN_DIR")) / "zl-address"), *args], capture_output=True, text=True,
                       timeout=30, env=dict(os.environ, **env))
    assert r.returncode == 0, f"zl-address {args}: exit {r.returncode}: {r.stderr}"
    return r


def block_of(chain: Chain, tx: str) -> int:
    rec = json.loads(cast("receipt", "--rpc-url", chain.url, tx, "--json"))
    return int(str(rec["blockNumber"]), 0)


def cursor_of(token: str) -> int:
    rows = psql("SELECT block_number FROM detector_cursor WHERE token = :'v1'", token)
    return int(rows[0][0]) if rows else -1


def wait_cursor_past(chain: Chain, block: int) -> None:
    chain.mine(3)
    wait_until(lambda: cursor_of(chain.token) > block, 30, f"detect's cursor past block {block}")


def metric(workers: Workers, name: str, text: str | None = None) -> float:
    if text is None:
        text = http_get(f"http://127.0.0.1:{workers.http_port('detect')}/metrics")[1].decode()
    m = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    assert m, f"{name} not on detect's /metrics"
    return float(m.group(1))


def detected_events(workers: Workers, deposit_id: str) -> int:
    return sum(1 for i in workers.topic_ids("deposits.detected") if i == deposit_id)


def fresh_address() -> tuple[str, str]:
    return "0x" + secrets.token_hex(20), "u-" + uuid.uuid4().hex[:12]


def assert_recorded_once(chain: Chain, workers: Workers, did: str, user: str) -> None:
    wait_until(lambda: did in rows_for(chain.token), 30, f"deposit {did} recorded by the backfill")
    wait_until(lambda: detected_events(workers, did) >= 1, 30, f"deposit {did} published")
    time.sleep(1.5)  # more live steps and backfill chunks: nothing more may appear
    rows = rows_for(chain.token)
    assert list(rows) == [did], f"expected exactly the one deposit {did}, got {sorted(rows)}"
    assert rows[did]["user_id"] == user
    assert detected_events(workers, did) == 1, "the deposit was published more than once"


def test_deposit_before_registration_is_detected_once_after_register_with_since_block(chain, workers):
    """Guards against a deposit paid before its address was registered, and
    passed by detect's cursor, never being detected: registering with
    --since-block backfills the address from that block."""
    register_addresses(1)  # the set is not empty: detect scans
    addr, user = fresh_address()
    tx = chain.transfer(0, addr, 4242)
    b = block_of(chain, tx)
    workers.start("detect", "detect")
    wait_cursor_past(chain, b)
    time.sleep(0.5)
    assert rows_for(chain.token) == {}, "nothing is registered yet: nothing may be recorded"
    r = zl_address("add", addr, user, "--since-block", str(b))
    assert f"scanned from block {b}" in r.stderr
    did = dep_id(tx, 0)
    assert_recorded_once(chain, workers, did, user)
    wait_until(lambda: psql("SELECT count(*) FROM address_backfill WHERE token = :'v1' AND address = :'v2'"
                            " AND done_at IS NOT NULL", chain.token, addr) == [["1"]], 30, "backfill range done")
    assert metric(workers, "zl_detect_backfill_deposits_total") == 1
    assert metric(workers, "zl_detect_backfill_done_total") >= 1
    assert metric(workers, "zl_detect_backfill_pending") == 0
    log = workers.log("detect")
    assert "backfill range recorded" in log and "backfill done" in log, log[-3000:]


def test_deposit_before_registration_is_detected_once_with_the_default_lookback(chain, workers):
    """Guards against late registration needing support to know the block:
    without --since-block the address is scanned back
    ZL_ADDRESS_LOOKBACK_BLOCKS before detect's cursor."""
    register_addresses(1)
    addr, user = fresh_address()
    tx = chain.transfer(1, addr, 777)
    b = block_of(chain, tx)
    workers.start("detect", "detect")
    wait_cursor_past(chain, b)
    r = zl_address("add", addr, user)
    since = int(re.search(r"scanned from block (\d+)", r.stderr).group(1))
    assert since <= b, f"default lookback starts at {since}, after the deposit's block {b}"
    assert_recorded_once(chain, workers, dep_id(tx, 0), user)


def test_registering_twice_and_a_backfill_racing_the_live_scan_record_one_row(chain, workers):
    """Guards against a second registration (an earlier --since-block adds a
    second backfill range over the same block) or a backfill range that
    overlaps the blocks the live scan reads recording a deposit twice: both
    go through the same insert-if-absent statement."""
    register_addresses(1)
    addr, user = fresh_address()
    tx = chain.transfer(0, addr, 5151)
    b = block_of(chain, tx)
    workers.start("detect", "detect")
    wait_cursor_past(chain, b)
    zl_address("add", addr, user, "--since-block", str(b))
    zl_address("add", addr, user, "--since-block", str(b))  # the same again: changes nothing
    did = dep_id(tx, 0)
    assert_recorded_once(chain, workers, did, user)
    zl_address("add", addr, user, "--since-block", "0")  # earlier: a second range over block b
    wait_until(lambda: psql("SELECT count(*) FROM address_backfill WHERE token = :'v1' AND address = :'v2'"
                            " AND done_at IS NOT NULL", chain.token, addr) == [["2"]], 30, "both ranges done")
    assert_recorded_once(chain, workers, did, user)

    # A backfill range over blocks the live scan reads too: detect is
    # stopped, a deposit is made to a registered address, a range over its
    # block is recorded, and a new copy runs both over the same block.
    live_addr, live_user = fresh_address()
    zl_address("add", live_addr, live_user)
    wait_until(lambda: psql("SELECT count(*) FROM address_backfill WHERE token = :'v1' AND address = :'v2'"
                            " AND done_at IS NULL", chain.token, live_addr) == [["0"]], 30, "its own range done")
    workers.procs[-1].kill()
    workers.procs[-1].wait(timeout=10)
    c = cursor_of(chain.token)
    tx2 = chain.transfer(1, live_addr, 6262)
    chain.mine(5)
    head = int(chain.rpc("eth_blockNumber").strip('"'), 16)
    psql("INSERT INTO address_backfill (chain_id, token, address, from_block, to_block, next_block)"
         " VALUES (31337, :'v1', :'v2', :'v3', :'v4', :'v3')", chain.token, live_addr, str(c + 1), str(head))
    workers.start("detect", "detect-2")
    did2 = dep_id(tx2, 0)
    wait_until(lambda: psql("SELECT count(*) FROM address_backfill WHERE token = :'v1' AND address = :'v2'"
                            " AND done_at IS NULL", chain.token, live_addr) == [["0"]], 30, "racing range done")
    wait_until(lambda: cursor_of(chain.token) >= head, 30, "live scan past the raced block")
    wait_until(lambda: detected_events(workers, did2) >= 1, 30, "the raced deposit published")
    time.sleep(1.5)
    assert set(rows_for(chain.token)) == {did, did2}
    assert detected_events(workers, did2) == 1, "a deposit read by the backfill and the live scan published twice"
    assert detected_events(workers, did) == 1


def test_a_deposit_to_the_last_of_1000000_registered_addresses_is_detected(chain, workers):
    """Guards against the address list being cut at a fixed size (it was
    100,000, silently): the last address registered, which also sorts last,
    is watched like the first."""
    n = 1_000_000  # an exchange's scale (issue 18); the bench measures the same set
    tag = "fe" + secrets.token_hex(3)  # ours alone, so the cleanup removes exactly these
    try:
        psql("INSERT INTO deposit_addresses (chain_id, address, user_id)"
             " SELECT 31337, '0x' || :'v1' || lpad(to_hex(i), 32, '0'), 'bulk-' || i"
             " FROM generate_series(1, :'v2'::int) AS i", tag, str(n))
        addr, user = "0xffffffff" + secrets.token_hex(16), "u-" + uuid.uuid4().hex[:12]
        zl_address("add", addr, user)
        tx = chain.transfer(2, addr, 99)
        workers.start("detect", "detect")
        did = dep_id(tx, 0)
        wait_until(lambda: did in rows_for(chain.token), 60, "the deposit to the last address recorded")
        assert rows_for(chain.token)[did]["user_id"] == user
        assert metric(workers, "zl_detect_addresses") >= n + 1
    finally:
        psql("DELETE FROM deposit_addresses WHERE chain_id = 31337 AND address LIKE '0x' || :'v1' || '%'", tag)


def test_more_addresses_than_the_bound_stop_the_scan_loudly_never_truncate(chain, workers):
    """Guards against a bound on the address set dropping deposits: past
    ZL_DETECT_ADDRESSES_MAX detect records nothing and keeps its cursor,
    logs an error and counts it; with the bound raised, every deposit is
    found."""
    addrs = register_addresses(2)
    a = list(addrs)
    txs = [chain.transfer(0, a[0], 11), chain.transfer(1, a[1], 22)]
    workers.start("detect", "detect", ZL_DETECT_ADDRESSES_MAX="1")
    wait_until(lambda: "address limit reached" in workers.log("detect"), 20, "the limit error logged")
    wait_until(lambda: metric(workers, "zl_detect_address_limit_hit_total") >= 1, 20, "the limit counted")
    assert metric(workers, "zl_detect_addresses_max") == 1
    time.sleep(1)
    assert rows_for(chain.token) == {}, "a partial set must not scan"
    assert cursor_of(chain.token) == -1, "the cursor must not move past deposits it could not see"
    workers.procs[-1].kill()
    workers.procs[-1].wait(timeout=10)
    workers.start("detect", "detect-2")
    want = {dep_id(t, 0) for t in txs}
    wait_until(lambda: set(rows_for(chain.token)) == want, 30, "every deposit recorded with the bound raised")


def test_late_registered_deposit_is_credited_once_through_the_whole_pipeline():
    """Guards against a late registration's deposit stopping at detect: paid
    before the address was registered and passed by the cursor, it must end
    credited once (one row, one ledger credit) with every stage running, on
    the harness's own services (LocalPipeline, as the demo and chaos run)."""
    from zlharness.pipeline import STAGES, assert_credited_once, scratch_pipeline
    with scratch_pipeline("late") as p:
        p.setup(accounts=1, users=1)
        p.start_workers([(s, 1) for s in STAGES])
        late, user = fresh_address()
        assert p.make_deposits(1, [late], amount_of=lambda _j: 3 * 10**18) == 1
        p.pool_drained(60)
        head = int(p.cast("block-number", "--rpc-url", p.env["ZL_RPC_URLS"]))

        def cursor() -> int:
            rows = p.psql("SELECT block_number FROM detector_cursor WHERE token = :'v1'", p.token)
            return int(rows[0][0]) if rows else -1
        wait_until(lambda: cursor() > head, 60, f"detect's cursor past block {head}")
        assert p.counts([late])["detected"] == 0
        r = subprocess.run([str(p.bin / "zl-address"), "add", late, user, "--since-block", str(head - 5)],
                           env=p.env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        wait_until(lambda: p.counts([late])["credited"] == 1, 180, "the late deposit credited")
        assert_credited_once(p, late, "300")  # 3 USDT at 100 eggs

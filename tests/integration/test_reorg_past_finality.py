"""Reorgs past finality (issue 18): a deposit already credited whose block
leaves the canonical chain is marked (reorged_after = the state it had),
counted (zl_detect_reorg_past_finality_total) and keeps its state; when its
transaction is re-included in another block, with the same deposit id, it is
not credited nor minted again.

Against the harness's own services (LocalPipeline, as the demo and chaos
run), every stage running. The reorg is made as in test_detect.py: an anvil
snapshot before the deposit, a revert after it was credited, a different
block at the old height, then the same signed transaction sent again.
"""
import re
import time

from runtime_helpers import wait_until
from zlharness.jsonrpc import Rpc
from zlharness.web import http_get

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


def detect_metric(p, name: str) -> float:
    port = (p.local / "run" / "detect-0.port").read_text().strip()
    text = http_get(f"http://127.0.0.1:{port}/metrics")[1].decode()
    m = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    assert m, f"{name} not on detect's /metrics"
    return float(m.group(1))


def run_reorg_under_a_credited_deposit(moved: bool) -> None:
    """A deposit credited, its block reorged out, the same signed transaction
    re-included in a block at another height: after a token mint to an
    unregistered address in the same block when `moved` (so its Transfer
    gets log index 1, a new deposit id), alone otherwise (same id). Asserts
    what both must give: one row, still credited, marked, counted once, one
    ledger credit, one mint."""
    from zlharness.pipeline import STAGES, scratch_pipeline
    with scratch_pipeline("reorgfin") as p:
        p.setup(accounts=1, users=1)
        p.start_workers([(s, 1) for s in STAGES])
        addr = p.deposit_addrs[0]
        rpc = Rpc(p.env["ZL_RPC_URLS"])
        snap = rpc.call("evm_snapshot")
        first = int(rpc.call("eth_blockNumber"), 16) + 1
        assert p.make_deposits(1, [addr], amount_of=lambda _j: 3 * 10**18) == 1
        p.pool_drained(60)
        logs = rpc.call("eth_getLogs", {"fromBlock": hex(first), "toBlock": "latest", "address": p.token,
                                        "topics": [TRANSFER_TOPIC]})
        assert len(logs) == 1, logs
        tx, block = logs[0]["transactionHash"].lower(), int(logs[0]["blockNumber"], 16)
        did = f"{p.env['ZL_CHAIN_ID']}:{tx}:{int(logs[0]['logIndex'], 16)}"
        raw = rpc.call("eth_getRawTransactionByHash", tx)
        wait_until(lambda: p.counts([addr])["credited"] == 1, 180, "the deposit credited")
        assert detect_metric(p, "zl_detect_reorg_past_finality_total") == 0

        # The chain takes the credited deposit's block back (deeper than
        # ZL_CONFIRMATIONS=2), then the same signed transaction is included
        # again, in a block at another height.
        assert rpc.call("evm_revert", snap) is True
        rpc.call("evm_mine")
        if moved:
            # Both in one block, the mint first (anvil orders a block by fee,
            # and the mint offers more than the deposit did): the deposit's
            # Transfer moves to log index 1.
            rpc.call("evm_setIntervalMining", 0)
            owner = p.cast("wallet", "address", "--private-key", p.keys[0]).lower()
            data = p.cast("calldata", "mint(address,uint256)", "0x" + "66" * 20, "7")
            filler = rpc.call("eth_sendTransaction", {
                "from": owner, "to": p.token, "data": data, "gas": hex(200000),
                "maxFeePerGas": hex(10**14), "maxPriorityFeePerGas": hex(10**14)})
        assert rpc.call("eth_sendRawTransaction", raw).lower() == tx
        if moved:
            rpc.call("evm_mine")
            rpc.call("evm_setIntervalMining", 1)
        wait_until(lambda: (rpc.call("eth_getTransactionReceipt", tx) or {}).get("blockNumber") is not None,
                   30, "the transaction re-included")
        receipt = rpc.call("eth_getTransactionReceipt", tx)
        again = int(receipt["blockNumber"], 16)
        assert again != block, "the re-inclusion must be in another block"
        # The block-wide index, as detect reads it (eth_getLogs).
        back = [lg for lg in rpc.call("eth_getLogs", {"fromBlock": hex(again), "toBlock": hex(again),
                                                       "address": p.token, "topics": [TRANSFER_TOPIC]})
                if lg["transactionHash"].lower() == tx]
        moved_id = f"{p.env['ZL_CHAIN_ID']}:{tx}:{int(back[0]['logIndex'], 16)}"
        if moved:
            fr = rpc.call("eth_getTransactionReceipt", filler)
            assert fr is not None and fr["blockNumber"] == receipt["blockNumber"], "the mint in the same block"
        assert (moved_id != did) == moved, (moved_id, did)

        wait_until(lambda: detect_metric(p, "zl_detect_reorg_past_finality_total") >= 1, 60,
                   "the reorg past finality counted")
        row = p.psql("SELECT state, reorged_after, reorged_at IS NOT NULL FROM deposits WHERE deposit_id = :'v1'",
                     did)
        assert row == [["credited", "credited", "t"]], row
        # detect has scanned past the re-included block: the deposit was
        # seen again and paid nothing more.
        wait_until(lambda: int((p.psql("SELECT block_number FROM detector_cursor WHERE token = :'v1'", p.token)
                                or [["-1"]])[0][0]) > again, 60, f"detect's cursor past block {again}")
        time.sleep(3)  # a second credit or mint, if any, would land by now
        c = p.counts([addr])
        assert sum(c.values()) == 1 and c["credited"] == 1, c
        assert p.psql("SELECT deposit_id, state, reorged_after FROM deposits WHERE to_addr = :'v1'", addr) == \
            [[did, "credited", "credited"]]
        assert detect_metric(p, "zl_detect_reorg_past_finality_total") == 1, "counted once, not per rescan"
        entries = p.psql("SELECT e.deposit_id, e.amount FROM ledger_entries e JOIN deposits d USING (deposit_id)"
                         " WHERE d.to_addr = :'v1' AND e.kind = 'user_credit'", addr)
        assert entries == [[did, "300"]], f"expected one credit of 300 eggs (3 USDT at 100), got {entries}"
        mints = p.psql("SELECT count(*) FROM deposit_history h JOIN deposits d USING (deposit_id)"
                       " WHERE d.to_addr = :'v1' AND h.to_state = 'minted'", addr)
        assert mints == [["1"]], f"expected one mint, got {mints}"
        rpc.close()


def test_a_credited_deposit_reorged_out_and_reincluded_is_marked_counted_and_credited_once():
    """Guards against a reorg deeper than the confirmations under a credited
    deposit being only logged (nothing on the row, no metric), and against
    its re-inclusion in another block, with the same id, crediting or
    minting it a second time."""
    run_reorg_under_a_credited_deposit(moved=False)


def test_a_credited_deposit_reincluded_at_another_log_index_is_not_paid_again():
    """Guards against a re-inclusion that moves the Transfer to another log
    index (a new deposit id) being recorded and paid as a second deposit
    while the first, credited, row is marked."""
    run_reorg_under_a_credited_deposit(moved=True)

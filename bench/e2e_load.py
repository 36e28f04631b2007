#!/usr/bin/env python3
"""bench/e2e_load.py: the deposit load generator of bench/e2e.sh.

Sends ERC-20 transfers of the test token to registered deposit addresses, at
a fixed rate or as fast as the node takes them, from anvil's unlocked dev
accounts with eth_sendTransaction in JSON-RPC batches over ONE kept-alive HTTP
connection (a cast process per transfer costs 50-100 ms; this costs ~1 ms).

  e2e_load.py fund RPC TOKEN SENDERS
      mints 10^30 test USDT to dev accounts 1..SENDERS (account 0, the token's
      owner, is the minter and stays free for the mint stage's signer).
  e2e_load.py send RPC TOKEN SENDERS ADDRS_CSV OUT_CSV --rate R --seconds S
      R transfers/s for S seconds (open loop: the schedule does not slow down
      when the node does; lateness is reported). --rate 0 with --count N sends
      N as fast as possible. OUT_CSV gets tx_hash,sent_ms (wall clock in ms,
      taken when the node admitted the batch; anvil mines it a moment later).
      Before it starts and after the last batch it waits for the node's pool
      to be empty. A summary JSON line goes to stdout.
  --timed (either command): the node mines on its own clock (anvil
      --block-time); waiting for its pool never asks for a block, which would
      add blocks between the clock's.

Nonces are explicit per sender: requests of one batch run concurrently in
anvil, so nonces it picked itself would clash. Limits: TICK_MS (pacing
granularity), BATCH_MAX (transfers per HTTP request); the JSON-RPC client
is tests/lib/zlharness/jsonrpc.py.
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "lib"))  # the harness
from zlharness.jsonrpc import Rpc, RpcError, transfer_data, wait_pool_empty, word  # noqa: E402

TICK_MS = 10
BATCH_MAX = 200  # transfers per HTTP request (also bounded by the senders)
MINT = "0x40c10f19"  # mint(address,uint256)
# Whether waiting for the pool may mine blocks (automine), --timed clears it.
mine_when_waiting = True


def fund(rpc: Rpc, token: str, senders: int) -> None:
    accounts = rpc.call("eth_accounts")
    owner = accounts[0]
    n0 = int(rpc.call("eth_getTransactionCount", owner, "latest"), 16)
    # One request per funding tx, in nonce order: a batch's requests run
    # concurrently in anvil, and under automine a nonce admitted before its
    # predecessor was left queued for good (seen: 30 of 100 stranded).
    for i, s in enumerate(accounts[1:1 + senders]):
        rpc.call("eth_sendTransaction", {"from": owner, "to": token, "gas": "0x30000", "nonce": hex(n0 + i),
                                         "data": MINT + word(int(s, 16)) + word(10**30)})
    pool_drained(rpc, 60)
    if int(rpc.call("eth_getTransactionCount", owner, "latest"), 16) != n0 + senders:
        raise SystemExit("e2e_load: funding transfers not all mined")


def pool_drained(rpc: Rpc, timeout_s: float) -> float:
    """Seconds until the node's pool was empty (blocks mined meanwhile);
    exits when it is not within timeout_s."""
    st, waited = wait_pool_empty(rpc, timeout_s, mine=mine_when_waiting)
    if st["pending"] + st["queued"]:
        raise SystemExit(f"e2e_load: node pool not drained after {timeout_s} s: {st}")
    return waited


# A timed anvil was seen dropping a pending transfer while blocks were full
# (mint's large batches beside 300 transfers/s), leaving that sender's later
# nonces queued for good ("node pool not drained: queued 48"). After
# RESEND_AFTER_S of a pool that does not drain, every transfer at or above a
# sender's mined count is sent again, the same call with the same fees, so
# the same hash (sent.csv stays right; "already known" is ignored).
RESEND_AFTER_S = 15
# Fixed fees make a re-sent transfer byte-identical: 1 gwei tip, 100 gwei cap
# (far above anvil's base fee under this load).
FEES = {"maxPriorityFeePerGas": hex(10**9), "maxFeePerGas": hex(100 * 10**9)}


def drain_resending(rpc: Rpc, calls: dict, nonces: dict, timeout_s: float) -> tuple[float, int]:
    """pool_drained, re-sending dropped transfers (see RESEND_AFTER_S) by
    calls[(sender, nonce)]. Returns the seconds waited and the re-sends."""
    t0, resent = time.monotonic(), 0
    while True:
        st, _ = wait_pool_empty(rpc, RESEND_AFTER_S, mine=mine_when_waiting)
        if st["pending"] + st["queued"] == 0:
            return time.monotonic() - t0, resent
        if time.monotonic() - t0 > timeout_s:
            raise SystemExit(f"e2e_load: node pool not drained after {timeout_s} s ({resent} re-sent): {st}")
        senders = list(nonces)
        mined = rpc.batch([("eth_getTransactionCount", [a, "latest"]) for a in senders])
        for frm, count in zip(senders, mined):
            for n in range(int(count, 16), nonces[frm]):
                try:
                    rpc.call("eth_sendTransaction", calls[(frm, n)])
                    resent += 1
                except RpcError:
                    pass  # already known, or mined meanwhile


def send(rpc: Rpc, token: str, senders: int, addrs_csv: str, out_csv: str, rate: float, seconds: float,
         count: int) -> dict:
    pool_drained(rpc, 120)
    accounts = rpc.call("eth_accounts")[1:1 + senders]
    addrs = [line.split(",")[1] for line in open(addrs_csv) if line.strip()]
    nonces = dict(zip(accounts, (int(x, 16) for x in rpc.batch(
        [("eth_getTransactionCount", [a, "latest"]) for a in accounts]))))
    total = count if rate <= 0 else int(rate * seconds)
    sent, rows, late_ms_max, batches, by_nonce = 0, [], 0.0, 0, {}
    t0 = time.monotonic()
    while sent < total:
        now = time.monotonic()
        due = total if rate <= 0 else min(total, int((now - t0) * rate) + 1)
        # At most one transfer per sender per batch: a batch's requests run
        # concurrently in anvil, and a nonce admitted before its predecessor
        # waits in the pool.
        k = min(due - sent, BATCH_MAX, len(accounts))
        if k <= 0:
            # Sleep to the next transfer's due time, at most a tick.
            wait = (sent / rate) - (now - t0) if rate > 0 else 0
            time.sleep(max(0.0005, min(wait, TICK_MS / 1000)))
            continue
        if rate > 0:
            late_ms_max = max(late_ms_max, ((now - t0) - (sent / rate)) * 1000)
        calls = []
        for j in range(k):
            i = sent + j
            frm = accounts[i % len(accounts)]
            amount = (1 + i % 50) * 10**18  # 1..50 USDT
            tx = {"from": frm, "to": token, "nonce": hex(nonces[frm]), "gas": "0x20000",
                  "data": transfer_data(addrs[i % len(addrs)], amount), **FEES}
            calls.append(("eth_sendTransaction", [tx]))
            by_nonce[(frm, nonces[frm])] = tx
            nonces[frm] += 1
        hashes = rpc.batch(calls)
        sent_ms = int(time.time() * 1000)
        rows.extend((h, sent_ms) for h in hashes)
        sent += k
        batches += 1
    elapsed = time.monotonic() - t0
    drain_s, resent = drain_resending(rpc, by_nonce, nonces, 120)
    with open(out_csv, "w") as f:
        for h, ms in rows:
            f.write(f"{h.lower()},{ms}\n")
    return {"sent": sent, "seconds": round(elapsed, 3), "offered_rate": rate,
            "achieved_rate": round(sent / elapsed, 1) if elapsed > 0 else 0, "batches": batches,
            "late_ms_max": round(late_ms_max, 1), "pool_drain_s": round(drain_s, 3), "resent": resent}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["fund", "send"])
    ap.add_argument("rpc")
    ap.add_argument("token")
    ap.add_argument("senders", type=int)
    ap.add_argument("addrs_csv", nargs="?")
    ap.add_argument("out_csv", nargs="?")
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--seconds", type=float, default=0)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--timed", action="store_true")
    a = ap.parse_args()
    global mine_when_waiting
    mine_when_waiting = not a.timed
    rpc = Rpc(a.rpc)
    if a.cmd == "fund":
        fund(rpc, a.token, a.senders)
        return 0
    if not a.addrs_csv or not a.out_csv:
        ap.error("send needs ADDRS_CSV and OUT_CSV")
    print(json.dumps(send(rpc, a.token, a.senders, a.addrs_csv, a.out_csv, a.rate, a.seconds, a.count)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""bench/e2e_anvil_block.py: what one block costs anvil as its state grows
(issue 19: "a single mint costs anvil 279 ms of CPU").

A private anvil as bench/e2e_run.py starts it (automine, --prune-history,
gas limit 10^9). The state is grown in steps by minting test USDT to fresh
addresses (one new storage slot each), many per block with automine off;
after each step, SINGLES one-transaction blocks (a token transfer each, sent
one at a time and waited for, like a mint with batching off) are timed and
anvil's CPU for them read from /proc/<pid>/stat. With --perf, `perf record`
samples anvil during the singles of the largest step (perf report is then
written next to the results).

Usage: e2e_anvil_block.py OUT_JSON [--steps 0,20000,60000] [--singles 40] [--perf PERF_DATA]
Needs ZL_ANVIL (deploy/local/services env) and the harness; no other service.
"""
import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "lib"))  # the harness
from zlharness.chain import ANVIL_KEY0, Anvil, deploy_contracts  # noqa: E402
from zlharness.env import write_secret  # noqa: E402
from zlharness.jsonrpc import Rpc, transfer_data, word  # noqa: E402

MINT = "0x40c10f19"  # mint(address,uint256)
GROW_PER_BLOCK = 2000  # new holders per block while growing the state
SEND_BATCH = 200       # transactions per JSON-RPC request while growing


def cpu_s(pid: int) -> float:
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def grow(rpc: Rpc, owner: str, token: str, n: int) -> None:
    """n new token holders, GROW_PER_BLOCK to a block (automine off)."""
    rpc.call("evm_setAutomine", False)
    nonce = int(rpc.call("eth_getTransactionCount", owner, "pending"), 16)
    done = 0
    while done < n:
        k = min(GROW_PER_BLOCK, n - done)
        for first in range(0, k, SEND_BATCH):
            calls = []
            for _ in range(min(SEND_BATCH, k - first)):
                to = int(secrets.token_hex(20), 16)
                calls.append(("eth_sendTransaction", [{"from": owner, "to": token, "gas": "0x20000",
                                                        "nonce": hex(nonce), "data": MINT + word(to) + word(1)}]))
                nonce += 1
            rpc.batch(calls)
        rpc.call("evm_mine")
        done += k
    rpc.call("evm_setAutomine", True)


def singles(rpc: Rpc, pid: int, sender: str, token: str, n: int) -> dict:
    """n one-transaction blocks, one after another: anvil CPU and wall per block."""
    c0, t0 = cpu_s(pid), time.monotonic()
    for _ in range(n):
        h = rpc.call("eth_sendTransaction", {"from": sender, "to": token, "gas": "0x20000",
                                             "data": transfer_data("0x" + secrets.token_hex(20), 1)})
        while rpc.call("eth_getTransactionReceipt", h) is None:
            time.sleep(0.002)
    c1, t1 = cpu_s(pid), time.monotonic()
    return {"blocks": n, "anvil_cpu_ms_per_block": round((c1 - c0) * 1000 / n, 2),
            "wall_ms_per_block": round((t1 - t0) * 1000 / n, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_json")
    ap.add_argument("--steps", default="0,20000,60000")
    ap.add_argument("--singles", type=int, default=40)
    ap.add_argument("--perf")
    a = ap.parse_args()
    work = Path(a.out_json).resolve().parent / "anvil-block"
    work.mkdir(parents=True, exist_ok=True)
    anvil = Anvil(work, "--accounts", "3", "--balance", "1000000", "--gas-limit", "1000000000", "--prune-history")
    rows = []
    try:
        addrs = deploy_contracts(anvil.url, write_secret(work / "deployer.key", ANVIL_KEY0))
        token = addrs["ZL_TOKEN_ADDRESS"].lower()
        rpc = Rpc(anvil.url)
        owner, sender = rpc.call("eth_accounts")[:2]
        rpc.call("eth_sendTransaction", {"from": owner, "to": token, "gas": "0x20000",
                                         "data": MINT + word(int(sender, 16)) + word(10**30)})
        holders = 0
        steps = [int(x) for x in a.steps.split(",")]
        for i, target in enumerate(steps):
            grow(rpc, owner, token, target - holders)
            holders = target
            perf = None
            if a.perf and i == len(steps) - 1:
                perf = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-p", str(anvil.proc.pid),
                                         "-o", a.perf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1)
            r = singles(rpc, anvil.proc.pid, sender, token, a.singles)
            if perf is not None:
                perf.send_signal(2)  # SIGINT: perf writes its data and exits
                perf.wait(60)
            r["token_holders"] = holders
            rows.append(r)
            print(f"anvil-block: {holders} holders: {r}", file=sys.stderr, flush=True)
        rpc.close()
    finally:
        anvil.stop()
    Path(a.out_json).write_text(json.dumps({"steps": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

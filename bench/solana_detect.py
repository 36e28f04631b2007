#!/usr/bin/env python3
"""bench/solana_detect.py: the trials of bench/solana-detect.sh (issue 22:
"read from finalized blocks or from signatures per account: your choice,
measured").

One history on this run's solana-test-validator: ACCOUNTS registered deposit
accounts (zl-address add-solana), TRANSFERS USDT transfers into them (five
per transaction), and as many transfers between two unregistered wallets
beside them (the token's other traffic, which a block reader must read and
drop). Then, each at finalized and each through its own counting proxy in
front of the validator:

  accounts  zeroloss's detect (workers/detect with ZL_SOLANA_CLUSTER): each
            registered account's signatures from its cursor
            (getSignaturesForAddress), then getTransaction of each new one,
            in JSON-RPC batches; timed from its start until every transfer
            is a row;
  blocks    the reference: every finalized block of the history's slots
            (getBlocks, then getBlock jsonParsed with full transactions),
            each transfer into a registered account kept.

Reported per method: transfers found, seconds, RPC calls, bytes answered;
then the cost of keeping up once the history is read (calls per second while
nothing new is paid; a block reader's is one getBlock per slot whatever the
traffic, and its bytes grow with every other user of the chain).

Usage: python3 bench/solana_detect.py ACCOUNTS TRANSFERS ROUNDS OUT_DIR
  (ZL_PG_DSN, ZL_KAFKA_BROKERS, ZL_SOLANA_RPC_URLS from deploy/local/services
  env; ZL_BUILD_DIR the build whose detect and tools run)
"""
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "lib"))
from zlharness.kafka import create_topics  # noqa: E402
from zlharness.pg import create_database, drop_database, psql  # noqa: E402
from zlharness.procs import kill, spawn  # noqa: E402
from zlharness.solana import TOKEN, Chain, RpcProxy, Validator, ata_of, pubkeys, transfers_into  # noqa: E402
from zlharness.stage import stage_env  # noqa: E402

CLUSTER = "localnet"
TRANSFERS_PER_TX = 5
ATAS_PER_TX = 8
# How long a method may take to find every transfer, and how long the idle
# cost is watched after.
FIND_TIMEOUT_S = 600
IDLE_S = 10
FINALIZE_TIMEOUT_S = 120


def bin_dir() -> Path:
    return Path(os.environ.get("ZL_BUILD_DIR", Path(__file__).resolve().parents[1] / "build" / "release")) / "bin"


def make_history(v: Validator, accounts: int, transfers: int) -> tuple[Chain, list[str], tuple[int, int]]:
    ch = Chain(v, TOKEN)
    seeds = [os.urandom(32).hex() for _ in range(accounts)]
    wallets = list(pubkeys(seeds).values())
    accts = [ata_of(w, ch.usdt, TOKEN) for w in wallets]
    for first in range(0, accounts, ATAS_PER_TX):
        ch.pay(*[{"token": "ata_create", "program": TOKEN, "mint": ch.usdt, "payer": ch.a, "ata": accts[i],
                  "wallet": wallets[i]} for i in range(first, min(accounts, first + ATAS_PER_TX))])
    slot0 = v.rpc("getSlot", {"commitment": "confirmed"})
    sigs = []
    for first in range(0, transfers, TRANSFERS_PER_TX):
        ixs = [ch.tc_to(accts[j % accounts], (1 + j % 50) * 10**6)
               for j in range(first, min(transfers, first + TRANSFERS_PER_TX))]
        ixs += [ch.tc(ch.c, 10**6) for _ in ixs]  # other traffic: a pays c, unregistered
        sigs.append(ch.pay(*ixs))
    deadline = time.monotonic() + FINALIZE_TIMEOUT_S
    while time.monotonic() < deadline:
        st = v.rpc("getSignatureStatuses", [sigs[-1]])["value"][0]
        if st and st["confirmationStatus"] == "finalized":
            break
        time.sleep(0.5)
    slot1 = v.rpc("getSlot", {"commitment": "finalized"})
    return ch, wallets, (slot0, slot1)


def register(wallets: list[str], mint: str, dsn: str) -> list[str]:
    env = dict(os.environ, ZL_PG_DSN=dsn)
    out = []
    for i, w in enumerate(wallets):
        r = subprocess.run([str(bin_dir() / "zl-address"), "add-solana", w, f"bench_{i}", "--cluster", CLUSTER,
                            "--mint", mint], capture_output=True, text=True, timeout=30, env=env, check=True)
        out.append(r.stdout.split()[0])
    return out


def by_accounts(v: Validator, ch: Chain, wallets: list[str], transfers: int, work: Path, r: int) -> dict:
    db = f"zl_bench_sold_{os.urandom(4).hex()}"
    dsn = create_database(db)
    proxy = RpcProxy(v.url).start()
    p = None
    try:
        register(wallets, ch.usdt, dsn)
        prefix = f"bsd{os.urandom(4).hex()}."
        env = stage_env(prefix, f"zl-detect-{prefix}", dsn=dsn, ZL_SOLANA_CLUSTER=CLUSTER, ZL_SOLANA_MINT=ch.usdt,
                        ZL_SOLANA_RPC_URLS=proxy.url, ZL_SOLANA_COMMITMENT="finalized", ZL_LOG_LEVEL="warn")
        create_topics(env, "detect", 1)
        t0 = time.monotonic()
        p = spawn([bin_dir() / "detect"], work / f"solana-detect-accounts-{r}.log", env)
        found = 0
        while time.monotonic() - t0 < FIND_TIMEOUT_S and found < transfers:
            found = int(psql("SELECT count(*) FROM deposits", dsn=dsn)[0][0])
            if found < transfers:
                time.sleep(0.2)
        seconds = time.monotonic() - t0
        calls, nbytes = sum(proxy.calls.values()), proxy.bytes_out
        by_method = dict(proxy.calls)
        time.sleep(1)  # the step in flight when the last row appeared
        idle0, idle_b0 = sum(proxy.calls.values()), proxy.bytes_out
        time.sleep(IDLE_S)
        idle = (sum(proxy.calls.values()) - idle0) / IDLE_S
        idle_b = (proxy.bytes_out - idle_b0) / IDLE_S
        return {"found": found, "seconds": round(seconds, 2), "calls": calls, "bytes": nbytes,
                "calls_by_method": by_method, "idle_calls_per_s": round(idle, 1), "idle_bytes_per_s": round(idle_b)}
    finally:
        if p is not None:
            kill(p)
        proxy.stop()
        drop_database(db)


def by_blocks(v: Validator, ch: Chain, accts: set[str], slots: tuple[int, int]) -> dict:
    proxy = RpcProxy(v.url).start()
    reader = Validator(Path("."), url=proxy.url)
    try:
        t0 = time.monotonic()
        found = 0
        blocks = reader.rpc("getBlocks", slots[0], slots[1], {"commitment": "finalized"})
        for slot in blocks:
            b = reader.rpc("getBlock", slot, {"encoding": "jsonParsed", "transactionDetails": "full",
                                              "maxSupportedTransactionVersion": 0, "rewards": False,
                                              "commitment": "finalized"})
            for tx in (b or {}).get("transactions", []):
                found += len(transfers_into(tx, ch.usdt, accts))
        seconds = time.monotonic() - t0
        per_block = proxy.bytes_out / max(1, len(blocks))
        return {"found": found, "seconds": round(seconds, 2), "calls": sum(proxy.calls.values()),
                "bytes": proxy.bytes_out, "calls_by_method": dict(proxy.calls), "blocks": len(blocks),
                "slots": slots[1] - slots[0] + 1, "bytes_per_block": round(per_block)}
    finally:
        proxy.stop()


def main() -> int:
    accounts, transfers, rounds = (int(a) for a in sys.argv[1:4])
    out = Path(sys.argv[4]) if len(sys.argv) > 4 else None
    work = out or Path(".")
    v = Validator(work, url=os.environ["ZL_SOLANA_RPC_URLS"].split(",")[0])
    t0 = time.monotonic()
    ch, wallets, slots = make_history(v, accounts, transfers)
    print(f"history: {accounts} accounts, {transfers} transfers (+{transfers} unregistered), slots {slots[0]}.."
          f"{slots[1]}, made in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    accts = {ata_of(w, ch.usdt, TOKEN) for w in wallets}
    trials = {"accounts": [], "blocks": []}
    slots_per_s = None
    for r in range(rounds):  # interleaved
        trials["accounts"].append(by_accounts(v, ch, wallets, transfers, work, r))
        trials["blocks"].append(by_blocks(v, ch, accts, slots))
        print(f"round {r}: {json.dumps({k: t[-1] for k, t in trials.items()})}", file=sys.stderr)
    s0, t = v.rpc("getSlot"), time.monotonic()
    time.sleep(5)
    slots_per_s = (v.rpc("getSlot") - s0) / (time.monotonic() - t)

    def med(m: str, k: str):
        return statistics.median(x[k] for x in trials[m])

    result = {"accounts": accounts, "transfers": transfers, "other_transfers": transfers, "rounds": rounds,
              "slots_per_s": round(slots_per_s, 2), "trials": trials,
              "median": {m: {k: med(m, k) for k in ("found", "seconds", "calls", "bytes")} for m in trials}}
    a, b = result["median"]["accounts"], result["median"]["blocks"]
    idle_a = statistics.median(x["idle_calls_per_s"] for x in trials["accounts"])
    idle_ab = statistics.median(x["idle_bytes_per_s"] for x in trials["accounts"])
    tx_fetches = statistics.median(x["calls_by_method"].get("getTransaction", 0) for x in trials["accounts"])
    bpb = statistics.median(x["bytes_per_block"] for x in trials["blocks"])
    md = [
        "## solana-detect: signatures per account vs finalized blocks",
        "",
        f"One history on the local validator: {accounts} registered deposit accounts, {transfers} USDT transfers"
        f" into them and {transfers} between two unregistered wallets beside them, read at finalized by each"
        f" method through a counting proxy (medians of {rounds} interleaved round(s)).",
        "",
        "| method | transfers found | seconds | RPC calls | MB answered | to keep up, idle: calls/s | bytes/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| signatures per account (zeroloss detect) | {a['found']} of {transfers} | {a['seconds']} | {a['calls']} |"
        f" {a['bytes'] / 1e6:.2f} | {idle_a} | {idle_ab:,.0f} |",
        f"| finalized blocks (reference reader) | {b['found']} of {transfers} | {b['seconds']} | {b['calls']} |"
        f" {b['bytes'] / 1e6:.2f} | {slots_per_s:.1f} (one getBlock per slot) | {slots_per_s * bpb:,.0f} |",
        "",
        f"detect fetched {tx_fetches:.0f} transactions for {transfers // TRANSFERS_PER_TX} paying ones: a transaction"
        " paying several registered accounts is read once per account (each account's scan is its own).",
        "",
        f"A block here averaged {bpb:,.0f} bytes (jsonParsed, full transactions), on a chain whose only traffic is"
        " this benchmark's. The accounts method's cost follows the registered accounts and their own"
        " transactions; the block reader's follows the slots (this validator makes"
        f" {slots_per_s:.1f} a second) and every byte of everyone's traffic in them, which on a public cluster"
        " is not this chain's near-empty blocks. With K registered accounts polled every P seconds at about"
        f" {idle_ab / max(idle_a, 0.1):,.0f} bytes a call idle, the accounts method reads fewer bytes while"
        " K / P × that < slots per second × a block's bytes; its calls grow with K (a million accounts is a"
        " million calls a pass), the block reader's do not: beyond that point a block (or a subscription)"
        " reader is the one to build.",
        "",
    ]
    if out:
        (out / "solana-detect.json").write_text(json.dumps(result, indent=1))
        (out / "solana-detect.md").write_text("\n".join(md))
    print("\n".join(md))
    ok = a["found"] == transfers and b["found"] == transfers
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

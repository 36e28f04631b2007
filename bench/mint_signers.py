"""bench/mint-signers.sh's driver: 1 mint copy with 1 leased key beside 2
copies with 2 keys, on the anvil the shell started (1 s blocks). Writes
<out>.json (every trial) and <out>.md (medians, the ratio beside its
reference, the checks)."""
import argparse
import json
import os
import secrets
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path

from zlharness.chain import cast, rpc_batch
from zlharness.kafka import create_topics, produce_deposits
from zlharness.pg import psql
from zlharness.stage import insert_rows, new_deposit

B32 = "abcdefghijklmnopqrstuvwxyz234567"
POLL_S = 0.5          # completion poll: a count of minted rows
FUND_WEI = "0x3635C9ADC5DEA00000"  # 1000 ether per key
READY_TIMEOUT_S = 60  # every copy leased and ready
JOIN_SETTLE_S = 5     # a group's first rebalance (the broker's initial delay is 3 s)


def wait_ready(tdir: Path, copies: int) -> None:
    """Until every copy's /health/ready answers 200."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    left = set(range(copies))
    while left and time.monotonic() < deadline:
        for i in sorted(left):
            try:
                port = (tdir / f"port{i}").read_text().strip()
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2) as r:
                    if r.status == 200:
                        left.discard(i)
            except (OSError, ValueError):
                pass
        time.sleep(POLL_S)
    if left:
        raise RuntimeError(f"copies {sorted(left)} not ready within {READY_TIMEOUT_S} s (see {tdir})")


def new_key(a, work: Path, name: str) -> tuple[str, Path]:
    """A fresh funded minter key in a private file; its address and file."""
    key = "0x" + secrets.token_hex(32)
    addr = cast("wallet", "address", "--private-key", key).lower()
    cast("rpc", "--rpc-url", a.rpc, "anvil_setBalance", addr, FUND_WEI)
    cast("send", "--rpc-url", a.rpc, "--private-key", a.deployer_key, a.nft, "grantRole(bytes32,address)",
         cast("keccak", "MINTER_ROLE"), addr)
    path = work / f"{name}.key"
    path.write_text(key + "\n")
    path.chmod(0o600)
    return addr, path


def pinned(n: int) -> list[dict]:
    deps = []
    for _ in range(n):
        d = new_deposit("u-bench")
        cid = "bafkrei" + "".join(secrets.choice(B32) for _ in range(52))
        d.update(schema="zl.nft.pinned/v1", confirmations=12, metadata_cid=cid, token_uri="ipfs://" + cid)
        d["from"] = "0x" + secrets.token_hex(20)
        deps.append(d)
    insert_rows(deps)
    arr = lambda k: "{" + ",".join(d[k] for d in deps) + "}"  # noqa: E731
    psql("UPDATE deposits SET state = 'pinned', confirmations = 12, metadata_cid = m.cid, token_uri = m.uri"
         " FROM unnest(:'v1'::text[], :'v2'::text[], :'v3'::text[]) AS m(id, cid, uri)"
         " WHERE deposits.deposit_id = m.id", arr("deposit_id"), arr("metadata_cid"), arr("token_uri"))
    return deps


def minted(ids: str) -> int:
    return int(psql("SELECT count(*) FROM deposits WHERE deposit_id = ANY (:'v1'::text[]) AND state = 'minted'",
                    ids)[0][0])


def trial(a, rnd: int, copies: int) -> dict:
    tag = secrets.token_hex(4)
    tdir = a.work / f"r{rnd}-c{copies}"
    tdir.mkdir(parents=True, exist_ok=True)
    keys = [new_key(a, tdir, f"k{i}") for i in range(copies)]
    # Every copy in ONE group on one set of topics, as deployed (static
    # members, named like the harness names them): the runtime's default
    # assignor (roundrobin) gives each copy its share of the input topic.
    # (Before it, cooperative-sticky balanced only the partition count over
    # input and retry topics together and could give one copy every input
    # partition, so this suite gave each copy topics of its own.) Every copy
    # is given the whole pool, so the leases decide who signs with which key.
    pool = ",".join(str(p) for _, p in keys)
    prefix = f"bench.s{tag}."
    envs = []
    for i in range(copies):
        env = dict(os.environ, ZL_TOPIC_PREFIX=prefix, ZL_GROUP_ID=f"zl-mint-{prefix}", ZL_RPC_URLS=a.rpc,
                   ZL_NFT_ADDRESS=a.nft, ZL_SIGNER_KEY_FILES=pool, ZL_MINT_BATCH_MAX="50", ZL_BATCH_SIZE_MAX="500",
                   ZL_MINT_CHAIN_ID="31337", ZL_HTTP_PORT="0", ZL_LOG_LEVEL="warn",
                   ZL_GROUP_INSTANCE_ID=f"mint-{i}", ZL_HTTP_PORT_FILE=str(tdir / f"port{i}"))
        env.pop("ZL_SIGNER_KEY_FILE", None)
        envs.append(env)
    create_topics(envs[0], "mint", a.partitions)
    deps = pinned(a.n)
    ids = "{" + ",".join(d["deposit_id"] for d in deps) + "}"
    procs = [subprocess.Popen([str(a.build / "bin" / "mint")], env=envs[i], stdout=subprocess.DEVNULL,
                              stderr=open(tdir / f"worker{i}.log", "w"), start_new_session=True)
             for i in range(copies)]
    done = 0
    try:
        # Steady state is measured, not start-up: every copy holds its key
        # and has joined its group before the deposits arrive.
        wait_ready(tdir, copies)
        time.sleep(JOIN_SETTLE_S)
        produce_deposits(prefix + "nft.pinned", deps)
        t0 = time.monotonic()
        while time.monotonic() - t0 < a.timeout_s:
            done = minted(ids)
            if done >= a.n:
                break
            time.sleep(POLL_S)
        took = time.monotonic() - t0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
    addrs = [k for k, _ in keys]
    rows = psql("SELECT signer, mined_hash FROM signer_txs WHERE signer = ANY (:'v1'::text[]) AND status = 'mined'",
                "{" + ",".join(addrs) + "}")
    senders = [t["from"].lower() for t in rpc_batch(a.rpc, [("eth_getTransactionByHash", [r[1]]) for r in rows])]
    used = {r[0] for r in rows}
    return {"round": rnd, "copies": copies, "keys": copies, "n": a.n, "minted": done, "seconds": round(took, 3),
            "mints_per_s": round(done / took, 1), "txs": len(rows), "signers_used": len(used),
            "senders_match": senders == [r[0] for r in rows],
            "ok": done == a.n and senders == [r[0] for r in rows] and len(used) == copies}


def main() -> None:
    ap = argparse.ArgumentParser()
    for k in ("rpc", "nft", "deployer-key", "out"):
        ap.add_argument("--" + k, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--build", type=Path, required=True)
    for k in ("n", "rounds", "partitions", "timeout-s"):
        ap.add_argument("--" + k, type=int, required=True)
    a = ap.parse_args()
    trials = []
    for rnd in range(1, a.rounds + 1):
        for copies in (1, 2):
            t = trial(a, rnd, copies)
            print(f"bench: mint-signers: round {rnd}, {copies} copies: {t}", flush=True)
            trials.append(t)
    med = {c: statistics.median(t["mints_per_s"] for t in trials if t["copies"] == c) for c in (1, 2)}
    ratio = med[2] / med[1] if med[1] else 0.0
    ok = all(t["ok"] for t in trials)
    out = {"n": a.n, "rounds": a.rounds, "block_time_s": 1, "gas_limit": 140000000, "batch_max": 50,
           "median_mints_per_s": {str(c): v for c, v in med.items()}, "ratio_2_over_1": round(ratio, 2),
           "target_ratio": 1.7, "checks_ok": ok, "trials": trials}
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    md = ["Mint with a pool of signers: anvil with 1 s blocks (--block-time 1), 140M block gas limit,",
          f"mintBatch of up to 50, {a.n} pinned deposits per trial, {a.rounds} interleaved rounds, medians;",
          "the copies start first, the deposits are produced once every copy is ready (key leased), and",
          "mints/s = deposits / (produced -> every row minted). The copies are one consumer group on one set",
          "of topics, as deployed (static members mint-0, mint-1; the runtime's roundrobin assignment), each",
          "given the whole pool (the leases decide the keys).", "",
          "| setup | mints/s (median) | reference | ratio | target |", "|---|---:|---|---:|---:|",
          f"| 1 copy, 1 leased key | {med[1]:.1f} | (the reference) | 1.00 | |",
          f"| 2 copies, 2 leased keys | {med[2]:.1f} | 1 copy, 1 key: {med[1]:.1f}/s, same run | "
          f"{ratio:.2f} | >= 1.7 |", "",
          f"Checks: every deposit minted, every copy signed (one key each), every mined tx sent by the signer"
          f" its row names: {'ok' if ok else 'FAILED'}.",
          "", "| round | copies | minted | s | mints/s | txs | signers used |", "|---:|---:|---:|---:|---:|---:|---:|"]
    md += [f"| {t['round']} | {t['copies']} | {t['minted']} | {t['seconds']} | {t['mints_per_s']} | {t['txs']} |"
           f" {t['signers_used']} |" for t in trials]
    Path(a.out).with_suffix(".md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()

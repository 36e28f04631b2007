#!/usr/bin/env bash
# bench-needs: postgres kafka
#
# Mint throughput (issue 6's benchmark): mints per second of ONE mint stage
# on anvil, one mint tx per deposit (ZL_MINT_BATCH_MAX=1) and batched
# (mintBatch of up to 10 and 50 deposits), with the gas each mint costs,
# beside a reference measured in the same run:
#   anvil-direct  the same mint(address,uint256,string) calls sent straight
#                 to the node from its unlocked account 0 over JSON-RPC
#                 (eth_sendTransaction, then the receipt), one at a time: the
#                 chain's own ceiling for one-tx-per-mint, with no database,
#                 no signing in C, no Kafka.
# Trials are interleaved per round (direct, single, batch 10, batch 50, ...)
# so all see the same noise on a shared machine; the summary takes medians.
#
# The chain is a private anvil started here (its own port, automine, stopped
# by pid), with the contracts deployed from deploy/contracts. Each trial has
# its own signer (a fresh key, funded, granted MINTER_ROLE), topic prefix,
# consumer group and rows: N zl.nft.pinned/v1 events produced and their rows
# COPYed in state `pinned` before the timer starts. Then the worker starts
# and the suite polls the output topic's end offsets until it holds N.
#   mints/s  N / (process start -> N events on zl.nft.minted): wall time,
#            including connecting and joining the group;
#            (No rate from output timestamps: the runtime publishes a poll
#            batch's outputs together after its last mint.)
#   gas/mint sum of gasUsed of the signer's mined txs (from their receipts)
#            / deposits they carry.
# Checks: N rows minted, one stored tx per nonce, the signer's chain nonce
# equals its stored txs, every tx mined with status 1.
#
# Window mode (bench/mint-window.sh, issue 19: BENCH_MINT_MODE=window): the
# chain is anvil with 1 s blocks and a BSC-sized block (--block-time 1
# --gas-limit 140000000), one mint copy and one signer, mints/s against the
# in-flight window ZL_MINT_INFLIGHT_MAX (BENCH_MINT_WINDOWS, "1 4 16 64"),
# mintBatch of BENCH_MINT_WINDOW_BATCH (50, the stage's default) deposits;
# the stage's defers go through short tiers (500,1000,2000 ms: the receipt
# re-checks). Its reference, in the same run:
#   direct-batched  the same mintBatch calls (same size, same count) sent
#                 straight to the node from its unlocked account 0 all at
#                 once (eth_sendTransaction, no waiting), then every receipt
#                 awaited: what the chain admits per second for these calls.
#
# Run through bench/run (it starts the services and collects the results).
# Knobs: BENCH_MINT_N (1000: deposits per batched trial), BENCH_MINT_N_SINGLE
# (200: per one-tx-per-mint trial and the reference), BENCH_MINT_BATCHES
# ("10 50"), BENCH_ROUNDS (3), BENCH_PARTITIONS (6), BENCH_TRIAL_TIMEOUT_S
# (300). A quick check: BENCH_MINT_N=200 BENCH_MINT_N_SINGLE=50 BENCH_ROUNDS=1
# bench/run mint
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_need_run

SUITE=${BENCH_MINT_SUITE:-mint}
MODE=${BENCH_MINT_MODE:-automine}
read -r -a WINDOWS <<< "${BENCH_MINT_WINDOWS:-1 4 16 64}"
WBATCH=${BENCH_MINT_WINDOW_BATCH:-50}
N=${BENCH_MINT_N:-1000}
N1=${BENCH_MINT_N_SINGLE:-200}
read -r -a BATCHES <<< "${BENCH_MINT_BATCHES:-10 50}"
ROUNDS=${BENCH_ROUNDS:-3}
PARTS=${BENCH_PARTITIONS:-6}
TRIAL_TIMEOUT_S=${BENCH_TRIAL_TIMEOUT_S:-300}
POLL_INTERVAL_S=0.2   # completion poll: kcat -Q of the output's end offsets

build=${ZL_BUILD_DIR:-$BENCH_REPO/build/release}
bench_require "$build/bin/mint" "$build/bin/zl-migrate" "$build/bin/zl-topics"
anvil_bin=${ZL_ANVIL:-$(command -v anvil || true)}
cast_bin=${ZL_CAST:-$(command -v cast || true)}
[ -x "$anvil_bin" ] && [ -x "$cast_bin" ] || bench_die "anvil/cast not found (ZL_ANVIL, ZL_CAST)"

work=$BENCH_WORK/$SUITE
mkdir -p "$work"
trials=$work/trials.jsonl
: > "$trials"
anvil_pid=
cleanup() {
  bench_stop_spawned
  if [ -n "$anvil_pid" ]; then bench_stop "$anvil_pid" 5; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- the chain
if [ "$MODE" = window ]; then
  bench_anvil "$work" --accounts 2 --block-time 1 --gas-limit 140000000
else
  bench_anvil "$work" --accounts 2
fi
anvil_pid=$BENCH_ANVIL_PID
rpc=$BENCH_ANVIL_URL
key0=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
echo "$key0" > "$work/deployer.key"
chmod 600 "$work/deployer.key"
nft=$("$BENCH_REPO/deploy/contracts/deploy.sh" "$rpc" "$work/deployer.key" | sed -n 's/^ZL_NFT_ADDRESS=//p' | tr 'A-F' 'a-f')
[ -n "$nft" ] || bench_die "contract deploy failed"
minter_role=$("$cast_bin" keccak MINTER_ROLE)

ZL_SCHEMA_DIR="$BENCH_REPO/schemas/sql" "$build/bin/zl-migrate" >"$work/migrate.log" 2>&1 \
  || { cat "$work/migrate.log" >&2; bench_die "zl-migrate failed"; }
if [ "$MODE" = window ]; then
  bench_say "mint-window: N=$N mintBatch of $WBATCH windows=${WINDOWS[*]} rounds=$ROUNDS on $rpc (nft $nft)"
else
  bench_say "mint: N=$N (batched) N=$N1 (single, direct) batches=${BATCHES[*]} rounds=$ROUNDS on $rpc (nft $nft)"
fi

# A fresh funded minter key: each trial's nonces and signer row are its own.
new_signer() {
  local key addr
  key=0x$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  addr=$("$cast_bin" wallet address --private-key "$key" | tr 'A-F' 'a-f')
  "$cast_bin" rpc --rpc-url "$rpc" anvil_setBalance "$addr" 0x3635C9ADC5DEA00000 >/dev/null
  "$cast_bin" send --rpc-url "$rpc" --private-key "$key0" "$nft" "grantRole(bytes32,address)" "$minter_role" "$addr" \
    >/dev/null
  echo "$key" > "$work/signer.key"
  chmod 600 "$work/signer.key"
  SIGNER=$addr
}

# pinned N TAG TSV CSV: N zl.nft.pinned/v1 events (key<TAB>json) and their
# rows in state pinned (CSV for COPY); tx hashes end in TAG.
pinned() {
  python3 - "$@" <<'EOF'
import csv, json, secrets, sys, uuid
n, tag, tsv, csv_path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
B32 = "abcdefghijklmnopqrstuvwxyz234567"
with open(tsv, "w") as t, open(csv_path, "w", newline="") as c:
    w = csv.writer(c)
    for i in range(n):
        tx = "0x" + secrets.token_hex(32)[:64 - len(tag)] + tag
        cid = "bafkrei" + "".join(secrets.choice(B32) for _ in range(52))
        d = {"schema": "zl.nft.pinned/v1", "event_id": str(uuid.uuid4()), "deposit_id": f"31337:{tx}:0",
             "chain_id": 31337, "tx_hash": tx, "log_index": 0, "block_number": 100, "block_hash": "0x" + "ab" * 32,
             "token": "0x" + "11" * 20, "from": "0x" + secrets.token_hex(20), "to": "0x" + "33" * 20,
             "user_id": "u1", "amount": "1000000000000000000", "occurred_at": "2026-11-23T10:00:00.000Z",
             "confirmations": 12, "metadata_cid": cid, "token_uri": "ipfs://" + cid}
        t.write(d["deposit_id"] + "\t" + json.dumps(d) + "\n")
        w.writerow([d["deposit_id"], 31337, tx, 0, 100, d["block_hash"], d["token"], d["from"], d["to"], "u1",
                    d["amount"], d["occurred_at"], "pinned", 12, cid, d["token_uri"]])
EOF
}

# gas SIGNER: "txs deposits gas_used_total", from the receipts of the
# signer's mined txs (one JSON-RPC batch).
gas_of() {
  bench_psql "SELECT mined_hash || ' ' || cardinality(deposit_ids) FROM signer_txs WHERE signer = '$1' AND status = 'mined'" \
    | python3 -c '
import json, sys, urllib.request
rows = [l.split() for l in sys.stdin if l.strip()]
body = [{"jsonrpc": "2.0", "id": i, "method": "eth_getTransactionReceipt", "params": [h]} for i, (h, _) in enumerate(rows)]
out = json.loads(urllib.request.urlopen(urllib.request.Request(sys.argv[1], json.dumps(body).encode(),
                 {"Content-Type": "application/json"}), timeout=120).read()) if body else []
gas = sum(int(a["result"]["gasUsed"], 16) for a in out)
ok = all(a["result"]["status"] == "0x1" for a in out)
print(len(rows), sum(int(n) for _, n in rows), gas, int(ok))' "$rpc"
}

# trial ROUND BATCH_MAX COUNT [WINDOW]: one mint worker over COUNT pinned
# deposits (WINDOW: its ZL_MINT_INFLIGHT_MAX, with short defer tiers).
trial() {
  local round=$1 bmax=$2 count=$3 window=${4:-} tag prefix
  tag=$(printf '%08x' "$((RANDOM * 32768 + RANDOM))")
  prefix="bench.m$tag."
  local tdir=$work/$round-b$bmax-w$window
  local wenv=(ZL_LOG_LEVEL=warn)
  if [ -n "$window" ]; then
    wenv+=(ZL_MINT_INFLIGHT_MAX="$window" ZL_RETRY_TIERS_MS=500,1000,2000 ZL_DEFERS_MAX=10000)
  fi
  mkdir -p "$tdir"
  new_signer
  ZL_TOPIC_PREFIX=$prefix ZL_TOPICS_STAGES=mint ZL_TOPIC_PARTITIONS=$PARTS "$build/bin/zl-topics" >"$tdir/topics.log" 2>&1 \
    || { cat "$tdir/topics.log" >&2; bench_die "zl-topics failed"; }
  pinned "$count" "$tag" "$tdir/in.tsv" "$tdir/rows.csv"
  "$ZL_PG_BIN/psql" "$ZL_PG_DSN" -X -q -v ON_ERROR_STOP=1 -c "\\copy deposits (deposit_id, chain_id, tx_hash, log_index, block_number, block_hash, token, from_addr, to_addr, user_id, amount, occurred_at, state, confirmations, metadata_cid, token_uri) FROM '$tdir/rows.csv' WITH (FORMAT csv)"
  kcat -b "$ZL_KAFKA_BROKERS" -P -t "${prefix}nft.pinned" -K $'\t' -X acks=all -l "$tdir/in.tsv"
  local t0 t1 done_n=0 cpu
  t0=$(bench_now_ms)
  bench_spawn "$tdir/worker.log" env ZL_TOPIC_PREFIX="$prefix" ZL_GROUP_ID="zl-mint-$prefix" ZL_RPC_URLS="$rpc" \
    ZL_NFT_ADDRESS="$nft" ZL_SIGNER_KEY_FILE="$work/signer.key" ZL_MINT_BATCH_MAX="$bmax" ZL_BATCH_SIZE_MAX=500 \
    ZL_MINT_CHAIN_ID=31337 ZL_HTTP_PORT=0 "${wenv[@]}" "$build/bin/mint"
  local pid=$BENCH_PID deadline=$((t0 + TRIAL_TIMEOUT_S * 1000))
  while [ "$done_n" -lt "$count" ]; do
    [ "$(bench_now_ms)" -lt "$deadline" ] || { tail -5 "$tdir/worker.log" >&2; bench_die "mint b$bmax: timed out"; }
    kill -0 "$pid" 2>/dev/null || { tail -5 "$tdir/worker.log" >&2; bench_die "mint b$bmax: worker died"; }
    sleep "$POLL_INTERVAL_S"
    done_n=$(bench_end_offsets "${prefix}nft.minted" "$PARTS")
  done
  t1=$(bench_now_ms)
  cpu=$(bench_cpu_s "$pid")
  bench_stop "$pid"
  local minted txs deps gas ok nonce
  minted=$(bench_psql "SELECT count(*) FROM deposits WHERE tx_hash LIKE '%$tag' AND state = 'minted'")
  [ "$minted" = "$count" ] || bench_die "mint b$bmax: $minted of $count rows minted"
  read -r txs deps gas ok <<< "$(gas_of "$SIGNER")"
  nonce=$(( $("$cast_bin" nonce --rpc-url "$rpc" "$SIGNER") ))
  [ "$ok" = 1 ] && [ "$deps" = "$count" ] && [ "$nonce" = "$txs" ] \
    || bench_die "mint b$bmax: txs=$txs deposits=$deps nonce=$nonce all-status-1=$ok"
  bench_record "$trials" kind=stage round="$round" batch_max="$bmax" window="${window:-default}" n="$count" \
    wall_ms=$((t1 - t0)) \
    rate=$(awk -v n="$count" -v ms="$((t1 - t0))" 'BEGIN { printf "%.1f", n * 1000 / ms }') \
    txs="$txs" gas_total="$gas" gas_per_mint=$((gas / count)) cpu_s="$cpu" exit_code="$BENCH_RC"
  bench_say "mint b$bmax w${window:-default} round $round: $count in $((t1 - t0)) ms, $txs txs, $((gas / count)) gas/mint"
}

# direct ROUND COUNT: the reference, mint() straight from anvil's account 0.
direct() {
  local round=$1 count=$2
  python3 - "$rpc" "$nft" "$count" "$round" >> "$trials" <<'EOF'
import json, secrets, sys, time, urllib.request
rpc, nft, n, rnd = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def call(method, *params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    out = json.loads(urllib.request.urlopen(urllib.request.Request(rpc, body, {"Content-Type": "application/json"}),
                                            timeout=60).read())
    if "error" in out:
        raise SystemExit(f"{method}: {out['error']}")
    return out["result"]
sender = call("eth_accounts")[0]
def mint_data(to, tid, uri):
    u = uri.encode()
    return ("0xd3fc9864" + to[2:].rjust(64, "0") + format(tid, "064x") + format(96, "064x") + format(len(u), "064x")
            + u.hex().ljust((len(u) + 31) // 32 * 64, "0"))
gas = 0
t0 = time.monotonic()
for i in range(n):
    h = call("eth_sendTransaction", {"from": sender, "to": nft,
                                     "data": mint_data("0x" + secrets.token_hex(20), int.from_bytes(secrets.token_bytes(32), "big"),
                                                       "ipfs://bafkrei" + "a" * 52)})
    r = None
    while r is None:
        r = call("eth_getTransactionReceipt", h)
    assert r["status"] == "0x1", r
    gas += int(r["gasUsed"], 16)
ms = (time.monotonic() - t0) * 1000
print(json.dumps({"kind": "direct", "round": rnd, "batch_max": 1, "n": n, "wall_ms": round(ms),
                  "rate": round(n * 1000 / ms, 1), "gas_per_mint": gas // n}, sort_keys=True))
EOF
  bench_say "anvil-direct round $round: $(tail -1 "$trials")"
}

# direct_batched ROUND COUNT BATCH: the window mode's reference: COUNT mints
# as mintBatch calls of BATCH from account 0 (MINTER_ROLE: the deployer),
# all sent at once, then every receipt awaited.
direct_batched() {
  local round=$1 count=$2 batch=$3 selector
  selector=$("$cast_bin" sig "mintBatch(address[],uint256[],string[])")
  python3 - "$rpc" "$nft" "$count" "$round" "$batch" "$selector" >> "$trials" <<'EOF'
import json, secrets, sys, time, urllib.request
rpc, nft, n, rnd, batch, selector = (sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]),
                                     sys.argv[6])
def call(method, *params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    out = json.loads(urllib.request.urlopen(urllib.request.Request(rpc, body, {"Content-Type": "application/json"}),
                                            timeout=120).read())
    if "error" in out:
        raise SystemExit(f"{method}: {out['error']}")
    return out["result"]
def word(v):
    return format(v, "064x")
def mint_batch(k):
    # ABI of (address[], uint256[], string[]): three head offsets, then each
    # array as its length and items; a string array's items are offsets
    # (from after its length) to length-prefixed, padded bytes.
    tos = [int(secrets.token_hex(20), 16) for _ in range(k)]
    ids = [int.from_bytes(secrets.token_bytes(32), "big") for _ in range(k)]
    uris = [("ipfs://bafkrei" + secrets.token_hex(26)).encode() for _ in range(k)]
    a = word(k) + "".join(word(x) for x in tos)
    b = word(k) + "".join(word(x) for x in ids)
    bodies = [word(len(u)) + u.hex().ljust((len(u) + 31) // 32 * 64, "0") for u in uris]
    offs, at = [], 32 * k
    for body in bodies:
        offs.append(at)
        at += len(body) // 2
    c = word(k) + "".join(word(o) for o in offs) + "".join(bodies)
    return selector + word(96) + word(96 + len(a) // 2) + word(96 + len(a) // 2 + len(b) // 2) + a + b + c
sender = call("eth_accounts")[0]
calls = [mint_batch(min(batch, n - i)) for i in range(0, n, batch)]
# anvil may drop a tx from a pool fuller than a block (seen: 3 of 20 at
# 7.1M gas each in a 140M block, the pool then empty): one not mined after
# RESEND_AFTER_S is sent again, as a sender would.
RESEND_AFTER_S, DEADLINE_S = 10, 600
t0 = time.monotonic()
pending = {call("eth_sendTransaction", {"from": sender, "to": nft, "data": d}): (d, time.monotonic()) for d in calls}
gas = resent = 0
while pending:
    assert time.monotonic() - t0 < DEADLINE_S, f"{len(pending)} txs not mined in {DEADLINE_S} s"
    for h, (d, sent) in list(pending.items()):
        r = call("eth_getTransactionReceipt", h)
        if r is not None:
            assert r["status"] == "0x1", r
            gas += int(r["gasUsed"], 16)
            del pending[h]
        elif time.monotonic() - sent > RESEND_AFTER_S:
            del pending[h]
            pending[call("eth_sendTransaction", {"from": sender, "to": nft, "data": d})] = (d, time.monotonic())
            resent += 1
    time.sleep(0.05)
ms = (time.monotonic() - t0) * 1000
print(json.dumps({"kind": "direct-batched", "round": rnd, "batch_max": batch, "window": "-", "n": n,
                  "wall_ms": round(ms), "rate": round(n * 1000 / ms, 1), "gas_per_mint": gas // n,
                  "txs": len(calls), "resent": resent}, sort_keys=True))
EOF
  bench_say "direct-batched round $round: $(tail -1 "$trials")"
}

for ((r = 1; r <= ROUNDS; r++)); do
  if [ "$MODE" = window ]; then
    direct_batched "$r" "$N" "$WBATCH"
    for w in "${WINDOWS[@]}"; do trial "$r" "$WBATCH" "$N" "$w"; done
    continue
  fi
  direct "$r" "$N1"
  trial "$r" 1 "$N1"
  for b in "${BATCHES[@]}"; do trial "$r" "$b" "$N"; done
done

python3 - "$trials" "$BENCH_WORK/$SUITE.json" "$BENCH_WORK/$SUITE.md" "$N" "$N1" "$ROUNDS" "$MODE" <<'EOF'
import json, statistics, sys
trials_path, out_json, out_md, n, n1, rounds = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:7])
mode = sys.argv[7]
trials = [json.loads(l) for l in open(trials_path) if l.strip()]
def key(t):
    if t["kind"] == "direct-batched":
        return f"direct-batched b{t['batch_max']}"
    if t["kind"] == "direct":
        return "anvil-direct"
    return f"mint b{t['batch_max']}" + (f" window {t['window']}" if mode == "window" else "")
order = []
for t in trials:
    if key(t) not in order:
        order.append(key(t))
summary = {}
for k in order:
    ts = [t for t in trials if key(t) == k]
    rates = [t["rate"] for t in ts]
    summary[k] = {"n": ts[0]["n"], "batch_max": ts[0]["batch_max"], "rate_median": statistics.median(rates),
                  "rate_min": min(rates), "rate_max": max(rates),
                  "gas_per_mint_median": statistics.median([t["gas_per_mint"] for t in ts]),
                  "txs_median": statistics.median([t["txs"] for t in ts]) if "txs" in ts[0] else ts[0]["n"]}
refs = [k for k in summary if k.startswith(("anvil-direct", "direct-batched"))]
ref_name = refs[0] if refs else "anvil-direct"
ref = summary[ref_name]["rate_median"] if refs else None
json.dump({"summary": summary, "trials": trials}, open(out_json, "w"), indent=2, sort_keys=True)
chain = ("anvil with 1 s blocks and a 140M gas limit (--block-time 1), one signer" if mode == "window"
         else "a private anvil (automine)")
md = [f"## {'mint-window' if mode == 'window' else 'mint'}", "",
      f"One mint stage on {chain}, {rounds} round(s) interleaved; mints/s = deposits / (worker "
      "start -> all on zl.nft.minted), medians (min-max); gas/mint = gasUsed of the signer's txs / deposits.", "",
      f"| run | deposits | txs | mints/s | gas/mint | vs {ref_name} |", "|---|---|---|---|---|---|"]
for k in order:
    s = summary[k]
    ratio = f"{s['rate_median'] / ref:.2f}x" if ref else "-"
    md.append(f"| {k} | {s['n']} | {s['txs_median']:.0f} | {s['rate_median']:.0f} ({s['rate_min']:.0f}-{s['rate_max']:.0f})"
              f" | {s['gas_per_mint_median']:,.0f} | {ratio} |")
if mode == "window":
    md += ["", "direct-batched: the same mintBatch calls sent straight to the node from anvil's unlocked account 0, "
           "all at once, then every receipt awaited (no DB, no Kafka, no signing on our side): what the chain "
           "admits for these calls. window N: ZL_MINT_INFLIGHT_MAX=N (1: one tx in flight, each receipt awaited "
           "in the stage, as before issue 19).", ""]
else:
    md += ["", "anvil-direct: mint() from anvil's unlocked account 0 over JSON-RPC, one at a time, each receipt "
           "awaited (no DB, no Kafka, no signing on our side): the chain's ceiling for one tx per mint.", ""]
open(out_md, "w").write("\n".join(md) + "\n")
print("\n".join(md), file=sys.stderr)
EOF

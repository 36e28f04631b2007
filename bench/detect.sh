#!/usr/bin/env bash
# bench/detect.sh: detect's scan throughput (ERC-20 transfers recorded per
# second) beside two peers on the same anvil chain, interleaved in the same
# run (detect, ethereumetl, cryo, detect, ...): `ethereumetl
# export_token_transfers` and `cryo erc20_transfers` (crates.io cryo_cli).
#
# bench-needs: postgres kafka
#
# The chain is a private anvil started here (its own port, stopped by pid):
# the test token, BENCH_DETECT_N transfers of it to BENCH_DETECT_ADDRS
# addresses, BENCH_DETECT_PER_BLOCK per block (automine off, JSON-RPC batches
# of eth_sendTransaction from anvil's unlocked dev accounts, then anvil_mine),
# with BENCH_DETECT_GAP empty blocks after each full block. All of it before
# any timer starts.
#
# detect trial: a fresh database (created, migrated, addresses COPYed, then
# dropped), a fresh topic prefix; detect starts with ZL_DETECT_START_BLOCK=0
# and ZL_DETECT_LAG_BLOCKS=0; the rate is N / (process start -> N rows for
# the token), so it includes connecting, reading decimals and publishing.
# etl trial: `ethereumetl export_token_transfers` over blocks 0..head for the
# token into a CSV; rate = transfers in the CSV / wall time of the command
# (it includes Python start-up; the figure without it is also recorded).
# Its venv is ~/.cache/zeroloss/etl-venv-<hash of bench/etl-requirements.txt>,
# made from the system python3 with every package pinned there (--no-deps),
# when missing; run as `python -m ethereumetl`.
# cryo trial: `cryo erc20_transfers` over the same blocks for the token into
# CSV files; rate = rows / wall time of the command. Its binary is
# ~/.cache/zeroloss/cryo-<version>/bin/cryo, built once with `cargo install
# cryo_cli` when missing (many minutes; before any timer). A peer
# that cannot be installed is reported as not measured, with its error.
#
# Since issue 18 detect asks the node for every Transfer of the token and
# keeps those to an address in its in-memory set, so the figures also hold
# the set: BENCH_DETECT_REGISTERED addresses registered in all (default
# BENCH_DETECT_ADDRS), of which the last BENCH_DETECT_ADDRS COPYed (the
# highest seq: registered last) receive the transfers; BENCH_DETECT_OTHERS
# more transfers go to unregistered addresses (the token's other traffic,
# read and dropped). Recorded per detect round: transfers recorded/s,
# transfers scanned/s (ours + others), the address set's load time (from
# its log line) and detect's VmHWM (peak RSS). bench/detect-addresses.sh is
# the 1,000,000-address suite.
#
# Knobs: BENCH_DETECT_N (20000), BENCH_DETECT_ADDRS (300),
# BENCH_DETECT_REGISTERED (= ADDRS), BENCH_DETECT_OTHERS (0),
# BENCH_DETECT_ETL (1; 0 skips ethereumetl), BENCH_DETECT_CRYO (1; 0 skips
# cryo), BENCH_CRYO_VERSION (0.3.2), BENCH_CRYO_BUILD (1; 0: a missing cryo
# binary is reported, not built), BENCH_DETECT_SUITE (detect: the
# result file names),
# BENCH_DETECT_PER_BLOCK (500), BENCH_DETECT_GAP (4), BENCH_ROUNDS (3),
# BENCH_DETECT_RANGE_MAX (detect's default when unset), BENCH_ETL_BATCH (100),
# BENCH_ETL_WORKERS (5), BENCH_TRIAL_TIMEOUT_S (300).
# Also measured, as the bound under any scanner: anvil's own eth_getLogs for
# the whole chain with detect's filter (token, Transfer), one
# request by curl into /dev/null, BENCH_DETECT_RAW_ROUNDS (3) times; and, per
# detect round, where its time went (eth_getLogs + JSON decoding, log
# parsing, waiting for PostgreSQL, publishing), from its step log lines.
# Targets: detect >= 10x ethereumetl (issue 4); detect >= 50,000 transfers/s
# (issue 19).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/bench/lib.sh"
build=${ZL_BUILD_DIR:-$repo/build/release}
N=${BENCH_DETECT_N:-20000}
ADDRS=${BENCH_DETECT_ADDRS:-300}
REGISTERED=${BENCH_DETECT_REGISTERED:-$ADDRS}
OTHERS=${BENCH_DETECT_OTHERS:-0}
SUITE=${BENCH_DETECT_SUITE:-detect}
[ "$REGISTERED" -ge "$ADDRS" ] || bench_die "BENCH_DETECT_REGISTERED ($REGISTERED) < BENCH_DETECT_ADDRS ($ADDRS)"
PER_BLOCK=${BENCH_DETECT_PER_BLOCK:-500}
GAP=${BENCH_DETECT_GAP:-4}
ROUNDS=${BENCH_ROUNDS:-3}
ETL_BATCH=${BENCH_ETL_BATCH:-100}
ETL_WORKERS=${BENCH_ETL_WORKERS:-5}
TIMEOUT_S=${BENCH_TRIAL_TIMEOUT_S:-300}
ETL_REQS=$repo/bench/etl-requirements.txt
VENV=${BENCH_VENV:-$HOME/.cache/zeroloss/etl-venv-$(sha256sum "$ETL_REQS" | cut -c1-12)}
# The system's python3, not a pyenv shim: a fresh machine has it (pyenv's
# python3.10 was not there: "pyenv: python3.10: command not found").
ETL_PYTHON=${BENCH_ETL_PYTHON:-$( [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || command -v python3)}
CRYO_VERSION=${BENCH_CRYO_VERSION:-0.3.2}
CRYO_ROOT=${BENCH_CRYO_ROOT:-$HOME/.cache/zeroloss/cryo-$CRYO_VERSION}
: "${ZL_PG_DSN:?eval \"\$(deploy/local/services env)\" first}" "${ZL_KAFKA_BROKERS:?}" "${ZL_PG_BIN:?}"
anvil_bin=${ZL_ANVIL:-$(command -v anvil || true)}
[ -x "$anvil_bin" ] || bench_die "anvil not found (ZL_ANVIL)"
WORK=${BENCH_WORK:-$(mktemp -d)}
mkdir -p "$WORK/$SUITE"
W=$WORK/$SUITE
trials=$W/trials.jsonl
: > "$trials"

dbs=()
cleanup() {
  bench_stop_spawned
  [ -n "${anvil_pid:-}" ] && bench_stop "$anvil_pid" 5
  for db in "${dbs[@]}"; do
    "$ZL_PG_BIN/psql" "$ZL_PG_DSN" -qX -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

# ---------------------------------------------------------------- the chain
bench_anvil "$W" --gas-limit 1000000000 --accounts 10
anvil_pid=$BENCH_ANVIL_PID
rpc=$BENCH_ANVIL_URL
keyfile=$W/deployer.key
echo 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80 > "$keyfile"
chmod 600 "$keyfile"
token_cs=$("$repo/deploy/contracts/deploy.sh" "$rpc" "$keyfile" | sed -n 's/^ZL_TOKEN_ADDRESS=//p')
token=$(echo "$token_cs" | tr 'A-F' 'a-f')
# web3 (under ethereumetl) takes only EIP-55 checksummed addresses.
token_cs=$("${ZL_CAST:-cast}" to-check-sum-address "$token")
[ -n "$token" ] || bench_die "token deploy failed"
bench_say "detect: preparing $N transfers to $ADDRS of $REGISTERED registered addresses (+$OTHERS to others) on $rpc (token $token)"
prep_t0=$(bench_now_ms)
python3 - "$rpc" "$token" "$N" "$ADDRS" "$PER_BLOCK" "$GAP" "$W/addresses.csv" "$REGISTERED" "$OTHERS" <<'EOF'
import json, secrets, sys, urllib.request
rpc, token, n, n_addrs, per_block, gap, csv_path = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7]), sys.argv[7]
n_registered, n_others = int(sys.argv[8]), int(sys.argv[9])
def call(reqs):
    body = json.dumps(reqs).encode()
    r = urllib.request.urlopen(urllib.request.Request(rpc, body, {"Content-Type": "application/json"}), timeout=300)
    out = json.loads(r.read())
    if isinstance(out, dict):
        out = [out]
    bad = [o for o in out if "error" in o]
    if bad:
        raise SystemExit(f"rpc error: {bad[0]}")
    return [o["result"] for o in out]
def req(i, method, *params):
    return {"jsonrpc": "2.0", "id": i, "method": method, "params": list(params)}
accounts = call([req(1, "eth_accounts")])[0]
owner, senders = accounts[0], accounts[1:]
addrs = ["0x" + secrets.token_hex(20) for _ in range(n_addrs)]
others = ["0x" + secrets.token_hex(20) for _ in range(min(n_others, 1000))]
with open(csv_path, "w") as f:
    # the addresses that receive nothing first: the paid ones are registered last
    for i in range(n_registered - n_addrs):
        f.write(f"31337,0x{secrets.token_hex(20)},bench-x{i}\n")
    for i, a in enumerate(addrs):
        f.write(f"31337,{a},bench-u{i}\n")
def data(sig, to, amount):
    return sig + to[2:].rjust(64, "0") + hex(amount)[2:].rjust(64, "0")
MINT, TRANSFER = "0x40c10f19", "0xa9059cbb"  # mint(address,uint256), transfer(address,uint256)
call([req(1, "evm_setAutomine", False)])
n0 = int(call([req(1, "eth_getTransactionCount", owner, "pending")])[0], 16)
call([req(i, "eth_sendTransaction", {"from": owner, "to": token, "data": data(MINT, s, 10**30), "gas": "0x30000",
                                     "nonce": hex(n0 + i)}) for i, s in enumerate(senders)])
call([req(1, "anvil_mine", "0x1")])
# Explicit nonces: requests of one batch run concurrently in anvil, so
# nonces it picked itself would clash.
nonces = {s: 0 for s in senders}
def next_nonce(s):
    nonces[s] += 1
    return hex(nonces[s] - 1)
# Ours and others' interleaved, every (1 + others/n)-th one ours.
total = n + n_others
def recipient(i):
    if n_others == 0:
        return addrs[i % n_addrs]
    ours_before = i * n // total
    if (i + 1) * n // total > ours_before:
        return addrs[ours_before % n_addrs]
    return others[i % len(others)]
sent = 0
while sent < total:
    k = min(per_block, total - sent)
    batch = [req(j, "eth_sendTransaction", {"from": senders[(sent + j) % len(senders)], "to": token,
                                             "nonce": next_nonce(senders[(sent + j) % len(senders)]),
                                             "data": data(TRANSFER, recipient(sent + j), 10**18 + sent + j),
                                             "gas": "0x20000", "gasPrice": "0x77359400"}) for j in range(k)]
    call(batch)
    call([req(1, "anvil_mine", "0x1")])
    if gap:
        call([req(1, "anvil_mine", hex(gap))])
    sent += k
pending = call([req(1, "txpool_status")])[0]
call([req(1, "evm_setAutomine", True)])
logs = call([req(1, "eth_getLogs", {"fromBlock": "0x0", "toBlock": "latest", "address": token,
                                     "topics": ["0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"]})])[0]
ours = set(addrs)
got = sum(1 for lg in logs if "0x" + lg["topics"][2][-40:] in ours)
if got != n:
    raise SystemExit(f"chain holds {got} transfers to our addresses, wanted {n} (txpool {pending})")
print(f"chain ready: {got} transfers to ours (+{len(logs) - got} others and mints), head {int(call([req(1, 'eth_blockNumber')])[0], 16)}",
      file=sys.stderr)
EOF
prep_s=$(( ($(bench_now_ms) - prep_t0) / 1000 ))
head=$(curl -sf -X POST -H 'Content-Type: application/json' \
  -d '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}' "$rpc" | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["result"],16))')
total_logs=$((N + OTHERS + 9))  # the 9 mints are Transfers too: detect reads them, ethereumetl exports them

# ---------------------------------------------------------------- anvil alone
# The request detect makes (it splits it into sub-ranges) as one request,
# answered into /dev/null: no scanner reading this node can be faster.
python3 - "$token" "$head" > "$W/getlogs.json" <<'EOF'
import json, sys
token, head = sys.argv[1], int(sys.argv[2])
print(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [{
    "fromBlock": "0x0", "toBlock": hex(head), "address": token,
    "topics": ["0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"]}]}))
EOF
raw_ms=()
for _ in $(seq 1 "${BENCH_DETECT_RAW_ROUNDS:-3}"); do
  secs=$(curl -sf -o /dev/null -w '%{time_total}' -X POST -H 'Content-Type: application/json' \
    --data-binary @"$W/getlogs.json" "$rpc") || bench_die "eth_getLogs on $rpc failed"
  raw_ms+=("$(python3 -c "print(round($secs * 1000))")")
done
bench_say "detect: anvil eth_getLogs for blocks 0..$head alone: ${raw_ms[*]} ms"

# ---------------------------------------------------------------- the peers
etl_status=ok
etl_py=$VENV/bin/python
if [ "${BENCH_DETECT_ETL:-1}" = 0 ]; then
  etl_status="skipped (BENCH_DETECT_ETL=0)"
elif [ ! -x "$etl_py" ] || ! "$etl_py" -m ethereumetl --help >/dev/null 2>&1; then
  bench_say "detect: installing ethereum-etl (pinned, bench/etl-requirements.txt) into $VENV"
  rm -rf "$VENV"
  { "$ETL_PYTHON" -m venv "$VENV" && "$VENV/bin/pip" install -q --no-deps -r "$ETL_REQS"; } >"$W/etl-install.log" 2>&1 || true
fi
if [ "$etl_status" = ok ] && { [ ! -x "$etl_py" ] || ! "$etl_py" -m ethereumetl --help >"$W/etl-help.log" 2>&1; }; then
  etl_status="ethereum-etl unusable: $(tail -n 3 "$W/etl-install.log" "$W/etl-help.log" 2>/dev/null | tr '\n' ' ' | cut -c1-400 || true)"
  bench_say "detect: $etl_status"
fi

cryo_status=ok
cryo_bin=$CRYO_ROOT/bin/cryo
if [ "${BENCH_DETECT_CRYO:-1}" = 0 ]; then
  cryo_status="skipped (BENCH_DETECT_CRYO=0)"
elif [ ! -x "$cryo_bin" ]; then
  if [ "${BENCH_CRYO_BUILD:-1}" = 0 ]; then
    echo "not built (BENCH_CRYO_BUILD=0): $cryo_bin missing; build it with: CARGO_TARGET_DIR=$CRYO_ROOT-target cargo install cryo_cli --version $CRYO_VERSION --root $CRYO_ROOT" >"$W/cryo-install.log"
  elif command -v cargo >/dev/null; then
    bench_say "detect: building cryo_cli $CRYO_VERSION into $CRYO_ROOT (once; many minutes)"
    # Not --locked: cryo_cli 0.3.2's lock file pins time 0.3.30, which no
    # longer compiles (rustc 1.80+: "error[E0282]: type annotations needed
    # for `Box<_>`" in time's format_description). The target folder is kept
    # so an interrupted build resumes.
    CARGO_TARGET_DIR=$CRYO_ROOT-target cargo install cryo_cli --version "$CRYO_VERSION" -j 2 --root "$CRYO_ROOT" \
      >"$W/cryo-install.log" 2>&1 || true
  else
    echo "cargo: command not found (cryo_cli is a Rust crate: install rustup/cargo)" >"$W/cryo-install.log"
  fi
fi
if [ "$cryo_status" = ok ] && { [ ! -x "$cryo_bin" ] || ! "$cryo_bin" --version >"$W/cryo-help.log" 2>&1; }; then
  cryo_status="cryo unusable: $(grep -m 3 -E '^error' "$W/cryo-install.log" 2>/dev/null | tr '\n' ' ' | cut -c1-300)$(tail -q -n 2 "$W/cryo-install.log" "$W/cryo-help.log" 2>/dev/null | tr '\n' ' ' | cut -c1-300 || true)"
  bench_say "detect: $cryo_status"
fi

detect_trial() {
  local r=$1 db=zl_detect_bench_$(date +%s%N | tail -c 10) prefix="bd$(date +%s%N | tail -c 9)."
  local dsn="${ZL_PG_DSN%/*}/$db"
  dbs+=("$db")
  "$ZL_PG_BIN/psql" "$ZL_PG_DSN" -qX -c "CREATE DATABASE $db" >/dev/null
  ZL_PG_DSN=$dsn ZL_SCHEMA_DIR=$repo/schemas/sql "$build/bin/zl-migrate" >/dev/null
  "$ZL_PG_BIN/psql" "$dsn" -qX -v ON_ERROR_STOP=1 \
    -c "\\copy deposit_addresses (chain_id, address, user_id) FROM '$W/addresses.csv' WITH (FORMAT csv)"
  ZL_TOPIC_PREFIX=$prefix ZL_TOPICS_STAGES=verify ZL_TOPIC_PARTITIONS=6 "$build/bin/zl-topics" >/dev/null
  local extra=()
  [ -n "${BENCH_DETECT_RANGE_MAX:-}" ] && extra+=(ZL_DETECT_RANGE_MAX="$BENCH_DETECT_RANGE_MAX")
  local t0 t1 n=0 deadline=$((SECONDS + TIMEOUT_S))
  t0=$(bench_now_ms)
  bench_spawn "$W/detect-$r.log" env ZL_PG_DSN="$dsn" ZL_TOPIC_PREFIX="$prefix" ZL_RPC_URLS="$rpc" \
    ZL_TOKEN_ADDRESS="$token" ZL_CHAIN_ID=31337 ZL_DETECT_START_BLOCK=0 ZL_DETECT_LAG_BLOCKS=0 \
    ZL_DETECT_POLL_MS=100 ZL_LOG_LEVEL=info ZL_HTTP_PORT=0 "${extra[@]}" "$build/bin/detect"
  local pid=$BENCH_PID
  while [ "$n" -lt "$N" ] && [ $SECONDS -lt $deadline ] && kill -0 "$pid" 2>/dev/null; do
    sleep 0.05
    n=$("$ZL_PG_BIN/psql" "$dsn" -X -q -tA -c "SELECT count(*) FROM deposits WHERE token = '$token'")
  done
  t1=$(bench_now_ms)
  local cpu rss
  cpu=$(bench_cpu_s "$pid"); rss=$(bench_rss "$pid" | cut -d' ' -f1)
  bench_stop "$pid"
  [ "$n" -eq "$N" ] || bench_die "detect round $r: $n of $N rows after ${TIMEOUT_S}s (log $W/detect-$r.log)"
  local ms=$((t1 - t0)) phases
  # Sums over its step lines: "... eth_getLogs A ms, parse B ms, db C ms, publish D ms".
  phases=$(python3 - "$W/detect-$r.log" <<'EOF'
import re, sys
tot = {"getlogs_ms": 0, "parse_ms": 0, "db_wait_ms": 0, "publish_ms": 0, "steps": 0}
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r"eth_getLogs (\d+) ms, parse (\d+) ms, db (\d+) ms, publish (\d+) ms", line)
    if m:
        for k, v in zip(("getlogs_ms", "parse_ms", "db_wait_ms", "publish_ms"), m.groups()):
            tot[k] += int(v)
        tot["steps"] += 1
m = re.search(r"address set: (\d+) added in (\d+) ms", open(sys.argv[1], errors="replace").read())
tot["set_load_ms"] = int(m.group(2)) if m else -1
print(" ".join(f"{k}={v}" for k, v in tot.items()))
EOF
)
  # $phases is k=v words on purpose
  # shellcheck disable=SC2086
  bench_record "$trials" tool=detect round="$r" transfers="$n" ms="$ms" \
    rate="$(python3 -c "print(round($n * 1000 / max($ms, 1), 1))")" cpu_s="$cpu" vmhwm_kib="$rss" exit="$BENCH_RC" \
    scanned="$total_logs" scan_rate="$(python3 -c "print(round($total_logs * 1000 / max($ms, 1), 1))")" \
    scan_rate_after_load="$(python3 -c "print(round($total_logs * 1000 / max($ms - max(${phases##*set_load_ms=}, 0), 1), 1))")" \
    $phases
  bench_say "detect round $r: $n transfers in $ms ms"
}

etl_trial() {
  local r=$1 out=$W/etl-$r.csv t0 t1 t_import0 t_import1
  rm -f "$out"
  # Start-up alone (Python + its imports), to show what the wall time holds.
  t_import0=$(bench_now_ms); "$etl_py" -m ethereumetl --help >/dev/null 2>&1 || true; t_import1=$(bench_now_ms)
  t0=$(bench_now_ms)
  timeout "$TIMEOUT_S" "$etl_py" -m ethereumetl export_token_transfers --start-block 0 --end-block "$head" \
    --provider-uri "$rpc" --tokens "$token_cs" --batch-size "$ETL_BATCH" --max-workers "$ETL_WORKERS" \
    --output "$out" >"$W/etl-$r.log" 2>&1 || bench_die "ethereumetl round $r failed (log $W/etl-$r.log)"
  t1=$(bench_now_ms)
  local n=$(($(wc -l < "$out") - 1)) ms=$((t1 - t0)) startup=$((t_import1 - t_import0))
  [ "$n" -eq "$total_logs" ] || bench_die "ethereumetl round $r: $n transfers exported, wanted $total_logs"
  bench_record "$trials" tool=ethereumetl round="$r" transfers="$n" ms="$ms" startup_ms="$startup" \
    rate="$(python3 -c "print(round($n * 1000 / max($ms, 1), 1))")" \
    rate_after_startup="$(python3 -c "print(round($n * 1000 / max($ms - $startup, 1), 1))")"
  bench_say "ethereumetl round $r: $n transfers in $ms ms"
}

cryo_trial() {
  local r=$1 out=$W/cryo-$r t0 t1
  rm -rf "$out"; mkdir -p "$out"
  t0=$(bench_now_ms)
  # --blocks a:b is end-exclusive; erc20_transfers with --contract: the
  # token's Transfer logs, decoded, as detect and ethereumetl read them.
  timeout "$TIMEOUT_S" "$cryo_bin" erc20_transfers --rpc "$rpc" --blocks "0:$((head + 1))" --contract "$token" \
    --csv --output-dir "$out" --no-report >"$W/cryo-$r.log" 2>&1 || bench_die "cryo round $r failed (log $W/cryo-$r.log)"
  t1=$(bench_now_ms)
  local n=0 f
  for f in "$out"/*.csv; do
    [ -f "$f" ] && n=$((n + $(wc -l < "$f") - 1))
  done
  local ms=$((t1 - t0))
  [ "$n" -eq "$total_logs" ] || bench_die "cryo round $r: $n transfers exported, wanted $total_logs (log $W/cryo-$r.log)"
  bench_record "$trials" tool=cryo round="$r" transfers="$n" ms="$ms" \
    rate="$(python3 -c "print(round($n * 1000 / max($ms, 1), 1))")"
  bench_say "cryo round $r: $n transfers in $ms ms"
}

for ((r = 1; r <= ROUNDS; r++)); do
  detect_trial "$r"
  if [ "$etl_status" = ok ]; then etl_trial "$r"; fi
  if [ "$cryo_status" = ok ]; then cryo_trial "$r"; fi
done

python3 - "$trials" "$W/../$SUITE.json" "$W/../$SUITE.md" "$N" "$ADDRS" "$PER_BLOCK" "$GAP" "$head" "$prep_s" \
  "$etl_status" "$ETL_BATCH" "$ETL_WORKERS" "${BENCH_DETECT_RANGE_MAX:-default}" "$(cut -d' ' -f1-3 /proc/loadavg)" \
  "${raw_ms[*]}" "$REGISTERED" "$OTHERS" "$total_logs" "$SUITE" "$cryo_status" "$CRYO_VERSION" <<'EOF'
import json, statistics, sys
(trials_f, jout, mout, n, addrs, per_block, gap, head, prep_s, etl_status, etl_batch, etl_workers, range_max, load, raw,
 registered, others, scanned, suite, cryo_status, cryo_version) = sys.argv[1:]
raw_ms = [int(x) for x in raw.split()]
trials = [json.loads(l) for l in open(trials_f) if l.strip()]
det = [t for t in trials if t["tool"] == "detect"]
etl = [t for t in trials if t["tool"] == "ethereumetl"]
cryo = [t for t in trials if t["tool"] == "cryo"]
def med(xs, k):
    return statistics.median(x[k] for x in xs) if xs else None
ratios = [d["rate"] / e["rate"] for d, e in zip(det, etl)]
cryo_ratios = [d["rate"] / c["rate"] for d, c in zip(det, cryo)]
res = {
    "chain": {"transfers": int(n), "addresses": int(addrs), "per_block": int(per_block), "empty_blocks_between": int(gap),
              "head": int(head), "prepare_s": int(prep_s), "registered": int(registered), "other_transfers": int(others),
              "transfers_scanned": int(scanned)},
    "detect_scan_rate_median": med(det, "scan_rate"), "detect_vmhwm_kib_median": med(det, "vmhwm_kib"),
    "detect_set_load_ms_median": med(det, "set_load_ms"),
    "detect_rate_median": med(det, "rate"), "detect_rate_min_max": [min(d["rate"] for d in det), max(d["rate"] for d in det)],
    "ethereumetl_status": etl_status,
    "ethereumetl_rate_median": med(etl, "rate"),
    "ethereumetl_rate_after_startup_median": med(etl, "rate_after_startup"),
    "ratio_per_round": [round(x, 2) for x in ratios],
    "ratio_median": round(statistics.median(ratios), 2) if ratios else None,
    "target_ratio": 10, "target_met": (statistics.median(ratios) >= 10) if ratios else None,
    "cryo_status": cryo_status, "cryo_version": cryo_version, "cryo_rate_median": med(cryo, "rate"),
    "cryo_ratio_per_round": [round(x, 2) for x in cryo_ratios],
    "cryo_ratio_median": round(statistics.median(cryo_ratios), 2) if cryo_ratios else None,
    "target_rate": 50000, "target_rate_met": med(det, "rate") >= 50000,
    "etl_args": {"batch_size": int(etl_batch), "max_workers": int(etl_workers)}, "detect_range_max": range_max,
    "load_end": load, "trials": trials,
    "anvil_getlogs_ms": raw_ms,
    "anvil_getlogs_rate_bound": round(int(scanned) * 1000 / max(statistics.median(raw_ms), 1), 1),
    "detect_phases_median": {k: med(det, k) for k in ("getlogs_ms", "parse_ms", "db_wait_ms", "publish_ms", "steps")
                             if all(k in d for d in det)},
}
json.dump(res, open(jout, "w"), indent=2, sort_keys=True)
fmt = lambda x: "–" if x is None else f"{x:,.0f}"
md = [f"## {suite}\n",
      f"Scan throughput on a private anvil: {int(n):,} ERC-20 Transfers of the test token to {int(addrs):,} of "
      f"{int(registered):,} registered addresses (the last registered), plus {int(others):,} to unregistered "
      f"addresses; {per_block} per block with {gap} empty blocks between (head {head}); "
      + ("rounds interleaved: detect" + (", ethereumetl" if etl else "") + (", cryo" if cryo else "") + ". "
         if etl or cryo else "") +
      f"detect: fresh DB, START_BLOCK=0, LAG=0, range max {range_max}; rate = N / (process start → "
      f"N rows)" + (f". ethereumetl: `export_token_transfers --batch-size {etl_batch} --max-workers {etl_workers}` "
                    f"over blocks 0..{head}; rate = exported / wall time" if etl else "")
      + (f". cryo {cryo_version}: `cryo erc20_transfers --contract TOKEN --blocks 0:{int(head) + 1} --csv` "
         f"(its defaults otherwise); rate = rows / wall time" if cryo else "") + ".\n",
      "| figure | median transfers/s | min–max | rounds |", "|---|---|---|---|",
      f"| detect (rows committed + events published) | {fmt(med(det, 'rate'))} | {fmt(min(d['rate'] for d in det))}–{fmt(max(d['rate'] for d in det))} | {len(det)} |",
      f"| detect, Transfers scanned (ours + others + 9 mints: {int(scanned):,}) | {fmt(med(det, 'scan_rate'))} | {fmt(min(d['scan_rate'] for d in det))}–{fmt(max(d['scan_rate'] for d in det))} | {len(det)} |",
      f"| detect, Transfers scanned, the address set's load left out | {fmt(med(det, 'scan_rate_after_load'))} | {fmt(min(d['scan_rate_after_load'] for d in det))}–{fmt(max(d['scan_rate_after_load'] for d in det))} | {len(det)} |"]
md.append(f"| bound: anvil's eth_getLogs alone for the {int(scanned):,} Transfers (same filter, one request into /dev/null: "
          f"{', '.join(map(str, raw_ms))} ms) | {fmt(res['anvil_getlogs_rate_bound'])} | | {len(raw_ms)} |")
if etl:
    md.append(f"| ethereumetl export_token_transfers (CSV) | {fmt(med(etl, 'rate'))} | {fmt(min(e['rate'] for e in etl))}–{fmt(max(e['rate'] for e in etl))} | {len(etl)} |")
    md.append(f"| ethereumetl without its start-up ({fmt(med(etl, 'startup_ms'))} ms) | {fmt(med(etl, 'rate_after_startup'))} | | |")
if cryo:
    md.append(f"| cryo {cryo_version} erc20_transfers (CSV) | {fmt(med(cryo, 'rate'))} | {fmt(min(c['rate'] for c in cryo))}–{fmt(max(c['rate'] for c in cryo))} | {len(cryo)} |")
md.append("")
if etl:
    md.append(f"Ratio detect / ethereumetl per round: {', '.join(f'{x:.1f}×' for x in ratios)}; median "
              f"{statistics.median(ratios):.1f}×. Target ≥ 10×: **{'met' if statistics.median(ratios) >= 10 else 'NOT met'}**.")
else:
    md.append(f"ethereumetl: not measured — {etl_status}. Target ≥ 10×: **not assessed**.")
if cryo:
    md.append(f"\nRatio detect / cryo per round: {', '.join(f'{x:.2f}×' for x in cryo_ratios)}; median "
              f"{statistics.median(cryo_ratios):.2f}×.")
else:
    md.append(f"\ncryo: not measured — {cryo_status}.")
md.append(f"\nTarget detect ≥ 50,000 transfers/s (issue 19): **{'met' if res['target_rate_met'] else 'NOT met'}** "
          f"({fmt(med(det, 'rate'))}/s median).")
ph = res["detect_phases_median"]
if ph:
    md.append(f"\ndetect's own time (median per round, from its step log lines): eth_getLogs requests and their "
              f"JSON decoding {fmt(ph['getlogs_ms'])} ms, log parsing {fmt(ph['parse_ms'])} ms, waiting for "
              f"PostgreSQL {fmt(ph['db_wait_ms'])} ms (each insert overlaps the next request), publishing after "
              f"the commit {fmt(ph['publish_ms'])} ms, in {fmt(ph['steps'])} step(s).")
md.append(f"\ndetect's memory and start: peak RSS (VmHWM) {fmt(med(det, 'vmhwm_kib'))} KiB median "
          f"({', '.join(fmt(d['vmhwm_kib']) for d in det)}); loading the {int(registered):,} addresses into its set took "
          f"{fmt(med(det, 'set_load_ms'))} ms median (inside the timed figures above).")
md.append(f"\nLoad average at the end: {load}. Chain preparation took {prep_s} s (not timed in the figures).\n")
open(mout, "w").write("\n".join(md))
print(open(mout).read(), file=sys.stderr)
EOF

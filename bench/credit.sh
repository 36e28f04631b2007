#!/usr/bin/env bash
# bench/credit.sh: credits per second of ONE credit stage into the real
# PostgreSQL (fsync on), per message (ZL_BATCH_SIZE_MAX=1) and batched, beside
# pgbench running the equivalent per-credit transaction (CAS of the row, two
# entries, two balance upserts, the row's credit columns) on the same server
# in the same run.
#
# bench-needs: postgres kafka
#
# Run through bench/run (bench/run credit), or standalone against running
# services (eval "$(deploy/local/services env)"). A database of its own
# (created, then dropped). Rate = N / (worker start -> every row credited),
# so it includes connecting and joining the group. Writes
# $BENCH_WORK/credit.json and credit.md when BENCH_WORK is set.
# Knobs: BENCH_CREDIT_N (5000), BENCH_CREDIT_N_SINGLE (1000),
# BENCH_CREDIT_BATCH (500), BENCH_PGBENCH_S (10), BENCH_TIMEOUT_S (300).
# A quick check: BENCH_CREDIT_N=1000 BENCH_CREDIT_N_SINGLE=200
# BENCH_PGBENCH_S=3 bench/run credit
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/bench/lib.sh"
build=${ZL_BUILD_DIR:-$repo/build/release}
N=${BENCH_CREDIT_N:-5000}
N1=${BENCH_CREDIT_N_SINGLE:-1000}
BATCH=${BENCH_CREDIT_BATCH:-500}
PGB_S=${BENCH_PGBENCH_S:-10}
TIMEOUT_S=${BENCH_TIMEOUT_S:-300}
: "${ZL_PG_DSN:?eval \"\$(deploy/local/services env)\" first}" "${ZL_KAFKA_BROKERS:?}" "${ZL_PG_BIN:?}"

db=zl_credit_bench_$(date +%s)
dsn="${ZL_PG_DSN%/*}/$db"
work=$(mktemp -d)
trials=$work/trials.jsonl
: > "$trials"
worker_pid=
cleanup() {
  if [ -n "$worker_pid" ]; then bench_stop "$worker_pid" 5; fi
  "$ZL_PG_BIN/psql" "$ZL_PG_DSN" -qX -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
psql_db() { "$ZL_PG_BIN/psql" "$dsn" -qXtA -v ON_ERROR_STOP=1 "$@"; }

"$ZL_PG_BIN/psql" "$ZL_PG_DSN" -qX -c "CREATE DATABASE $db" >/dev/null
ZL_PG_DSN=$dsn ZL_SCHEMA_DIR=$repo/schemas/sql "$build/bin/zl-migrate" >/dev/null
token=0x5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a
psql_db -c "INSERT INTO credit_rates (token, rate, effective_from) VALUES ('$token', 1000.5, now() - interval '1 s')"

# trial NAME COUNT BATCH: rows + events, then time one worker until done.
trial() {
  local name=$1 count=$2 batch=$3 prefix="cb$(date +%s%N | tail -c 9)."
  ZL_TOPIC_PREFIX=$prefix ZL_TOPICS_STAGES=credit ZL_TOPIC_PARTITIONS=6 "$build/bin/zl-topics" >/dev/null
  python3 - "$count" "$work/$name.tsv" "$work/$name.csv" "$token" <<'EOF'
import json, secrets, sys
n, tsv, csv, token = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
with open(tsv, "w") as t, open(csv, "w") as c:
    for i in range(n):
        tx = "0x" + secrets.token_hex(32)
        dep = f"31337:{tx}:0"
        amount = str(10**18 + i)
        cid = "bafkrei" + "a" * 52
        ev = {"schema": "zl.nft.minted/v1", "event_id": "00000000-0000-4000-8000-%012x" % i, "deposit_id": dep,
              "chain_id": 31337, "tx_hash": tx, "log_index": 0, "block_number": 1, "block_hash": "0x" + "ab" * 32,
              "token": token, "from": "0x" + "22" * 20, "to": "0x" + "33" * 20, "user_id": f"bench{i % 100}",
              "amount": amount, "occurred_at": "2026-11-23T10:00:00.000Z", "confirmations": 12,
              "metadata_cid": cid, "token_uri": "ipfs://" + cid, "mint_tx_hash": "0x" + "cd" * 32,
              "token_id": "1", "nft_contract": "0x" + "44" * 20}
        t.write(dep + "\t" + json.dumps(ev) + "\n")
        c.write(f"{dep},31337,{tx},0,1,0x{'ab' * 32},{token},0x{'22' * 20},0x{'33' * 20},bench{i % 100},{amount},"
                f"2026-11-23T10:00:00Z,minted\n")
EOF
  psql_db -c "\\copy deposits (deposit_id, chain_id, tx_hash, log_index, block_number, block_hash, token, from_addr, to_addr, user_id, amount, occurred_at, state) FROM '$work/$name.csv' CSV"
  kcat -b "$ZL_KAFKA_BROKERS" -P -t "${prefix}nft.minted" -K $'\t' -X acks=all -l "$work/$name.tsv"
  local start end credited=0
  start=$(date +%s%3N)
  bench_spawn "$work/$name.log" env ZL_PG_DSN="$dsn" ZL_TOPIC_PREFIX="$prefix" ZL_GROUP_ID="zl-credit-$prefix" \
    ZL_BATCH_SIZE_MAX="$batch" ZL_HTTP_PORT=0 ZL_LOG_LEVEL=warn "$build/bin/credit"
  worker_pid=$BENCH_PID
  local deadline=$((start + TIMEOUT_S * 1000))
  while [ "$credited" -lt "$count" ]; do
    [ "$(date +%s%3N)" -lt "$deadline" ] || { tail -5 "$work/$name.log" >&2; echo "timeout" >&2; exit 1; }
    sleep 0.1
    credited=$(psql_db -c "SELECT count(*) FROM deposits WHERE state = 'credited' AND deposit_id IN (SELECT deposit_id FROM ledger_entries) AND user_id LIKE 'bench%' AND updated_at >= to_timestamp($start / 1000.0)")
  done
  end=$(date +%s%3N)
  bench_stop "$worker_pid"; worker_pid=
  bench_record "$trials" kind=stage name="$name" batch="$batch" n="$count" ms=$((end - start))
  awk -v n="$count" -v ms="$((end - start))" -v name="$name" -v b="$batch" \
    'BEGIN { printf "%-22s batch=%-4s credits=%-6d %8.0f credits/s (%d ms)\n", name, b, n, n * 1000 / ms, ms }'
}

echo "credit bench: N=$N (batched), N=$N1 (per message), fsync=$("$ZL_PG_BIN/psql" "$dsn" -qXtA -c 'SHOW fsync')"
trial per-message "$N1" 1
trial batched "$N" "$BATCH"

# pgbench: the same writes, one credit per transaction, on fresh rows.
psql_db -c "INSERT INTO deposits (deposit_id, chain_id, tx_hash, log_index, block_number, block_hash, token, from_addr, to_addr, user_id, amount, occurred_at, state)
  SELECT '31337:0x' || lpad(to_hex(g), 64, '0') || ':0', 31337, '0x' || lpad(to_hex(g), 64, '0'), 0, 1, '0x' || repeat('ab', 32),
         '$token', '0x' || repeat('22', 20), '0x' || repeat('33', 20), 'pgb' || (g % 100), 1000000000000000000, now(), 'minted'
  FROM generate_series(1, 200000) g" >/dev/null
psql_db -c "ANALYZE" >/dev/null
cat > "$work/credit.sql" <<'EOF'
\set g random(1, 200000)
BEGIN;
UPDATE deposits SET state = 'credited', updated_at = now() WHERE deposit_id = '31337:0x' || lpad(to_hex(:g), 64, '0') || ':0' AND state = 'minted';
INSERT INTO ledger_accounts AS a (account_id, kind, owner, balance) VALUES ('user:pgb' || (:g % 100), 'user', 'pgb' || (:g % 100), 1000)
  ON CONFLICT (account_id) DO UPDATE SET balance = a.balance + 1000;
INSERT INTO ledger_accounts AS a (account_id, kind, owner, balance) VALUES ('system:0x5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a', 'system', '0x5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a', -1000)
  ON CONFLICT (account_id) DO UPDATE SET balance = a.balance - 1000;
INSERT INTO ledger_entries (entry_id, credit_id, deposit_id, kind, account_id, amount, token_amount, token_decimals, rate, rate_source)
  VALUES (gen_random_uuid(), gen_random_uuid(), '31337:0x' || lpad(to_hex(:g), 64, '0') || ':0', 'user_credit', 'user:pgb' || (:g % 100), 1000, 1000000000000000000, 18, 1000, 'db'),
         (gen_random_uuid(), gen_random_uuid(), '31337:0x' || lpad(to_hex(:g), 64, '0') || ':0', 'system_debit', 'system:0x5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a', -1000, 1000000000000000000, 18, 1000, 'db')
  ON CONFLICT DO NOTHING;
END;
EOF
for c in 1 4; do
  "$ZL_PG_BIN/pgbench" -n -c "$c" -j "$c" -T "$PGB_S" -f "$work/credit.sql" "$dsn" >"$work/pgbench.out" 2>&1 \
    || { tail -5 "$work/pgbench.out" >&2; exit 1; }
  tps=$(awk '/^tps/ { print int($3) }' "$work/pgbench.out")
  fails=$(awk '/failed transactions/ { print $5 }' "$work/pgbench.out")
  printf '%-22s clients=%-2s %8s credits/s (equivalent transaction, one credit each; failed: %s)\n' "pgbench" "$c" "$tps" "${fails:-0}"
  bench_record "$trials" kind=pgbench clients="$c" tps="$tps" failed="${fails:-0}" seconds="$PGB_S"
done

if [ -n "${BENCH_WORK:-}" ]; then
  python3 - "$trials" "$BENCH_WORK" "$N" "$N1" "$BATCH" "$PGB_S" <<'EOF'
import json, os, sys
trials_file, out, n, n1, batch, pgb_s = sys.argv[1:]
trials = [json.loads(line) for line in open(trials_file) if line.strip()]
for t in trials:
    if t["kind"] == "stage":
        t["credits_per_s"] = round(t["n"] * 1000 / max(t["ms"], 1), 1)
json.dump({"trials": trials, "n": int(n), "n_single": int(n1), "batch": int(batch), "pgbench_s": int(pgb_s)},
          open(os.path.join(out, "credit.json"), "w"), indent=2, sort_keys=True)
md = ["## credit", "",
      f"One credit stage into this run's PostgreSQL (fsync on), {n1} deposits one per transaction "
      f"(ZL_BATCH_SIZE_MAX=1) and {n} batched (ZL_BATCH_SIZE_MAX={batch}); rate = deposits / (worker start -> "
      "every row credited), so it includes connecting and joining the group. Reference: pgbench running the "
      f"equivalent per-credit transaction (CAS of the row, two entries, two balance upserts) for {pgb_s} s on "
      "the same server in the same run.", "",
      "| what | credits/s | detail |", "|---|---:|---|"]
for t in trials:
    if t["kind"] == "stage":
        md.append(f"| credit stage, {t['name']} | {t['credits_per_s']:,.0f} | batch {t['batch']}, {t['n']} deposits in {t['ms']} ms |")
    else:
        md.append(f"| pgbench, {t['clients']} client(s) | {t['tps']:,} | one credit per transaction, {t['failed']} failed |")
md.append("")
open(os.path.join(out, "credit.md"), "w").write("\n".join(md) + "\n")
EOF
fi

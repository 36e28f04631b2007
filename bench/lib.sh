# bench/lib.sh: helpers shared by bench/run and every bench/<suite>.sh.
# Sourced, never run. Needs bash, python3, kcat, psql (from $ZL_PG_BIN).
#
# What it gives a suite:
#   bench_services_up NAME...   start services in their own folder
#                               (ZL_LOCAL_DIR=.local/bench), export their env;
#                               stopped by bench_cleanup (services down = by pid)
#   bench_spawn LOG CMD...      start a process in the background (own session),
#                               pid in BENCH_PID, remembered so bench_cleanup
#                               stops it by pid
#   bench_stop_spawned          stop every process bench_spawn started
#   bench_cleanup               that, then the services (the runner's trap)
#   bench_stop PID [TIMEOUT_S]  SIGTERM, bounded wait, SIGKILL; exit code in
#                               BENCH_RC
#   (both set variables instead of printing: a $(...) subshell could not
#   wait for the child)
#   bench_rss PID               "VmHWM_KiB VmRSS_KiB" from /proc/PID/status
#   bench_cpu_s PID             user+system CPU seconds of PID so far
#   bench_end_offsets TOPIC P   sum of the end offsets of TOPIC's P partitions
#   bench_record FILE k=v...    append one JSON object (numbers stay numbers)
#   bench_deposits N TAG KAFKA_FILE CSV_FILE
#                               N zl.deposits.detected/v1 events (key<TAB>json)
#                               and their state rows (CSV for COPY)
#   bench_psql SQL              one statement against $ZL_PG_DSN, tuples only
#   bench_now_ms                wall clock in ms
#   bench_need_run              die unless run through bench/run
#   bench_require FILE...       die unless every binary is built
#   bench_free_port             a free loopback port (the harness's free_port)
#   bench_anvil DIR ARGS...     a private anvil, HOME=DIR; pid in
#                               BENCH_ANVIL_PID (remembered), URL in
#                               BENCH_ANVIL_URL
#
# The Python side of the benches shares the test harness, tests/lib/zlharness
# (BENCH_HARNESS below is the folder to put on sys.path).
#
# Every limit is named: BENCH_STOP_TIMEOUT_S bounds a stop, suites bound
# their own waits.

BENCH_REPO=${BENCH_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BENCH_SERVICES="$BENCH_REPO/deploy/local/services"
BENCH_STOP_TIMEOUT_S=${BENCH_STOP_TIMEOUT_S:-20}
BENCH_ANVIL_START_TIMEOUT_S=${BENCH_ANVIL_START_TIMEOUT_S:-30}
BENCH_HARNESS="$BENCH_REPO/tests/lib"
# The pid list lives in a file so a suite run as a child process and the
# runner's trap share it.
BENCH_PIDS_FILE=${BENCH_PIDS_FILE:-}

bench_say() { printf 'bench: %s\n' "$*" >&2; }
bench_die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

bench_now_ms() { date +%s%3N; }

# A suite's first check: it needs bench/run's services and BENCH_WORK.
bench_need_run() {
  [ -n "${BENCH_WORK:-}" ] || bench_die "run me through bench/run (it starts the services and sets BENCH_WORK)"
}

# bench_require FILE...: every built binary a suite runs, or a clear error.
bench_require() {
  local b
  for b in "$@"; do [ -x "$b" ] || bench_die "$b missing: run make first"; done
}

bench_free_port() {
  python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); from zlharness.procs import free_port; print(free_port())' \
    "$BENCH_HARNESS"
}

# bench_anvil DIR ARGS...: a private anvil (chain id 31337) on a free port,
# with HOME=DIR: anvil spills old states under $HOME/.foundry and leaves them
# when killed (once 70 GB, a full disk), so they stay in the bench folder.
# Waits up to BENCH_ANVIL_START_TIMEOUT_S for an answer. Sets BENCH_ANVIL_PID
# (stopped by bench_cleanup too) and BENCH_ANVIL_URL.
bench_anvil() {
  local dir=$1; shift
  local anvil_bin=${ZL_ANVIL:-$(command -v anvil || true)} port
  [ -x "$anvil_bin" ] || bench_die "anvil not found (ZL_ANVIL)"
  port=$(bench_free_port)
  BENCH_ANVIL_URL=http://127.0.0.1:$port
  HOME="$dir" setsid "$anvil_bin" --host 127.0.0.1 --port "$port" --chain-id 31337 "$@" >"$dir/anvil.log" 2>&1 \
    </dev/null &
  BENCH_ANVIL_PID=$!
  if [ -n "$BENCH_PIDS_FILE" ]; then echo "$BENCH_ANVIL_PID" >> "$BENCH_PIDS_FILE"; fi
  local deadline=$((SECONDS + BENCH_ANVIL_START_TIMEOUT_S))
  until curl -sf -X POST -H 'Content-Type: application/json' \
      -d '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}' "$BENCH_ANVIL_URL" >/dev/null; do
    [ $SECONDS -lt $deadline ] || bench_die "anvil did not answer within ${BENCH_ANVIL_START_TIMEOUT_S}s ($dir/anvil.log)"
    sleep 0.2
  done
}

# Starts (if not running) the named services in the bench folder and exports
# their ZL_* variables into the caller's shell.
bench_services_up() {
  export ZL_LOCAL_DIR=${ZL_LOCAL_DIR:-$BENCH_REPO/.local/bench}
  "$BENCH_SERVICES" up "$@" || bench_die "services up $* failed (logs under $ZL_LOCAL_DIR)"
  eval "$("$BENCH_SERVICES" env)"
}

bench_services_down() {
  [ -n "${ZL_LOCAL_DIR:-}" ] || return 0
  "$BENCH_SERVICES" down || true
}

bench_spawn() {
  local log=$1; shift
  setsid "$@" >"$log" 2>&1 </dev/null &
  BENCH_PID=$!
  if [ -n "$BENCH_PIDS_FILE" ]; then echo "$BENCH_PID" >> "$BENCH_PIDS_FILE"; fi
}

# bench_stop PID [TIMEOUT_S]: SIGTERM, bounded wait, SIGKILL. Sets BENCH_RC
# to the exit code (128+signal when killed).
bench_stop() {
  local pid=$1 timeout_s=${2:-$BENCH_STOP_TIMEOUT_S}
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + timeout_s))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
      # A finished child stays a zombie until waited for: that counts as gone.
      [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
      bench_say "pid $pid ignored SIGTERM for ${timeout_s}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  BENCH_RC=0
  wait "$pid" 2>/dev/null || BENCH_RC=$?
}

# Stops every process bench_spawn started, by pid.
bench_stop_spawned() {
  if [ -n "$BENCH_PIDS_FILE" ] && [ -f "$BENCH_PIDS_FILE" ]; then
    local pid
    while read -r pid; do
      [ -n "$pid" ] || continue
      if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + BENCH_STOP_TIMEOUT_S))
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done < "$BENCH_PIDS_FILE"
    : > "$BENCH_PIDS_FILE"
  fi
}

# Stops every process bench_spawn started, then the services.
bench_cleanup() {
  bench_stop_spawned
  bench_services_down
}

bench_rss() {
  local pid=$1
  awk '/^VmHWM:/{h=$2} /^VmRSS:/{r=$2} END{printf "%d %d\n", h, r}' "/proc/$pid/status" 2>/dev/null || echo "0 0"
}

bench_cpu_s() {
  # Fields 14 and 15 of /proc/PID/stat: utime, stime in clock ticks. The
  # command name (field 2) may hold spaces, so cut after its ")".
  local stat tck
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  tck=$(getconf CLK_TCK)
  echo "${stat##*) }" | awk -v t="$tck" '{printf "%.2f\n", ($12 + $13) / t}'
}

bench_end_offsets() {
  local topic=$1 parts=$2 args=() p
  for ((p = 0; p < parts; p++)); do args+=(-t "$topic:$p:-1"); done
  kcat -b "$ZL_KAFKA_BROKERS" -Q "${args[@]}" 2>/dev/null | awk '{s += $NF} END {print s + 0}'
}

bench_record() {
  local file=$1; shift
  python3 - "$@" >> "$file" <<'EOF'
import json, sys
obj = {}
for arg in sys.argv[1:]:
    k, _, v = arg.partition("=")
    for conv in (int, float):
        try:
            obj[k] = conv(v)
            break
        except ValueError:
            pass
    else:
        obj[k] = {"true": True, "false": False}.get(v, v)
print(json.dumps(obj, sort_keys=True))
EOF
}

bench_psql() {
  "$ZL_PG_BIN/psql" "$ZL_PG_DSN" -X -q -tA -v ON_ERROR_STOP=1 -c "$1"
}

# bench_deposits N TAG KAFKA_FILE CSV_FILE: the tests' events
# (zlharness.stage.new_deposit): random tx hashes, as on a chain (ids that
# share a long prefix would make every id comparison slower than real ones),
# ending in TAG (hex, <= 16 digits) so a trial's rows can be found afterwards
# with LIKE '%TAG'.
bench_deposits() {
  python3 - "$BENCH_HARNESS" "$@" <<'EOF'
import csv, json, sys
sys.path.insert(0, sys.argv.pop(1))
from zlharness.stage import new_deposit, new_tx_hash
n, tag, kafka_file, csv_file = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
assert len(tag) <= 16 and all(c in "0123456789abcdef" for c in tag)
with open(kafka_file, "w") as kf, open(csv_file, "w", newline="") as cf:
    w = csv.writer(cf)
    for i in range(n):
        d = new_deposit(tx=new_tx_hash(tag))
        tx = d["tx_hash"]
        kf.write(d["deposit_id"] + "\t" + json.dumps(d) + "\n")
        w.writerow([d["deposit_id"], d["chain_id"], tx, 0, d["block_number"], d["block_hash"], d["token"],
                    d["from"], d["to"], d["user_id"], d["amount"], d["occurred_at"]])
EOF
}

# bench_load_deposits CSV_FILE: the state rows, as the detector would have
# written them, in one COPY.
bench_load_deposits() {
  "$ZL_PG_BIN/psql" "$ZL_PG_DSN" -X -q -v ON_ERROR_STOP=1 -c "\\copy deposits (deposit_id, chain_id, tx_hash, log_index, block_number, block_hash, token, from_addr, to_addr, user_id, amount, occurred_at) FROM '$1' WITH (FORMAT csv)"
}

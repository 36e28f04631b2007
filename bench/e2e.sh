#!/usr/bin/env bash
# bench/e2e.sh: the whole pipeline end to end (issue 10 parts 3-5): sustained
# deposits/s, latency at fixed rates, scaling with copies per stage, RSS per
# worker, recovery after SIGKILL. The trials are in bench/e2e_run.py (its
# docstring says exactly what each figure is), the tables in
# bench/e2e_report.py, the PNGs in bench/plot.py.
#
# bench-needs: postgres kafka ipfs
#
# The chain is a private anvil (automine) started by e2e_run.py on its own
# port and stopped by pid (also listed in BENCH_PIDS_FILE for the runner's
# trap). Everything else is this run's services.
#
# Knobs (environment):
#   BENCH_E2E_RATES ("10 100 500")  offered deposits/s of the latency trials
#   BENCH_E2E_RATE_S (20)           seconds of load per rate
#   BENCH_E2E_DRAIN_S (60)          wait for the rest to be credited
#   BENCH_E2E_N (2000)              deposits of each saturation trial
#   BENCH_E2E_COPIES ("1 2 4")      copies per stage (detect stays 1)
#   BENCH_E2E_SAT_TIMEOUT_S (150)   bound of one saturation trial
#   BENCH_E2E_N_SINGLE (300)        deposits of the extra ZL_MINT_BATCH_MAX=1
#                                   trial (one copy), run when mint has it
#   BENCH_E2E_RATE_DEPOSITS_MAX (5000)  caps rate x seconds (500/s: 10 s)
#   BENCH_E2E_PARTITIONS (8), BENCH_E2E_SENDERS (100),
#   BENCH_E2E_RECOVERY (1), BENCH_E2E_RECOVERY_RATE (20),
#   BENCH_E2E_DETECT_POLL_MS (100)
# A quick check: BENCH_E2E_RATES=10 BENCH_E2E_RATE_S=5 BENCH_E2E_COPIES=1
#   BENCH_E2E_N=300 BENCH_E2E_RECOVERY=0 bench/run e2e
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/bench/lib.sh"
bench_need_run
: "${ZL_PG_DSN:?}" "${ZL_KAFKA_BROKERS:?}" "${ZL_IPFS_API_URL:?}" "${ZL_ANVIL:?}"
trap bench_stop_spawned EXIT

python3 "$repo/bench/e2e_run.py"

cmd="bench/run e2e"
knobs=$(env | grep '^BENCH_E2E_' | sort | tr '\n' ' ' || true)
python3 "$repo/bench/e2e_report.py" "$BENCH_WORK/e2e.raw.json" "$BENCH_WORK/e2e.json" "$BENCH_WORK/e2e.md" \
  "${knobs}${cmd}"

# Plots next to the results. matplotlib lives in a venv of its own.
venv=${BENCH_PLOT_VENV:-$HOME/.cache/zeroloss/plot-venv}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
  bench_say "e2e: installing matplotlib into $venv"
  { python3 -m venv "$venv" && "$venv/bin/pip" install -q matplotlib; } >"$BENCH_WORK/e2e/plot-install.log" 2>&1 || true
fi
prefix="$repo/bench/results/$(date -u +%F)-e2e"
mkdir -p "$repo/bench/results"
if pngs=$("$venv/bin/python" "$repo/bench/plot.py" "$BENCH_WORK/e2e.json" "$prefix" 2>"$BENCH_WORK/e2e/plot.log"); then
  { echo; echo "Plots: $(echo "$pngs" | sed "s|$repo/||" | tr '\n' ' ')"; echo; } >> "$BENCH_WORK/e2e.md"
else
  bench_say "e2e: plots failed: $(tail -n 3 "$BENCH_WORK/e2e/plot.log" | tr '\n' ' ')"
  { echo; echo "Plots: not made ($(tail -n 1 "$BENCH_WORK/e2e/plot.log"))"; echo; } >> "$BENCH_WORK/e2e.md"
fi
cat "$BENCH_WORK/e2e.md" >&2

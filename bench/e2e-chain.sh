#!/usr/bin/env bash
# bench/e2e-chain.sh: the whole pipeline on a real-timed chain (issue 19):
# anvil mining a block every second with a BSC-sized gas limit, deposits
# final two blocks on top; block->credited latency at 10/100/300 deposits/s,
# the highest rate sustained beside what the chain itself mines in the same
# run, and SIGKILL -> consumed again per stage with the default (static)
# membership. The trials and the tables are in bench/e2e_chain.py (its
# docstring says exactly what each figure is); the machinery is
# bench/e2e_run.py's.
#
# bench-needs: postgres kafka ipfs
#
# Knobs (environment): BENCH_CHAIN_RATES ("10 100 300"), BENCH_CHAIN_RATE_S
# (30), BENCH_CHAIN_DRAIN_S (90), BENCH_CHAIN_REF_N (10000),
# BENCH_CHAIN_BLOCK_S (1), BENCH_CHAIN_GAS_LIMIT (140000000),
# BENCH_CHAIN_CONFIRMATIONS (2), BENCH_CHAIN_RECOVERY (1); and e2e's
# BENCH_E2E_PARTITIONS, BENCH_E2E_SENDERS, BENCH_E2E_RECOVERY_RATE,
# BENCH_E2E_DETECT_POLL_MS.
# A quick check: BENCH_CHAIN_RATES=10 BENCH_CHAIN_RATE_S=5 BENCH_CHAIN_REF_N=500
#   BENCH_CHAIN_RECOVERY=0 bench/run e2e-chain
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/bench/lib.sh"
bench_need_run
: "${ZL_PG_DSN:?}" "${ZL_KAFKA_BROKERS:?}" "${ZL_IPFS_API_URL:?}" "${ZL_ANVIL:?}"
trap bench_stop_spawned EXIT

python3 "$repo/bench/e2e_chain.py"
cat "$BENCH_WORK/e2e-chain.md" >&2

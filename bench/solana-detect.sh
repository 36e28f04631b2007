#!/usr/bin/env bash
# bench/solana-detect.sh: detect on Solana, by signatures per account (what
# zeroloss does) beside a reader of finalized blocks (the reference), on one
# history of the local validator (bench/solana_detect.py). Needs
# solana-test-validator (deploy/local/deps solana; make test builds it): not
# measured without it.
# Run through bench/run (bench/run solana-detect).
# bench-needs: postgres kafka solana
#
# Knobs: BENCH_SOL_ACCOUNTS (100 registered accounts), BENCH_SOL_TRANSFERS
# (500 transfers into them, and as many beside them), BENCH_ROUNDS (3).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_need_run
: "${ZL_SOLANA_RPC_URLS:?}"
build=${ZL_BUILD_DIR:-$BENCH_REPO/build/release}
bench_require "$build/bin/detect"
bench_require "$build/tests/zl-sol-tx"
ZL_BIN_DIR="$build/bin" python3 "$BENCH_REPO/bench/solana_detect.py" "${BENCH_SOL_ACCOUNTS:-100}" "${BENCH_SOL_TRANSFERS:-500}" \
  "${BENCH_ROUNDS:-3}" "$BENCH_WORK"

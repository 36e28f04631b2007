#!/usr/bin/env bash
# bench/ipfs-pin.sh: pins per second (bench/ipfs_pin.py). Two parts, each
# figure beside its reference from the same run, rounds interleaved:
#  - into Kubo by documents per add request; reference: one per request
#    (the stage before it pinned a poll batch with one add);
#  - the stage's own client (common/ipfs_par.c through tests/zl-ipfs-pin)
#    with ZL_IPFS_*_CONCURRENCY_MAX bounds of 8 against a stand-in pinning
#    service that holds each pin BENCH_IPFS_PIN_DELAY_MS, and against Kubo
#    with every document read back through its gateway; reference: bounds
#    of 1 (one request after another, the stage before issue 19).
# Run through bench/run (bench/run ipfs-pin).
# bench-needs: ipfs
#
# Knobs: BENCH_IPFS_PIN_N (500 documents per trial), BENCH_ROUNDS (3),
# BENCH_IPFS_PIN_DELAY_MS (50), BENCH_IPFS_PIN_CONCURRENCY (8).
# A quick check: BENCH_IPFS_PIN_N=200 BENCH_ROUNDS=1 bench/run ipfs-pin
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_need_run
: "${ZL_IPFS_API_URL:?}"
build=${ZL_BUILD_DIR:-$BENCH_REPO/build/release}
bench_require "$build/tests/zl-ipfs-pin"
ZL_IPFS_PIN_BIN="$build/tests/zl-ipfs-pin" \
  python3 "$BENCH_REPO/bench/ipfs_pin.py" "${BENCH_IPFS_PIN_N:-500}" "${BENCH_ROUNDS:-3}" "$BENCH_WORK"

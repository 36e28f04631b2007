#!/usr/bin/env bash
# bench/ipfs-pin.sh: pins per second into Kubo by documents per add request
# (bench/ipfs_pin.py), the reference beside the ipfs-upload stage's batched
# pinning. Run through bench/run (bench/run ipfs-pin).
# bench-needs: ipfs
#
# Knobs: BENCH_IPFS_PIN_N (500 documents per trial), BENCH_ROUNDS (3).
# A quick check: BENCH_IPFS_PIN_N=200 BENCH_ROUNDS=1 bench/run ipfs-pin
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_need_run
: "${ZL_IPFS_API_URL:?}"
python3 "$BENCH_REPO/bench/ipfs_pin.py" "${BENCH_IPFS_PIN_N:-500}" "${BENCH_ROUNDS:-3}" "$BENCH_WORK"

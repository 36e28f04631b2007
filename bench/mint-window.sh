#!/usr/bin/env bash
# bench-needs: postgres kafka
#
# Mints per second of one mint copy with one signer against its in-flight
# window (issue 19), on anvil with 1 s blocks: bench/mint.sh in window mode
# (read it for what is measured, the reference and the knobs:
# BENCH_MINT_WINDOWS, BENCH_MINT_WINDOW_BATCH, BENCH_MINT_N, BENCH_ROUNDS).
# A quick check: BENCH_MINT_N=300 BENCH_ROUNDS=1 bench/run mint-window
set -euo pipefail
BENCH_MINT_MODE=window BENCH_MINT_SUITE=mint-window exec bash "$(dirname "$0")/mint.sh"

#!/usr/bin/env bash
# bench/detect-addresses.sh: detect with 1,000,000 registered addresses
# (issue 18): its peak RSS and the Transfers it scans per second, now that
# it reads every Transfer of the token and keeps those to an address in its
# in-memory set instead of sending the addresses to the node.
#
# bench-needs: postgres kafka
#
# bench/detect.sh with BENCH_DETECT_REGISTERED=1000000 (the paid addresses
# registered last), BENCH_DETECT_OTHERS=20000 transfers to unregistered
# addresses beside the 20,000 to ours (read and dropped, as a busy token's
# other traffic would be), and no ethereumetl rounds (its figure does not
# depend on our addresses; bench/detect.sh has it). Every knob of
# bench/detect.sh still applies; these are only the defaults.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export BENCH_DETECT_SUITE=detect-addresses
export BENCH_DETECT_REGISTERED=${BENCH_DETECT_REGISTERED:-1000000}
export BENCH_DETECT_OTHERS=${BENCH_DETECT_OTHERS:-20000}
export BENCH_DETECT_ETL=${BENCH_DETECT_ETL:-0}
exec "$repo/bench/detect.sh"

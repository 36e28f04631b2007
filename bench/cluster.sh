#!/usr/bin/env bash
# bench/cluster.sh: the whole pipeline on one Kafka broker, on a three-broker
# cluster, and on that cluster with one broker down (issue 23). The trials
# and their figures are in bench/cluster.py's docstring.
#
# bench-needs:
#
# Each trial starts its own services (deploy/local/services, ZL_KAFKA_NODES
# 1 or 3) in a folder under $BENCH_WORK and stops them by pid, so this suite
# needs none of bench/run's. About 2 to 3 minutes a trial.
# Knobs: BENCH_CLUSTER_RATE (50), BENCH_CLUSTER_SECONDS (30),
#   BENCH_CLUSTER_DRAIN_S (240), BENCH_CLUSTER_TRIALS ("1 3 3-down").
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/bench/lib.sh"
bench_need_run
bench_require "$ZL_BUILD_DIR/bin/detect" "$ZL_BUILD_DIR/bin/credit"
ZL_BIN_DIR="$ZL_BUILD_DIR/bin" python3 "$repo/bench/cluster.py"

#!/usr/bin/env bash
# bench-needs: postgres kafka
#
# Mint with a pool of signers (issue 19): mints per second of ONE mint copy
# leasing one key beside TWO copies leasing two keys (one each, through
# signer_leases), on anvil with 1 s blocks (--block-time 1) and a BSC-sized
# block gas limit (140M), batched (ZL_MINT_BATCH_MAX=50). The reference is
# the one-copy figure of the same round; the target is two copies >= 1.7x.
#   mints/s  N / (N events produced -> N rows minted), wall time; the
#            copies start first and the events are produced once every copy
#            is ready (its key leased) and the group has settled.
# The copies are one group on one set of topics, as deployed, each given the
# whole pool (the leases decide the keys): see mint_signers.py.
# Checks: every row minted, each copy leased a different key, every mined
# tx's sender on the chain is the signer its row names.
# Rounds interleave (1 copy, 2 copies, ...); the summary takes medians.
# Knobs: BENCH_MINT_SIGNERS_N (1500), BENCH_ROUNDS (2), BENCH_PARTITIONS (6),
# BENCH_TRIAL_TIMEOUT_S (300). Run: bench/run mint-signers
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_need_run

build=${ZL_BUILD_DIR:-$BENCH_REPO/build/release}
bench_require "$build/bin/mint" "$build/bin/zl-migrate" "$build/bin/zl-topics"
export ZL_BIN_DIR=$build/bin   # the harness (zlharness) finds zl-topics there
work=$BENCH_WORK/mint-signers
mkdir -p "$work"
anvil_pid=
cleanup() {
  bench_stop_spawned
  if [ -n "$anvil_pid" ]; then bench_stop "$anvil_pid" 5; fi
}
trap cleanup EXIT

bench_anvil "$work" --accounts 2 --block-time 1 --gas-limit 140000000
anvil_pid=$BENCH_ANVIL_PID
key0=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
echo "$key0" > "$work/deployer.key"
chmod 600 "$work/deployer.key"
nft=$("$BENCH_REPO/deploy/contracts/deploy.sh" "$BENCH_ANVIL_URL" "$work/deployer.key" \
  | sed -n 's/^ZL_NFT_ADDRESS=//p' | tr 'A-F' 'a-f')
[ -n "$nft" ] || bench_die "contract deploy failed"
ZL_SCHEMA_DIR="$BENCH_REPO/schemas/sql" "$build/bin/zl-migrate" >"$work/migrate.log" 2>&1 \
  || { cat "$work/migrate.log" >&2; bench_die "zl-migrate failed"; }

PYTHONPATH="$BENCH_HARNESS" python3 "$BENCH_REPO/bench/mint_signers.py" --rpc "$BENCH_ANVIL_URL" --nft "$nft" \
  --deployer-key "$key0" --work "$work" --build "$build" --out "$BENCH_WORK/mint-signers.json" \
  --n "${BENCH_MINT_SIGNERS_N:-1500}" --rounds "${BENCH_ROUNDS:-2}" --partitions "${BENCH_PARTITIONS:-6}" \
  --timeout-s "${BENCH_TRIAL_TIMEOUT_S:-300}"

#!/usr/bin/env bash
# Deploys ZLTestToken and ZLReceipt from the committed artifacts with cast.
#
# Usage: deploy/contracts/deploy.sh RPC_URL PRIVATE_KEY_FILE
#
# PRIVATE_KEY_FILE holds one hex private key (0x optional, surrounding
# whitespace ignored). The key is never printed. It does reach cast as
# --private-key on its command line (cast reads no key from the environment or
# a file), so deploy only from a machine whose other users you trust, or
# use a throwaway deployer key.
#
# The deployer becomes the token's owner and the receipt's admin and minter.
# Stdout carries exactly two lines, ready for eval or an env file:
#   ZL_TOKEN_ADDRESS=0x...
#   ZL_NFT_ADDRESS=0x...
# Progress and errors go to stderr.
#
# Environment: ZL_CAST (cast binary; default: cast on PATH, else the pinned one
# under ZL_NPM_DIR), ZL_NFT_NAME / ZL_NFT_SYMBOL (receipt collection name and
# symbol), ZL_DEPLOY_TIMEOUT_S (receipt wait per transaction, default 120).
set -euo pipefail

say() { printf 'deploy: %s\n' "$*" >&2; }
die() { printf 'deploy: error: %s\n' "$*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: $0 RPC_URL PRIVATE_KEY_FILE"
rpc=$1 keyfile=$2

here=$(cd "$(dirname "$0")" && pwd)
artifacts="$here/artifacts"
nft_name=${ZL_NFT_NAME:-Zeroloss Deposit Receipt}
nft_symbol=${ZL_NFT_SYMBOL:-ZLR}
timeout_s=${ZL_DEPLOY_TIMEOUT_S:-120}

cast=${ZL_CAST:-}
if [ -z "$cast" ]; then
  cast=$(command -v cast || true)
  [ -n "$cast" ] || cast="${ZL_NPM_DIR:-$HOME/.cache/zeroloss/npm}/node_modules/@foundry-rs/cast-linux-amd64/bin/cast"
fi
[ -x "$cast" ] || die "cast not found at '$cast' (set ZL_CAST or run deploy/local/deps)"

[ -r "$keyfile" ] || die "cannot read private key file '$keyfile'"
key=$(tr -d ' \t\r\n' < "$keyfile")
[[ $key =~ ^(0x)?[0-9a-fA-F]{64}$ ]] || die "'$keyfile' does not hold a 32-byte hex private key"
[[ $key == 0x* ]] || key="0x$key"

deployer=$("$cast" wallet address --private-key "$key") || die "cannot derive the deployer address"
say "deployer $deployer on $rpc"

bytecode() {
  local f="$artifacts/$1.json"
  [ -f "$f" ] || die "missing artifact $f (run: node deploy/contracts/build.js)"
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytecode"])' "$f"
}

# create CODE: sends a contract-creation transaction, waits for its receipt,
# checks it succeeded, prints the new contract's address.
create() {
  local out addr
  out=$("$cast" send --rpc-url "$rpc" --private-key "$key" --timeout "$timeout_s" \
        --json --create "$1") || die "contract creation failed"
  addr=$(python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
if int(str(r.get("status", "0x0")), 0) != 1:
    sys.exit("transaction %s reverted" % r.get("transactionHash"))
a = r.get("contractAddress")
if not a:
    sys.exit("receipt has no contractAddress")
print(a)' <<<"$out") || die "contract creation did not succeed"
  printf '%s\n' "$addr"
}

token_code=$(bytecode ZLTestToken)
token=$(create "$token_code")
say "ZLTestToken at $token"

receipt_code=$(bytecode ZLReceipt)
ctor_args=$("$cast" abi-encode "constructor(string,string,address)" "$nft_name" "$nft_symbol" "$deployer")
nft=$(create "${receipt_code}${ctor_args#0x}")
say "ZLReceipt at $nft (admin and minter: $deployer)"

printf 'ZL_TOKEN_ADDRESS=%s\n' "$token"
printf 'ZL_NFT_ADDRESS=%s\n' "$nft"

"""Integration tests for deploy/contracts: the build, deploy.sh, ZLTestToken and
ZLReceipt, against the local anvil chain.

The runner exports the variables printed by `deploy/local/services env`
(ZL_RPC_URLS, ZL_CAST, ZL_NPM_DIR) and has anvil running. Contracts are deployed
fresh once per module through deploy.sh itself, and every test uses its own
token ids, so the tests do not depend on each other's order.
"""

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = REPO / "deploy" / "contracts"

# anvil's default dev accounts (mnemonic "test test ... junk"), funded by
# deploy/local/services. Public test keys, worthless outside a dev chain.
KEY_DEPLOYER = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # account 0
KEY_USER1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # account 1
KEY_STRANGER = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"  # account 2
ADDR_USER1 = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
ADDR_STRANGER = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc"
ADDR_USER3 = "0x90f79bf6eb2c4f870365e785982e1f161e6e1a1b"
ADDR_USER4 = "0x15d34aaf54267db7d7c367839aaf71a00a2c6a65"

ZERO_TOPIC = "0x" + "00" * 32
TIMEOUT_S = 60


def _env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run under `eval \"$(deploy/local/services env)\"` with anvil up")
    return value


def _run(args, timeout=TIMEOUT_S, check=True, **kw):
    proc = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kw
    )
    if check and proc.returncode != 0:
        pytest.fail(f"{args[0]} {args[1]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


class Chain:
    """Thin wrapper over cast for one RPC endpoint."""

    def __init__(self, cast, rpc):
        self.cast = cast
        self.rpc = rpc

    def keccak(self, text):
        return _run([self.cast, "keccak", text]).stdout.strip()

    def selector(self, signature):
        return _run([self.cast, "sig", signature]).stdout.strip()

    def token_id(self, deposit_id):
        # The pipeline's id scheme: uint256(keccak256(deposit_id)), as a decimal string.
        return str(int(self.keccak(deposit_id), 16))

    def call(self, to, sig, *args):
        out = _run([self.cast, "call", "--json", "--rpc-url", self.rpc, to, sig, *args]).stdout
        return json.loads(out)[0]

    def send(self, key, to, sig, *args, check=True):
        """Sends a transaction and returns its receipt (dict). With check=False
        returns the CompletedProcess instead, for expected failures."""
        proc = _run(
            [self.cast, "send", "--json", "--rpc-url", self.rpc, "--private-key", key, to, sig, *args],
            check=check,
        )
        if not check:
            return proc
        receipt = json.loads(proc.stdout)
        assert int(receipt["status"], 0) == 1, f"{sig} reverted: {receipt}"
        return receipt

    def receipt(self, tx_hash):
        return json.loads(_run([self.cast, "receipt", "--json", "--rpc-url", self.rpc, tx_hash]).stdout)


def _topic_address(topic):
    return "0x" + topic[-40:].lower()


@pytest.fixture(scope="module")
def chain():
    rpc = _env("ZL_RPC_URLS").split(",")[0].strip()
    cast = _env("ZL_CAST")
    return Chain(cast, rpc)


@pytest.fixture(scope="module")
def deployed(chain, tmp_path_factory):
    """Fresh ZLTestToken + ZLReceipt for this module, deployed by deploy.sh."""
    keyfile = tmp_path_factory.mktemp("deployer") / "key"
    fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(KEY_DEPLOYER + "\n")
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600

    proc = _run(
        [CONTRACTS / "deploy.sh", chain.rpc, keyfile],
        timeout=180,
        env={**os.environ, "ZL_CAST": chain.cast},
    )
    key_hex = KEY_DEPLOYER[2:]
    assert key_hex not in proc.stdout and key_hex not in proc.stderr, "deploy.sh printed the private key"

    lines = proc.stdout.strip().splitlines()
    values = dict(line.split("=", 1) for line in lines)
    assert sorted(values) == ["ZL_NFT_ADDRESS", "ZL_TOKEN_ADDRESS"], f"unexpected stdout: {proc.stdout!r}"
    for addr in values.values():
        assert addr.startswith("0x") and len(addr) == 42, addr
    return {"token": values["ZL_TOKEN_ADDRESS"], "nft": values["ZL_NFT_ADDRESS"]}


# ---------------------------------------------------------------- build


def test_artifacts_up_to_date_with_sources():
    """Guards against committed artifacts (what deploy.sh and the pipeline load)
    drifting from the Solidity sources: someone edits src/*.sol or bumps a
    compiler setting but forgets to rerun build.js, so the chain gets code that
    nobody reviewed."""
    node = shutil.which("node")
    assert node, "node is not on PATH"
    proc = _run([node, CONTRACTS / "build.js", "--check"], timeout=300, check=False, cwd=REPO)
    assert proc.returncode == 0, f"build.js --check failed:\n{proc.stdout}\n{proc.stderr}"


# ---------------------------------------------------------------- token


def test_token_decimals_mint_and_transfer(chain, deployed):
    """Guards against a test token that does not behave like BSC USDT: wrong
    decimals (amounts off by 10^12), an owner mint that does not credit the
    recipient, or transfers that do not emit the standard Transfer event the
    deposit watcher relies on."""
    token = deployed["token"]
    assert int(chain.call(token, "decimals()(uint8)")) == 18
    assert chain.call(token, "symbol()(string)") == "USDT"

    transfer_topic = chain.keccak("Transfer(address,address,uint256)")
    amount = 250 * 10**18

    r = chain.send(KEY_DEPLOYER, token, "mint(address,uint256)", ADDR_USER1, str(amount))
    mints = [log for log in r["logs"] if log["topics"][0] == transfer_topic]
    assert len(mints) == 1
    assert mints[0]["topics"][1] == ZERO_TOPIC
    assert _topic_address(mints[0]["topics"][2]) == ADDR_USER1

    before = int(chain.call(token, "balanceOf(address)(uint256)", ADDR_USER3))
    r = chain.send(KEY_USER1, token, "transfer(address,uint256)", ADDR_USER3, str(10**18))
    receipt = chain.receipt(r["transactionHash"])
    transfers = [log for log in receipt["logs"] if log["topics"][0] == transfer_topic]
    assert len(transfers) == 1
    log = transfers[0]
    assert log["address"].lower() == token.lower()
    assert _topic_address(log["topics"][1]) == ADDR_USER1
    assert _topic_address(log["topics"][2]) == ADDR_USER3
    assert int(log["data"], 16) == 10**18
    assert int(chain.call(token, "balanceOf(address)(uint256)", ADDR_USER3)) == before + 10**18


def test_token_mint_is_owner_only(chain, deployed):
    """Guards against the faucet being open to anyone: a non-owner mint must
    revert (OwnableUnauthorizedAccount)."""
    proc = chain.send(KEY_STRANGER, deployed["token"], "mint(address,uint256)", ADDR_STRANGER, "1", check=False)
    assert proc.returncode != 0
    assert chain.selector("OwnableUnauthorizedAccount(address)")[2:] in proc.stderr


# ---------------------------------------------------------------- receipt


def test_receipt_mint_owner_and_uri(chain, deployed):
    """Guards against a mint that does not record the recipient or the metadata
    uri, or that does not emit ReceiptMinted (the event the pipeline confirms
    a receipt from)."""
    nft = deployed["nft"]
    tid = chain.token_id("deposit:single-1")
    uri = "ipfs://bafysingle1/metadata.json"
    assert chain.call(nft, "exists(uint256)(bool)", tid) is False

    r = chain.send(KEY_DEPLOYER, nft, "mint(address,uint256,string)", ADDR_USER1, tid, uri)

    assert chain.call(nft, "ownerOf(uint256)(address)", tid).lower() == ADDR_USER1
    assert chain.call(nft, "tokenURI(uint256)(string)", tid) == uri
    assert chain.call(nft, "exists(uint256)(bool)", tid) is True
    minted_topic = chain.keccak("ReceiptMinted(uint256,address,string)")
    minted = [log for log in r["logs"] if log["topics"][0] == minted_topic]
    assert len(minted) == 1
    assert int(minted[0]["topics"][1], 16) == int(tid)
    assert _topic_address(minted[0]["topics"][2]) == ADDR_USER1


def test_receipt_second_mint_of_same_id_reverts(chain, deployed):
    """Guards against double-minting one deposit: a retried mint of the same
    token id (= keccak256(deposit_id)) must revert on chain
    (ERC721InvalidSender(address(0))) and leave the first owner in place."""
    nft = deployed["nft"]
    tid = chain.token_id("deposit:dup-1")
    chain.send(KEY_DEPLOYER, nft, "mint(address,uint256,string)", ADDR_USER1, tid, "ipfs://first")

    proc = chain.send(
        KEY_DEPLOYER, nft, "mint(address,uint256,string)", ADDR_USER3, tid, "ipfs://second", check=False
    )
    assert proc.returncode != 0, "second mint of the same id succeeded"
    assert chain.selector("ERC721InvalidSender(address)")[2:] in proc.stderr, proc.stderr
    assert chain.call(nft, "ownerOf(uint256)(address)", tid).lower() == ADDR_USER1
    assert chain.call(nft, "tokenURI(uint256)(string)", tid) == "ipfs://first"


def test_receipt_mint_by_non_minter_reverts(chain, deployed):
    """Guards against anyone minting receipts: an account without MINTER_ROLE
    must get AccessControlUnauthorizedAccount and no token may appear."""
    nft = deployed["nft"]
    tid = chain.token_id("deposit:stranger-1")
    proc = chain.send(
        KEY_STRANGER, nft, "mint(address,uint256,string)", ADDR_STRANGER, tid, "ipfs://x", check=False
    )
    assert proc.returncode != 0, "non-minter could mint"
    assert chain.selector("AccessControlUnauthorizedAccount(address,bytes32)")[2:] in proc.stderr, proc.stderr
    assert chain.call(nft, "exists(uint256)(bool)", tid) is False

    proc = chain.send(
        KEY_STRANGER, nft, "mintBatch(address[],uint256[],string[])",
        f"[{ADDR_STRANGER}]", f"[{tid}]", '["ipfs://x"]', check=False,
    )
    assert proc.returncode != 0, "non-minter could mintBatch"
    assert chain.call(nft, "exists(uint256)(bool)", tid) is False


def test_receipt_nonexistent_token_uri_reverts(chain, deployed):
    """Guards against tokenURI answering (with an empty string) for receipts
    that were never minted, which would let a reader mistake a missing
    receipt for one without metadata."""
    proc = _run(
        [chain.cast, "call", "--rpc-url", chain.rpc, deployed["nft"], "tokenURI(uint256)(string)",
         chain.token_id("deposit:never-minted")],
        check=False,
    )
    assert proc.returncode != 0
    assert chain.selector("ERC721NonexistentToken(uint256)")[2:] in proc.stderr, proc.stderr


def test_receipt_mint_batch_skips_existing_ids(chain, deployed):
    """Guards against a retried batch either reverting as a whole because one
    receipt already exists (stalling every other deposit in it) or overwriting
    the existing receipt: new ids are minted to their recipients, the existing
    one keeps its owner and uri, and exactly the minted ids get ReceiptMinted."""
    nft = deployed["nft"]
    existing = chain.token_id("deposit:batch-existing")
    new_a = chain.token_id("deposit:batch-new-a")
    new_b = chain.token_id("deposit:batch-new-b")
    chain.send(KEY_DEPLOYER, nft, "mint(address,uint256,string)", ADDR_USER1, existing, "ipfs://existing")

    r = chain.send(
        KEY_DEPLOYER, nft, "mintBatch(address[],uint256[],string[])",
        f"[{ADDR_USER3},{ADDR_STRANGER},{ADDR_USER4}]",
        f"[{new_a},{existing},{new_b}]",
        '["ipfs://new-a","ipfs://clobber","ipfs://new-b"]',
    )

    assert chain.call(nft, "ownerOf(uint256)(address)", new_a).lower() == ADDR_USER3
    assert chain.call(nft, "ownerOf(uint256)(address)", new_b).lower() == ADDR_USER4
    assert chain.call(nft, "ownerOf(uint256)(address)", existing).lower() == ADDR_USER1
    assert chain.call(nft, "tokenURI(uint256)(string)", new_a) == "ipfs://new-a"
    assert chain.call(nft, "tokenURI(uint256)(string)", new_b) == "ipfs://new-b"
    assert chain.call(nft, "tokenURI(uint256)(string)", existing) == "ipfs://existing"

    receipt = chain.receipt(r["transactionHash"])
    minted_topic = chain.keccak("ReceiptMinted(uint256,address,string)")
    skipped_topic = chain.keccak("ReceiptSkipped(uint256)")
    ours = [log for log in receipt["logs"] if log["address"].lower() == nft.lower()]
    minted = [log for log in ours if log["topics"][0] == minted_topic]
    skipped = [log for log in ours if log["topics"][0] == skipped_topic]
    assert len(minted) == 2, minted
    assert sorted(int(log["topics"][1], 16) for log in minted) == sorted([int(new_a), int(new_b)])
    assert [int(log["topics"][1], 16) for log in skipped] == [int(existing)]


def test_receipt_mint_batch_length_mismatch_reverts(chain, deployed):
    """Guards against mintBatch silently pairing recipients, ids and uris
    wrongly (or reading past an array) when the caller passes arrays of
    different lengths: it must revert with ReceiptBatchLengthMismatch and
    mint nothing."""
    nft = deployed["nft"]
    a = chain.token_id("deposit:mismatch-a")
    b = chain.token_id("deposit:mismatch-b")
    cases = [
        (f"[{ADDR_USER1}]", f"[{a},{b}]", '["ipfs://a","ipfs://b"]'),
        (f"[{ADDR_USER1},{ADDR_USER3}]", f"[{a},{b}]", '["ipfs://a"]'),
    ]
    selector = chain.selector("ReceiptBatchLengthMismatch(uint256,uint256,uint256)")[2:]
    for to, ids, uris in cases:
        proc = chain.send(KEY_DEPLOYER, nft, "mintBatch(address[],uint256[],string[])", to, ids, uris, check=False)
        assert proc.returncode != 0, f"mismatched lengths accepted: {to} {ids} {uris}"
        assert selector in proc.stderr, proc.stderr
    assert chain.call(nft, "exists(uint256)(bool)", a) is False
    assert chain.call(nft, "exists(uint256)(bool)", b) is False


def test_receipt_supports_erc721_and_access_control(chain, deployed):
    """Guards against a supportsInterface override that drops one base's
    interfaces, which makes wallets and marketplaces treat the receipt as a
    non-NFT."""
    nft = deployed["nft"]
    for iface in ("0x80ac58cd", "0x5b5e139f", "0x7965db0b", "0x01ffc9a7"):  # ERC721, Metadata, AccessControl, ERC165
        assert chain.call(nft, "supportsInterface(bytes4)(bool)", iface) is True, iface
    assert chain.call(nft, "supportsInterface(bytes4)(bool)", "0xffffffff") is False

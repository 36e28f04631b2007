"""Helpers for the mint stage's integration tests: a private anvil (so a test
may switch automine off or own every nonce), the contracts deployed on it, a
fresh signer per test, pinned deposits, and a mint pipeline's workers.
"""
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import REPO, need_env
from runtime_helpers import Pipeline, insert_rows, kcat, new_deposit, psql

ANVIL_KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
B32 = "abcdefghijklmnopqrstuvwxyz234567"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cast(*args: str, timeout: float = 60) -> str:
    out = subprocess.run([need_env("ZL_CAST"), *args], capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"cast {args[0]} failed: {out.stderr.strip()}")
    return out.stdout.strip()


class Anvil:
    """An anvil of our own on a free port, stopped by pid."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(workdir / "anvil.log", "ab")
        self.proc = subprocess.Popen([need_env("ZL_ANVIL"), "--port", str(self.port), "--chain-id", "31337"],
                                     stdout=self.log, stderr=self.log, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                cast("block-number", "--rpc-url", self.url, timeout=5)
                return
            except Exception:
                time.sleep(0.2)
        raise AssertionError("private anvil did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.log.close()

    def rpc(self, method: str, *params: str) -> str:
        return cast("rpc", "--rpc-url", self.url, method, *params)

    def deploy(self, workdir: Path) -> str:
        keyfile = workdir / "deployer.key"
        keyfile.write_text(ANVIL_KEY0 + "\n")
        keyfile.chmod(0o600)
        out = subprocess.run([str(REPO / "deploy" / "contracts" / "deploy.sh"), self.url, str(keyfile)],
                             capture_output=True, text=True, timeout=120, env=dict(os.environ))
        assert out.returncode == 0, out.stderr
        return dict(line.split("=", 1) for line in out.stdout.split())["ZL_NFT_ADDRESS"]

    def new_signer(self, workdir: Path, nft: str, minter: bool = True) -> tuple[str, str, Path]:
        """A fresh funded key (its own nonces, its own signer_nonces row),
        with MINTER_ROLE unless minter is False. Returns key, address, file."""
        key = "0x" + secrets.token_hex(32)
        addr = cast("wallet", "address", "--private-key", key).lower()
        self.rpc("anvil_setBalance", addr, "0x3635C9ADC5DEA00000")
        if minter:
            role = cast("keccak", "MINTER_ROLE")
            cast("send", "--rpc-url", self.url, "--private-key", ANVIL_KEY0, nft, "grantRole(bytes32,address)", role,
                 addr)
        path = workdir / f"signer-{addr[2:10]}.key"
        path.write_text(key + "\n")
        path.chmod(0o600)
        return key, addr, path

    def nonce(self, addr: str) -> int:
        return int(cast("nonce", "--rpc-url", self.url, addr))

    def owner_of(self, nft: str, token_id: str) -> str:
        try:
            return cast("call", "--rpc-url", self.url, nft, "ownerOf(uint256)(address)", token_id).lower()
        except RuntimeError:
            return ""

    def token_uri(self, nft: str, token_id: str) -> str:
        return json.loads(cast("call", "--rpc-url", self.url, nft, "tokenURI(uint256)(string)", token_id))


def token_id(deposit_id: str) -> str:
    return str(int(cast("keccak", deposit_id), 16))


def pinned_deposit() -> dict:
    d = new_deposit("u-mint")
    d["schema"] = "zl.nft.pinned/v1"
    d["confirmations"] = 12
    d["from"] = "0x" + secrets.token_hex(20)
    cid = "bafkrei" + "".join(random.choice(B32) for _ in range(52))
    d["metadata_cid"] = cid
    d["token_uri"] = "ipfs://" + cid
    return d


def insert_pinned_rows(deposits: list[dict]) -> None:
    """The rows as ipfs-upload leaves them: pinned, with metadata_cid and
    token_uri. One INSERT and one UPDATE however many deposits (ids, CIDs and
    URIs hold no commas, braces, quotes or spaces, so a plain array literal
    carries them)."""
    insert_rows(deposits)
    arr = lambda k: "{" + ",".join(d[k] for d in deposits) + "}"
    psql("UPDATE deposits SET state = 'pinned', confirmations = 12, metadata_cid = m.cid, token_uri = m.uri"
         " FROM unnest(:'v1'::text[], :'v2'::text[], :'v3'::text[]) AS m(id, cid, uri)"
         " WHERE deposits.deposit_id = m.id", arr("deposit_id"), arr("metadata_cid"), arr("token_uri"))


def rpc_batch(url: str, calls: list[tuple[str, list]], chunk: int = 200) -> list:
    """JSON-RPC batches (chunk calls per request): results in call order;
    an error object stands for a failed call."""
    out = []
    for at in range(0, len(calls), chunk):
        body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls[at:at + chunk])]
        req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            answers = {a["id"]: a for a in json.loads(r.read())}
        out += [answers[i].get("result", answers[i].get("error")) for i in range(len(body))]
    return out


def owners(url: str, nft: str, token_ids: list[str]) -> list[str]:
    """ownerOf of each token id ("" for a token that does not exist)."""
    calls = [("eth_call", [{"to": nft, "data": "0x6352211e" + format(int(t), "064x")}, "latest"]) for t in token_ids]
    return ["0x" + r[-40:] if isinstance(r, str) else "" for r in rpc_batch(url, calls)]


TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"  # Transfer(address,address,uint256)


def mints_per_token(url: str, nft: str) -> dict[str, int]:
    """How many Transfer(0 -> x, id) logs the contract emitted per token id
    (decimal): 1 for every token minted exactly once."""
    zero = "0x" + "00" * 32
    logs = rpc_batch(url, [("eth_getLogs", [{"address": nft, "fromBlock": "0x0", "toBlock": "latest",
                                             "topics": [TRANSFER_TOPIC, zero]}])])[0]
    counts: dict[str, int] = {}
    for log in logs:
        tid = str(int(log["topics"][3], 16))
        counts[tid] = counts.get(tid, 0) + 1
    return counts


def mint_env(chain, prefix: str, keyfile: Path) -> dict:
    """A mint worker's environment against chain, with short tiers and waits
    so a test's retries happen within seconds."""
    return {
        "PATH": os.environ["PATH"],
        "ZL_KAFKA_BROKERS": need_env("ZL_KAFKA_BROKERS"),
        "ZL_PG_DSN": need_env("ZL_PG_DSN"),
        "ZL_TOPIC_PREFIX": prefix,
        "ZL_GROUP_ID": f"zl-mint-{prefix}",
        "ZL_RETRY_TIERS_MS": "300,600,1000",
        "ZL_BATCH_SIZE_MAX": "50",
        "ZL_OUTAGE_BASE_MS": "100",
        "ZL_OUTAGE_CAP_MS": "1000",
        "ZL_INPLACE_BASE_MS": "10",
        "ZL_INPLACE_CAP_MS": "50",
        "ZL_RPC_URLS": chain.url,
        "ZL_NFT_ADDRESS": chain.nft,
        "ZL_SIGNER_KEY_FILE": str(keyfile),
        "ZL_MINT_RECEIPT_WAIT_MS": "2000",
        "ZL_MINT_JANITOR_MS": "300",
        "ZL_LOG_LEVEL": "info",
    }


def create_topics(env: dict, partitions: int = 3) -> None:
    topics_env = dict(env, ZL_TOPICS_STAGES="mint", ZL_TOPIC_PARTITIONS=str(partitions))
    out = subprocess.run([str(Path(need_env("ZL_BIN_DIR")) / "zl-topics")], env=topics_env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def row(deposit_id: str) -> dict:
    r = psql("SELECT state, coalesce(mint_tx_hash, ''), coalesce(token_id::text, ''), coalesce(nft_contract, '')"
             " FROM deposits WHERE deposit_id = :'v1'", deposit_id)
    return dict(zip(["state", "mint_tx_hash", "token_id", "nft_contract"], r[0])) if r else {}


def signer_txs(addr: str) -> list[dict]:
    rows = psql("SELECT nonce, purpose, status, coalesce(receipt_status, -1), cardinality(hashes),"
                " array_to_string(deposit_ids, ',') FROM signer_txs WHERE signer = :'v1' ORDER BY nonce", addr)
    return [{"nonce": int(r[0]), "purpose": r[1], "status": r[2], "receipt_status": int(r[3]),
             "nhashes": int(r[4]), "deposits": r[5]} for r in rows]


@dataclass
class MintPipeline(Pipeline):
    """One isolated mint pipeline: its topics, group and workers."""
    STAGE = "mint"
    IN = "nft.pinned"
    OUT = "nft.minted"
    BINARY = "mint"

    def dlq_keys(self) -> list[str]:
        out = kcat("-C", "-t", self.dlq_topic, "-o", "beginning", "-e", "-q", "-f", "%k\n")
        return [k for k in out.splitlines() if k]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """A private anvil with the receipt NFT deployed, for one test module
    (import it into the module to use it)."""
    wd = tmp_path_factory.mktemp("anvil")
    a = Anvil(wd)
    try:
        a.nft = a.deploy(wd)
        yield a
    finally:
        a.stop()


def new_pipeline(tmp_path: Path, chain, **extra: str) -> "MintPipeline":
    """A mint pipeline on a fresh topic prefix with a fresh signer key (its
    nonces are its own); the caller stops it with stop_all()."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    _, addr, keyfile = chain.new_signer(tmp_path, chain.nft)
    env = mint_env(chain, prefix, keyfile)
    env.update(extra)
    create_topics(env)
    p = MintPipeline(prefix=prefix, workdir=tmp_path, env=env)
    p.signer = addr
    p.chain = chain
    return p

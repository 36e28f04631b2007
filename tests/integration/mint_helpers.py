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
from dataclasses import dataclass, field
from pathlib import Path

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
    """The rows as ipfs-upload leaves them: pinned, with metadata_cid and token_uri."""
    insert_rows(deposits)
    for d in deposits:
        psql("UPDATE deposits SET state = 'pinned', confirmations = 12, metadata_cid = :'v2', token_uri = :'v3'"
             " WHERE deposit_id = :'v1'", d["deposit_id"], d["metadata_cid"], d["token_uri"])


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

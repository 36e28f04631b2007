"""Helpers for the mint stage's integration tests: a private anvil (so a test
may switch automine off or own every nonce), the contracts deployed on it, a
fresh signer per test, pinned deposits, and a mint pipeline's workers.
"""
import json
import random
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime_helpers import Pipeline, insert_rows, new_deposit, psql
from zlharness.env import REPO, need_env  # noqa: F401 (names other tests import from here)
from zlharness.kafka import kcat  # noqa: F401
from zlharness.procs import free_port  # noqa: F401
from zlharness.chain import ANVIL_KEY0, TRANSFER_TOPIC, cast, rpc_batch  # noqa: F401
from zlharness.chain import Anvil as PrivateAnvil
from zlharness.env import write_secret
from zlharness.kafka import create_topics as zl_topics
from zlharness.stage import stage_env

B32 = "abcdefghijklmnopqrstuvwxyz234567"


class Anvil(PrivateAnvil):
    """A private anvil (zlharness.chain.Anvil) with the mint tests' calls."""

    def deploy(self, workdir: Path | None = None) -> str:
        """The contracts, deployed by anvil's account 0; the NFT's address."""
        return super().deploy(ANVIL_KEY0)["ZL_NFT_ADDRESS"]

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
        return key, addr, write_secret(workdir / f"signer-{addr[2:10]}.key", key)

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


def owners(url: str, nft: str, token_ids: list[str]) -> list[str]:
    """ownerOf of each token id ("" for a token that does not exist)."""
    calls = [("eth_call", [{"to": nft, "data": "0x6352211e" + format(int(t), "064x")}, "latest"]) for t in token_ids]
    return ["0x" + r[-40:] if isinstance(r, str) else "" for r in rpc_batch(url, calls)]


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
    return stage_env(prefix, f"zl-mint-{prefix}", ZL_RETRY_TIERS_MS="300,600,1000", ZL_BATCH_SIZE_MAX="50",
                     ZL_OUTAGE_BASE_MS="100", ZL_RPC_URLS=chain.url, ZL_NFT_ADDRESS=chain.nft,
                     ZL_SIGNER_KEY_FILE=str(keyfile), ZL_MINT_RECEIPT_WAIT_MS="2000", ZL_MINT_JANITOR_MS="300")


def create_topics(env: dict, partitions: int = 3) -> None:
    zl_topics(env, "mint", partitions)


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

"""Helpers for the chain-ingestion tests (detect, verify): a private anvil
(so a test may mine, snapshot and revert without disturbing anyone), the test
token deployed on it, users holding tokens, deposit addresses registered with
zl-address, and detect/verify workers on an isolated topic prefix.
"""
import json
import os
import secrets
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import need_env
from runtime_helpers import kcat, psql, wait_until  # noqa: F401
from zlharness.env import REPO  # noqa: F401 (names other tests import from here)
from zlharness.procs import free_port  # noqa: F401
from zlharness.chain import ANVIL_KEY0, TRANSFER_TOPIC, Anvil, cast  # noqa: F401
from zlharness.kafka import consume_json, create_topics
from zlharness.pg import migrate  # noqa: F401
from zlharness.procs import ProcessGroup
from zlharness.stage import stage_env

# anvil's default accounts 1..3: the depositors
USER_KEYS = [
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
]


class Chain(Anvil):
    """A private anvil (see zlharness.chain.Anvil) with the test token."""

    def __init__(self, workdir: Path):
        super().__init__(workdir)
        # A fresh deployer per chain gives the token a fresh address, so rows
        # and detector cursors of earlier runs (same chain id) never mix in.
        self.owner_key = "0x" + secrets.token_hex(32)
        owner = cast("wallet", "address", "--private-key", self.owner_key)
        self.rpc("anvil_setBalance", owner, "0x3635C9ADC5DEA00000")
        self.token = self.deploy(self.owner_key)["ZL_TOKEN_ADDRESS"].lower()
        self.users = [cast("wallet", "address", "--private-key", k).lower() for k in USER_KEYS]
        for u in self.users:
            self.send(self.owner_key, self.token, "mint(address,uint256)", u, str(10**24))

    def send(self, key: str, to: str, sig: str, *args: str, wait: bool = True) -> str:
        mode = ["--json"] if wait else ["--async"]
        out = cast("send", "--rpc-url", self.url, "--private-key", key, *mode, to, sig, *args)
        if wait:
            r = json.loads(out)
            assert int(str(r["status"]), 0) == 1, r
            return r["transactionHash"]
        return out.strip()

    def transfer(self, user: int, to: str, amount: int, wait: bool = True) -> str:
        return self.send(USER_KEYS[user], self.token, "transfer(address,uint256)", to, str(amount), wait=wait)

    def mine(self, n: int = 1):
        self.rpc("anvil_mine", hex(n))

    def automine(self, on: bool):
        self.rpc("evm_setAutomine", "true" if on else "false")

    def transfers_to(self, addresses: set[str], from_block: int = 0) -> set[tuple[str, int]]:
        """(tx_hash, log_index) of every Transfer of the token to `addresses`
        on the canonical chain: the ground truth the detector must match."""
        logs = json.loads(cast("rpc", "--rpc-url", self.url, "eth_getLogs",
                               json.dumps([{"fromBlock": hex(from_block), "toBlock": "latest", "address": self.token,
                                            "topics": [TRANSFER_TOPIC]}]), "--raw"))
        return {(lg["transactionHash"].lower(), int(lg["logIndex"], 16)) for lg in logs
                if "0x" + lg["topics"][2][-40:].lower() in addresses}


def register_addresses(n: int) -> dict[str, str]:
    """n fresh deposit addresses, each for a fresh user id, via zl-address."""
    out = {}
    for _ in range(n):
        addr = "0x" + secrets.token_hex(20)
        user = "u-" + uuid.uuid4().hex[:12]
        r = subprocess.run([str(Path(need_env("ZL_BIN_DIR")) / "zl-address"), "add", addr.upper().replace("0X", "0x"),
                            user], capture_output=True, text=True, timeout=30, env=dict(os.environ))
        assert r.returncode == 0, r.stderr
        out[addr] = user
    return out


class Workers(ProcessGroup):
    """detect / verify processes on one isolated prefix, killed by pid."""

    def __init__(self, workdir: Path, chain: Chain, stages: str = "verify"):
        self.workdir = workdir
        self.prefix = f"t{uuid.uuid4().hex[:10]}."
        self.chain = chain
        self.procs = []
        self.env = stage_env(self.prefix, None, ZL_RPC_URLS=chain.url, ZL_TOKEN_ADDRESS=chain.token,
                             ZL_CHAIN_ID="31337", ZL_DETECT_LAG_BLOCKS="0", ZL_DETECT_POLL_MS="100",
                             ZL_DETECT_START_BLOCK="0", ZL_RPC_TIMEOUT_MS="2000", ZL_RPC_HEDGE_MS="300")
        create_topics(self.env, stages, 3)

    def start(self, binary: str, name: str, **extra: str) -> subprocess.Popen:
        env = dict(self.env)
        env.update({k: str(v) for k, v in extra.items()})
        env.setdefault("ZL_GROUP_ID", f"zl-{binary}-{self.prefix}")
        return self.launch(name, [Path(need_env("ZL_BIN_DIR")) / binary], env)

    def topic_ids(self, suffix: str) -> list[str]:
        return [d["deposit_id"] for d in self.topic_events(suffix)]

    def topic_events(self, suffix: str) -> list[dict]:
        return consume_json(self.prefix + suffix)


@pytest.fixture
def chain(tmp_path):
    """A private chain with the token per test (import into a test module)."""
    c = Chain(tmp_path)
    yield c
    c.stop()


@pytest.fixture
def workers(tmp_path, chain):
    """detect/verify workers on the test's chain (import with `chain`)."""
    w = Workers(tmp_path, chain)
    yield w
    w.stop_all()


def rows_for(token: str) -> dict[str, dict]:
    rows = psql("SELECT deposit_id, state, block_number, block_hash, to_addr, user_id, amount FROM deposits"
                " WHERE token = :'v1'", token)
    return {r[0]: {"state": r[1], "block_number": int(r[2]), "block_hash": r[3], "to": r[4], "user_id": r[5],
                   "amount": r[6]} for r in rows}


def dep_id(tx: str, log_index: int) -> str:
    return f"31337:{tx.lower()}:{log_index}"


__all__ = ["Chain", "Workers", "register_addresses", "migrate", "rows_for", "dep_id", "wait_until", "cast"]

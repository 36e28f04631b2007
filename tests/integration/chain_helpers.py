"""Helpers for the chain-ingestion tests (detect, verify): a private anvil
(so a test may mine, snapshot and revert without disturbing anyone), the test
token deployed on it, users holding tokens, deposit addresses registered with
zl-address, and detect/verify workers on an isolated topic prefix.
"""
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

from conftest import REPO, need_env
from runtime_helpers import kcat, psql, wait_until

ANVIL_KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
# anvil's default accounts 1..3: the depositors
USER_KEYS = [
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
]
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cast(*args: str, timeout: float = 60) -> str:
    out = subprocess.run([need_env("ZL_CAST"), *args], capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"cast {args[0]} failed: {out.stderr.strip()}")
    return out.stdout.strip()


class Chain:
    """A private anvil with the test token; stopped by pid."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(workdir / "anvil.log", "ab")
        # HOME: anvil spills old states under $HOME/.foundry and leaves them
        # when killed; here they go into the test's own temporary folder.
        self.proc = subprocess.Popen([need_env("ZL_ANVIL"), "--port", str(self.port), "--chain-id", "31337"],
                                     stdout=self.log, stderr=self.log, start_new_session=True,
                                     env=dict(os.environ, HOME=str(workdir)))
        deadline = time.monotonic() + 30
        while True:
            try:
                cast("block-number", "--rpc-url", self.url, timeout=5)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise AssertionError("private anvil did not start")
                time.sleep(0.2)
        # A fresh deployer per chain gives the token a fresh address, so rows
        # and detector cursors of earlier runs (same chain id) never mix in.
        self.owner_key = "0x" + secrets.token_hex(32)
        owner = cast("wallet", "address", "--private-key", self.owner_key)
        self.rpc("anvil_setBalance", owner, "0x3635C9ADC5DEA00000")
        keyfile = workdir / "deployer.key"
        keyfile.write_text(self.owner_key + "\n")
        keyfile.chmod(0o600)
        out = subprocess.run([str(REPO / "deploy" / "contracts" / "deploy.sh"), self.url, str(keyfile)],
                             capture_output=True, text=True, timeout=120, env=dict(os.environ))
        assert out.returncode == 0, out.stderr
        self.token = dict(line.split("=", 1) for line in out.stdout.split())["ZL_TOKEN_ADDRESS"].lower()
        self.users = [cast("wallet", "address", "--private-key", k).lower() for k in USER_KEYS]
        for u in self.users:
            self.send(self.owner_key, self.token, "mint(address,uint256)", u, str(10**24))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.log.close()

    def rpc(self, method: str, *params: str) -> str:
        return cast("rpc", "--rpc-url", self.url, method, *params)

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

    def block_number(self) -> int:
        return int(cast("block-number", "--rpc-url", self.url))

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


def migrate():
    env = dict(os.environ, ZL_SCHEMA_DIR=str(REPO / "schemas" / "sql"))
    out = subprocess.run([str(Path(need_env("ZL_BIN_DIR")) / "zl-migrate")], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr


class Workers:
    """detect / verify processes on one isolated prefix, killed by pid."""

    def __init__(self, workdir: Path, chain: Chain, stages: str = "verify"):
        self.workdir = workdir
        self.prefix = f"t{uuid.uuid4().hex[:10]}."
        self.chain = chain
        self.procs = []
        self.env = {
            "PATH": os.environ["PATH"],
            "ZL_KAFKA_BROKERS": need_env("ZL_KAFKA_BROKERS"),
            "ZL_PG_DSN": need_env("ZL_PG_DSN"),
            "ZL_TOPIC_PREFIX": self.prefix,
            "ZL_RPC_URLS": chain.url,
            "ZL_TOKEN_ADDRESS": chain.token,
            "ZL_CHAIN_ID": "31337",
            "ZL_RETRY_TIERS_MS": "500,1000",
            "ZL_OUTAGE_CAP_MS": "1000",
            "ZL_INPLACE_BASE_MS": "10",
            "ZL_INPLACE_CAP_MS": "50",
            "ZL_DETECT_LAG_BLOCKS": "0",
            "ZL_DETECT_POLL_MS": "100",
            "ZL_DETECT_START_BLOCK": "0",
            "ZL_RPC_TIMEOUT_MS": "2000",
            "ZL_RPC_HEDGE_MS": "300",
            "ZL_LOG_LEVEL": "info",
        }
        topics_env = dict(self.env, ZL_TOPICS_STAGES=stages, ZL_TOPIC_PARTITIONS="3")
        out = subprocess.run([str(Path(need_env("ZL_BIN_DIR")) / "zl-topics")], env=topics_env, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr

    def start(self, binary: str, name: str, **extra: str) -> subprocess.Popen:
        env = dict(self.env)
        env.update({k: str(v) for k, v in extra.items()})
        env["ZL_HTTP_PORT_FILE"] = str(self.workdir / f"{name}.port")
        env.setdefault("ZL_GROUP_ID", f"zl-{binary}-{self.prefix}")
        log = open(self.workdir / f"{name}.log", "ab")
        p = subprocess.Popen([str(Path(need_env("ZL_BIN_DIR")) / binary)], env=env, stdout=log, stderr=log,
                             start_new_session=True)
        log.close()
        p.zl_name = name
        self.procs.append(p)
        return p

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=10)
        for p in self.procs:
            text = self.log(p.zl_name)
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                assert marker not in text, f"sanitizer report in {p.zl_name}'s log:\n{text[text.index(marker):][:3000]}"

    def topic_ids(self, suffix: str) -> list[str]:
        out = kcat("-C", "-t", self.prefix + suffix, "-o", "beginning", "-e", "-q", "-f", "%s\n")
        return [json.loads(v)["deposit_id"] for v in out.splitlines() if v]

    def topic_events(self, suffix: str) -> list[dict]:
        out = kcat("-C", "-t", self.prefix + suffix, "-o", "beginning", "-e", "-q", "-f", "%s\n")
        return [json.loads(v) for v in out.splitlines() if v]


def rows_for(token: str) -> dict[str, dict]:
    rows = psql("SELECT deposit_id, state, block_number, block_hash, to_addr, user_id, amount FROM deposits"
                " WHERE token = :'v1'", token)
    return {r[0]: {"state": r[1], "block_number": int(r[2]), "block_hash": r[3], "to": r[4], "user_id": r[5],
                   "amount": r[6]} for r in rows}


def dep_id(tx: str, log_index: int) -> str:
    return f"31337:{tx.lower()}:{log_index}"


__all__ = ["Chain", "Workers", "register_addresses", "migrate", "rows_for", "dep_id", "wait_until", "cast"]

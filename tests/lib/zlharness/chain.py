"""The chain side: cast, a private anvil, the contracts, batched JSON-RPC."""
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from .env import REPO, HarnessError, need_env, write_secret
from .procs import free_port, spawn, stop
from .procs import run as run_cmd

CHAIN_ID = 31337
# anvil's dev account 0 (public test mnemonic): test key only.
ANVIL_KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"  # Transfer(address,address,uint256)
ANVIL_START_TIMEOUT_S = 60
# An answer from a node on this machine takes milliseconds.
RPC_TIMEOUT_S = 60


def cast(*args: str, timeout: float = 60, env: dict | None = None) -> str:
    """cast (ZL_CAST of env, default os.environ); its stdout, stripped."""
    out = subprocess.run([need_env("ZL_CAST", env), *args], env=env, capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode != 0:
        raise HarnessError(f"cast {args[0]} failed: {out.stderr.strip()}")
    return out.stdout.strip()


def rpc_call(url: str, method: str, *params, timeout: float = 5):
    """One JSON-RPC call over a fresh connection; its result (HarnessError
    on an error answer, OSError when nothing answers)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        answer = json.loads(r.read())
    if "error" in answer:
        raise HarnessError(f"{method}: {answer['error']}")
    return answer["result"]


def rpc_batch(url: str, calls: list[tuple[str, list]], chunk: int = 200) -> list:
    """JSON-RPC batches (chunk calls per request): results in call order;
    an error object stands for a failed call."""
    out = []
    for at in range(0, len(calls), chunk):
        body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls[at:at + chunk])]
        req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=RPC_TIMEOUT_S) as r:
            answers = {a["id"]: a for a in json.loads(r.read())}
        out += [answers[i].get("result", answers[i].get("error")) for i in range(len(body))]
    return out


def deploy_contracts(url: str, keyfile: Path, env: dict | None = None) -> dict[str, str]:
    """deploy/contracts/deploy.sh: the test token and the receipt NFT;
    {"ZL_TOKEN_ADDRESS": ..., "ZL_NFT_ADDRESS": ...}."""
    out = run_cmd([REPO / "deploy" / "contracts" / "deploy.sh", url, keyfile],
                  env=dict(os.environ if env is None else env), timeout=300)
    return dict(line.split("=", 1) for line in out.split() if "=" in line)


def deploy_artifact(url: str, key: str, name: str, env: dict | None = None) -> str:
    """Creates deploy/contracts/artifacts/<name>.json's contract (no
    constructor arguments) from `key`; its address, lower-cased."""
    code = json.loads((REPO / "deploy" / "contracts" / "artifacts" / f"{name}.json").read_text())["bytecode"]
    r = json.loads(cast("send", "--rpc-url", url, "--private-key", key, "--json", "--create", code, timeout=120,
                        env=env))
    if int(str(r.get("status", "0x0")), 0) != 1 or not r.get("contractAddress"):
        raise HarnessError(f"creating {name} failed: {r}")
    return r["contractAddress"].lower()


class Anvil:
    """An anvil of our own on a free port, in `workdir`, stopped by pid.

    HOME is workdir: anvil spills old states under $HOME/.foundry and leaves
    them when killed (17 such folders, 70 GB, once filled this machine's
    disk); here they go into the caller's own folder."""

    def __init__(self, workdir: Path, *args: str, chain_id: int = CHAIN_ID, env: dict | None = None,
                 start_timeout_s: float = ANVIL_START_TIMEOUT_S):
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "anvil.log"
        self.proc = spawn([need_env("ZL_ANVIL", env), "--host", "127.0.0.1", "--port", self.port,
                           "--chain-id", chain_id, *args], self.log_path,
                          dict(os.environ if env is None else env, HOME=str(workdir)))
        deadline = time.monotonic() + start_timeout_s
        while self.block_number() is None:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise HarnessError(f"private anvil did not start: {tail}")
            time.sleep(0.2)

    def block_number(self) -> int | None:
        """The head, or None while nothing answers."""
        try:
            return int(rpc_call(self.url, "eth_blockNumber"), 16)
        except (OSError, ValueError, HarnessError):
            return None

    def rpc(self, method: str, *params: str) -> str:
        return cast("rpc", "--rpc-url", self.url, method, *params)

    def deploy(self, key: str = ANVIL_KEY0) -> dict[str, str]:
        """The contracts, deployed by `key` (written to deployer.key)."""
        return deploy_contracts(self.url, write_secret(self.workdir / "deployer.key", key))

    def stop(self, sig: int = signal.SIGKILL) -> None:
        stop(self.proc, sig, timeout=10)

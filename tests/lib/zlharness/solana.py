"""Solana on this machine, for tests, the demo and the chaos suite (issue
22): a solana-test-validator started on free loopback ports and stopped by
pid, transactions built and signed by the C code (build/*/tests/zl-sol-tx,
zl-sol-addr), and a test USDT mint with wallets and token accounts.

Test keys only: every seed here is random, on a local validator.
"""
import base64
import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .env import REPO
from .procs import free_port

SYSTEM = "11111111111111111111111111111111"
TOKEN = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN_2022 = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"


def tool(name: str) -> Path:
    """A C test tool of the build under test: ZL_BUILD_DIR's, else the one
    ZL_BIN_DIR belongs to (make demo), else the release build."""
    if os.environ.get("ZL_BUILD_DIR"):
        return Path(os.environ["ZL_BUILD_DIR"]) / "tests" / name
    if os.environ.get("ZL_BIN_DIR"):
        return Path(os.environ["ZL_BIN_DIR"]).parent / "tests" / name
    return REPO / "build" / "release" / "tests" / name


def pytools_python() -> Path:
    out = subprocess.run(["bash", "-c", f". {REPO}/deploy/local/versions.sh && echo \"$ZL_PYTOOLS_DIR\""],
                         capture_output=True, text=True, check=True)
    py = Path(out.stdout.strip()) / "bin" / "python"
    assert py.exists(), f"{py} missing: run deploy/local/deps (it installs solders into the pytools venv)"
    return py


def pubkeys(seeds: list[str]) -> dict[str, str]:
    """seed hex -> base58 public key, as solders computes it (RFC 8032)."""
    code = ("import json,sys\nfrom solders.keypair import Keypair\n"
            "print(json.dumps([str(Keypair.from_seed(bytes.fromhex(s)).pubkey()) for s in json.load(sys.stdin)]))")
    out = subprocess.run([str(pytools_python()), "-c", code], input=json.dumps(seeds), capture_output=True,
                         text=True, timeout=60, check=True)
    return dict(zip(seeds, json.loads(out.stdout)))


def validator_path() -> Path:
    """ZL_SOLANA_VALIDATOR, else deploy/local/versions.sh's."""
    if os.environ.get("ZL_SOLANA_VALIDATOR"):
        return Path(os.environ["ZL_SOLANA_VALIDATOR"])
    out = subprocess.run(["bash", "-c", f". {REPO}/deploy/local/versions.sh && echo \"$ZL_SOLANA_VALIDATOR\""],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


VALIDATOR = validator_path()
# Features the test validator activates at genesis that are turned off here:
# SIMD-0219 (stricter ABI). Under it, the Token-2022 program this validator
# ships fails to grow a mint account for its metadata ("InvalidRealloc").
# Whether a cluster has it active is that cluster's: check before a
# deployment mints receipts there (docs/architecture.md, "Solana").
INACTIVE_FEATURES = ("CxeBn9PVeeXbmjbNwLv6U4C6svNxnC4JX6mfkvgeMocM",)
START_S = 90
CONFIRM_S = 30
LAMPORTS_PER_SOL = 1_000_000_000

class Validator:
    def __init__(self, folder: Path, url: str | None = None):
        """A validator to start in folder, or (url) one already running."""
        self.folder = folder
        self.rpc_port = free_port()
        self.url = url or f"http://127.0.0.1:{self.rpc_port}"
        self.proc = None

    def start(self, reset: bool = True):
        """Starts it on its RPC port; reset False: on the ledger it left
        (a restart: the chain goes on where it stopped)."""
        base = free_port()
        args = [str(VALIDATOR), "--ledger", str(self.folder / "ledger"), "--rpc-port", str(self.rpc_port),
                "--faucet-port", str(free_port()), "--gossip-port", str(free_port()), "--bind-address", "127.0.0.1",
                "--dynamic-port-range", f"{base + 100}-{base + 140}", "--quiet"] + (["--reset"] if reset else [])
        args += [a for f in INACTIVE_FEATURES for a in ("--deactivate-feature", f)]
        self.log = open(self.folder / "validator.log", "a")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.folder / "validator.log").read_text()[-3000:]
            try:
                if self.rpc("getHealth") == "ok":
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"validator not healthy in {START_S}s")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def call(self, method, *params):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
        req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def rpc(self, method, *params):
        got = self.call(method, *params)
        assert "error" not in got, f"{method}: {got['error']}"
        return got["result"]

    def blockhash(self) -> str:
        return self.rpc("getLatestBlockhash", {"commitment": "confirmed"})["value"]["blockhash"]

    def confirm(self, sig: str):
        deadline = time.monotonic() + CONFIRM_S
        while time.monotonic() < deadline:
            st = self.rpc("getSignatureStatuses", [sig])["value"][0]
            if st is not None and st.get("confirmationStatus") in ("confirmed", "finalized"):
                assert st["err"] is None, f"{sig} failed: {st['err']}"
                return
            time.sleep(0.2)
        raise AssertionError(f"{sig} not confirmed in {CONFIRM_S}s")

    def send(self, spec: dict) -> dict:
        """Builds spec with zl-sol-tx and sends it; the RPC answer."""
        return self.send_opts(spec, {})

    def send_opts(self, spec: dict, opts: dict) -> dict:
        """send with more sendTransaction options (skipPreflight)."""
        out = subprocess.run([str(tool("zl-sol-tx"))], input=json.dumps(spec), capture_output=True, text=True,
                             timeout=30)
        got = json.loads(out.stdout)
        assert out.returncode == 0, got
        raw = base64.b64encode(bytes.fromhex(got["tx"])).decode()
        return self.call("sendTransaction", raw, {"encoding": "base64", "preflightCommitment": "confirmed", **opts}), got


def transfers_into(tx: dict | None, mint: str, accounts) -> list[tuple[str, int]]:
    """(account, amount in base units) of each transferChecked of mint into
    one of accounts in a jsonParsed transaction (a getTransaction answer or
    a block's entry); none for a failed or missing transaction."""
    if tx is None or tx["meta"]["err"] is not None:
        return []
    out = []
    for ix in tx["transaction"]["message"]["instructions"]:
        parsed = ix.get("parsed")
        info = parsed.get("info", {}) if isinstance(parsed, dict) else {}
        if (ix.get("programId") in (TOKEN, TOKEN_2022) and parsed.get("type") == "transferChecked"
                and info.get("mint") == mint and info.get("destination") in accounts):
            out.append((info["destination"], int(info["tokenAmount"]["amount"])))
    return out


def ata_of(wallet: str, mint: str, program: str) -> str:
    out = subprocess.run([str(tool("zl-sol-addr"))], capture_output=True, text=True, timeout=30,
                         input=json.dumps([{"kind": "ata", "wallet": wallet, "mint": mint, "token_program": program}]))
    return json.loads(out.stdout)[0]["address"]


def with_seed(base: str, seed: str, owner: str) -> str:
    out = subprocess.run([str(tool("zl-sol-addr"))], capture_output=True, text=True, timeout=30,
                         input=json.dumps([{"kind": "with_seed", "base": base, "seed": seed, "owner": owner}]))
    return json.loads(out.stdout)[0]["address"]


def funded(v: Validator, n: int) -> tuple[list[str], list[str]]:
    seeds = [os.urandom(32).hex() for _ in range(n)]
    keys = pubkeys(seeds)
    for s in seeds:
        v.confirm(v.rpc("requestAirdrop", keys[s], 10 * LAMPORTS_PER_SOL))
    return seeds, [keys[s] for s in seeds]


def sent(v: Validator, spec: dict) -> str:
    ans, got = v.send(spec)
    assert "error" not in ans, json.dumps(ans["error"])[-3000:]
    v.confirm(ans["result"])
    assert ans["result"] == got["signature"], "the node's id is not our first signature"
    return ans["result"]


class Chain:
    """A payer a, a depositor wallet b and another wallet c, each with a
    token account of a fresh "USDT" mint and of another mint."""

    def __init__(self, v, program: str):
        self.v, self.program = v, program
        (self.a_seed, _, _), (self.a, self.b, self.c) = funded(v, 3)
        self.usdt, self.atas = self.mint()
        self.other, self.oatas = self.mint()

    def mint(self):
        v, a = self.v, self.a
        seed = os.urandom(8).hex()
        mint = with_seed(a, seed, self.program)
        rent = v.rpc("getMinimumBalanceForRentExemption", 82)
        atas = {w: ata_of(w, mint, self.program) for w in (self.a, self.b, self.c)}
        sent(v, {"payer_seed": self.a_seed, "seeds": [self.a_seed], "blockhash": v.blockhash(), "instructions": [
            {"system": "create_account_with_seed", "from": a, "to": mint, "base": a, "seed": seed, "lamports": rent,
             "space": 82, "owner": self.program},
            {"token": "initialize_mint2", "program": self.program, "mint": mint, "decimals": 6, "authority": a}] + [
            {"token": "ata_create", "program": self.program, "mint": mint, "payer": a, "ata": atas[w], "wallet": w}
            for w in atas] + [
            {"token": "mint_to", "program": self.program, "mint": mint, "dest": atas[a], "authority": a,
             "amount": 10 ** 12}]})
        return mint, atas

    def tc_to(self, account: str, amount: int) -> dict:
        """A USDT transferChecked from a into any token account of the mint."""
        return {"token": "transfer_checked", "program": self.program, "mint": self.usdt, "source": self.atas[self.a],
                "dest": account, "owner": self.a, "amount": amount, "decimals": 6}

    def tc(self, to: str, amount: int, other: bool = False) -> dict:
        mint, atas = (self.other, self.oatas) if other else (self.usdt, self.atas)
        return {"token": "transfer_checked", "program": self.program, "mint": mint, "source": atas[self.a],
                "dest": atas[to], "owner": self.a, "amount": amount, "decimals": 6}

    def pay(self, *ixs) -> str:
        return sent(self.v, {"payer_seed": self.a_seed, "seeds": [self.a_seed], "blockhash": self.v.blockhash(),
                             "instructions": list(ixs)})

    def failed(self, *ixs) -> str:
        spec = {"payer_seed": self.a_seed, "seeds": [self.a_seed], "blockhash": self.v.blockhash(),
                "instructions": list(ixs)}
        ans, _ = self.v.send_opts(spec, {"skipPreflight": True})
        sig = ans["result"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            st = self.v.rpc("getSignatureStatuses", [sig])["value"][0]
            if st and st.get("confirmationStatus") in ("confirmed", "finalized"):
                assert st["err"] is not None
                return sig
            time.sleep(0.2)
        raise AssertionError(f"{sig} not confirmed")

    def deposit_req(self, **kw) -> dict:
        return dict({"mint": self.usdt, "account": self.atas[self.b], "cluster": "localnet"}, **kw)


def nonce_account(v, payer_seed: str, payer: str) -> str:
    seed = os.urandom(32).hex()
    nonce = pubkeys([seed])[seed]
    rent = v.rpc("getMinimumBalanceForRentExemption", 80)
    sent(v, {"payer_seed": payer_seed, "seeds": [payer_seed, seed], "blockhash": v.blockhash(), "instructions": [
        {"system": "create_account", "from": payer, "to": nonce, "lamports": rent, "space": 80, "owner": SYSTEM},
        {"system": "initialize_nonce", "nonce": nonce, "authority": payer}]})
    return nonce


def nonce_value(v, nonce: str) -> str:
    acct = v.rpc("getAccountInfo", nonce, {"encoding": "jsonParsed", "commitment": "confirmed"})["value"]
    return acct["data"]["parsed"]["info"]["blockhash"]




class RpcProxy:
    """An RPC endpoint on a fixed loopback port that forwards to upstream,
    and can be stopped and started again (an endpoint that goes away).
    mode "honest" forwards unchanged; the lying modes change getTransaction
    answers: "raise" puts a 9 in front of every transfer's amount, "swap"
    asks for another transaction (swap_to's) instead."""

    def __init__(self, upstream: str, mode: str = "honest", swap_to: str = ""):
        self.upstream, self.mode, self.swap_to = upstream, mode, swap_to
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.srv = None
        # What passed through (a benchmark's cost): calls per method (each
        # element of a JSON-RPC batch counts), and the bytes answered.
        self.calls: dict[str, int] = {}
        self.bytes_out = 0
        self.lock = threading.Lock()

    def counted(self, body: bytes, answered: int) -> None:
        try:
            req = json.loads(body)
        except ValueError:
            return
        with self.lock:
            for r in req if isinstance(req, list) else [req]:
                m = r.get("method", "?") if isinstance(r, dict) else "?"
                self.calls[m] = self.calls.get(m, 0) + 1
            self.bytes_out += answered

    def start(self):
        up, mode, swap_to, proxy = self.upstream, self.mode, self.swap_to, self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if mode == "swap" and b"getTransaction" in body:
                    req = json.loads(body)
                    for r in req if isinstance(req, list) else [req]:
                        r["params"][0] = swap_to
                    body = json.dumps(req).encode()
                req = urllib.request.Request(up, data=body, headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=30) as r:
                        text = r.read().decode()
                except OSError:  # the validator itself is away (restarting): a bad gateway
                    self.send_response(502)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if mode == "raise" and b"getTransaction" in body:
                    text = text.replace('"amount":"', '"amount":"9')
                data = text.encode()
                proxy.counted(body, len(data))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                pass  # a client that hung up (a stage timing out): nothing to report

        self.srv = Server(("127.0.0.1", self.port), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.srv is not None:
            self.srv.shutdown()
            self.srv.server_close()
            self.srv = None

    close = stop

"""Helpers for the ipfs-upload stage's integration tests: an ipfs-upload
pipeline (its topics, group and workers), a private Kubo daemon a test may
kill, and the one fake this suite uses, a proxy that lies about CIDs.
"""
import hashlib
import http.server
import json
import os
import subprocess
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from conftest import REPO, need_env
from runtime_helpers import Pipeline, insert_rows, kcat, new_deposit, psql
from zlharness.procs import free_port, kill, spawn, wait_until  # noqa: F401
from zlharness.web import http_get  # noqa: F401

IMAGE_FILE = REPO / "deploy" / "assets" / "receipt.svg"
NAME_PREFIX = "zeroloss deposit receipt"
DESCRIPTION = "Receipt for a USDT deposit credited by zeroloss."


def verified_deposit(user_id: str = "u1", amount: str = "1000000000000000000") -> dict:
    d = new_deposit(user_id)
    d["schema"] = "zl.deposits.verified/v1"
    d["amount"] = amount
    d["confirmations"] = 12
    return d


def insert_verified_rows(deposits: list[dict]) -> None:
    insert_rows(deposits)
    arr = "{" + ",".join(d["deposit_id"] for d in deposits) + "}"
    psql("UPDATE deposits SET state = 'verified', confirmations = 12 WHERE deposit_id = ANY(:'v1'::text[])", arr)


def expected_metadata(d: dict, image_cid: str) -> bytes:
    """The canonical document, written independently of the C code: if the
    two ever disagree, the CIDs disagree and the test says so."""
    doc = {
        "name": f"{NAME_PREFIX} {d['deposit_id']}",
        "description": DESCRIPTION,
        "image": f"ipfs://{image_cid}",
        "attributes": [
            {"trait_type": "amount", "value": d["amount"]},
            {"trait_type": "token", "value": d["token"].lower()},
            {"trait_type": "chain", "value": str(d["chain_id"])},
            {"trait_type": "deposit tx", "value": d["tx_hash"]},
            {"trait_type": "log index", "value": str(d["log_index"])},
        ],
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


class KuboCli:
    """`ipfs add -n` in a private offline repo: Kubo computes a CID without
    storing anything, the reference every local CID is compared with.
    One `ipfs add` at a time: two at once on one repo fail on its lock, and
    a stand-in server may ask from several threads."""

    _lock = threading.Lock()

    def __init__(self, workdir: Path):
        self.env = dict(os.environ, IPFS_PATH=str(workdir / "cli-repo"))
        subprocess.run([need_env("ZL_IPFS"), "init", "--profile=test"], env=self.env, capture_output=True,
                       check=True, timeout=60)

    def cid(self, data: bytes) -> str:
        with KuboCli._lock:
            out = subprocess.run([need_env("ZL_IPFS"), "add", "--cid-version=1", "--raw-leaves", "-n", "-Q"],
                                 input=data, env=self.env, capture_output=True, check=True, timeout=60)
        return out.stdout.decode().strip()


class Kubo:
    """A private Kubo daemon on fixed free ports, so a test can kill it and
    start it again at the same address (the shared one is never touched)."""

    def __init__(self, workdir: Path):
        self.path = workdir / "kubo-repo"
        self.env = dict(os.environ, IPFS_PATH=str(self.path))
        self.api_port, self.gw_port = free_port(), free_port()
        self.log = workdir / "kubo.log"
        self.proc = None
        ipfs = need_env("ZL_IPFS")
        subprocess.run([ipfs, "init", "--profile=test"], env=self.env, capture_output=True, check=True, timeout=60)
        for key, value in (("Addresses.API", f"/ip4/127.0.0.1/tcp/{self.api_port}"),
                           ("Addresses.Gateway", f"/ip4/127.0.0.1/tcp/{self.gw_port}")):
            subprocess.run([ipfs, "config", key, value], env=self.env, capture_output=True, check=True, timeout=30)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gw_port}"

    def start(self) -> None:
        self.proc = spawn([need_env("ZL_IPFS"), "daemon", "--offline"], self.log, self.env)

        def answers() -> bool:
            req = urllib.request.Request(self.api_url + "/api/v0/version", method="POST")
            try:
                with urllib.request.urlopen(req, timeout=2):
                    return True
            except OSError:
                return False
        try:
            wait_until(answers, 30, "private kubo", 0.2)
        except AssertionError:
            raise AssertionError(f"private kubo did not start: {self.log.read_text(errors='replace')[-2000:]}")

    def kill(self) -> None:
        if self.proc is not None:
            kill(self.proc)
        self.proc = None


def kubo_recursive_pins(api_url: str) -> set[str]:
    """The CIDs a Kubo RPC API holds recursive pins for (what garbage
    collection keeps)."""
    req = urllib.request.Request(api_url.rstrip("/") + "/api/v0/pin/ls?type=recursive", method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return set(json.loads(r.read()).get("Keys", {}))


class KuboProxy:
    """TEST CODE: forwards Kubo RPC calls to a real Kubo and counts the add
    requests (`adds`) and the files they carried (`added`). With
    lie_about_metadata (FAULT INJECTION) it answers every metadata file of
    an add (a `.json` file) with another CID than Kubo's, as a misconfigured
    or lying provider would."""

    WRONG = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"  # CID of the empty string

    def __init__(self, upstream: str, lie_about_metadata: bool = False):
        upstream = upstream.rstrip("/")
        proxy = self
        self.adds = 0
        self.added = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                req = urllib.request.Request(upstream + self.path, data=body, method="POST",
                                             headers={"Content-Type": self.headers.get("Content-Type", "")})
                with urllib.request.urlopen(req, timeout=30) as r:
                    answer = r.read()
                if self.path.startswith("/api/v0/add"):
                    lines = [json.loads(x) for x in answer.decode().splitlines() if x.strip()]
                    proxy.adds += 1
                    proxy.added += sum(1 for o in lines if "Hash" in o)
                    if lie_about_metadata:
                        for o in lines:
                            if str(o.get("Name", "")).endswith(".json"):
                                o["Hash"] = KuboProxy.WRONG
                        answer = "".join(json.dumps(o) + "\n" for o in lines).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class IpfsPipeline(Pipeline):
    """One isolated ipfs-upload pipeline: its topics, group and workers."""
    STAGE = "ipfs-upload"
    IN = "deposits.verified"
    OUT = "nft.pinned"
    BINARY = "ipfs-upload"

    def dlq_headers(self) -> list[dict]:
        out = kcat("-C", "-t", self.dlq_topic, "-o", "beginning", "-e", "-q", "-f", "%h\x1e")
        msgs = []
        for rec in out.split("\x1e"):
            if not rec.strip():
                continue
            msgs.append(dict(pair.partition("=")[::2] for pair in rec.split(",")))
        return msgs

def rows(ids: list[str]) -> dict[str, dict]:
    arr = "{" + ",".join(ids) + "}"
    got = psql("SELECT deposit_id, state, coalesce(metadata_cid, ''), coalesce(token_uri, '') FROM deposits"
               " WHERE deposit_id = ANY(:'v1'::text[])", arr)
    return {r[0]: {"state": r[1], "cid": r[2], "uri": r[3]} for r in got}


def pinned_transitions(ids: list[str]) -> dict[str, int]:
    arr = "{" + ",".join(ids) + "}"
    got = psql("SELECT deposit_id, count(*) FROM deposit_history WHERE to_state = 'pinned'"
               " AND deposit_id = ANY(:'v1'::text[]) GROUP BY deposit_id", arr)
    return {r[0]: int(r[1]) for r in got}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

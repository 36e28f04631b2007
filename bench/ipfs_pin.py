#!/usr/bin/env python3
"""bench/ipfs_pin.py: the trials of bench/ipfs-pin.sh. Pins per second into
Kubo: one document per /api/v0/add request (the reference: what the
ipfs-upload stage did before it pinned a poll batch with one add) beside
several documents per request, with the options the stage uses
(cid-version=1, raw-leaves, pin, sha2-256, chunker=size-262144).

Then the stage's own IPFS client (tests/zl-ipfs-pin, ZL_IPFS_PIN_BIN),
calls of 100 documents as a poll batch, with a concurrency bound per
provider and gateway of 1 (the reference: one request after another, the
stage before issue 19) beside BENCH_IPFS_PIN_CONCURRENCY: against a stand-in
Pinning Service API that holds each pin BENCH_IPFS_PIN_DELAY_MS (a remote
provider's round trip; no read-back), and against this run's Kubo with every
document read back through its gateway.

Documents are ~700-byte metadata-like JSON, unique per trial (so Kubo
stores new blocks every time, as in production). Rounds are interleaved
(1, 10, 50 per request, then again), medians reported.

Usage: python3 bench/ipfs_pin.py N ROUNDS [OUT_DIR]
  (ZL_IPFS_API_URL from `deploy/local/services env`); with OUT_DIR it writes
  ipfs-pin.json and ipfs-pin.md there, else prints each trial.
"""
import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

API = os.environ.get("ZL_IPFS_API_URL", "http://127.0.0.1:5001").rstrip("/")
OPTS = "cid-version=1&raw-leaves=true&pin=true&hash=sha2-256&chunker=size-262144&progress=false"
PER_REQUEST = (1, 10, 50)
ADD_TIMEOUT_S = 60
GATEWAY = os.environ.get("ZL_IPFS_GATEWAY_URLS", "http://127.0.0.1:8080").split(",")[0].rstrip("/")
PIN_BIN = os.environ.get("ZL_IPFS_PIN_BIN", "")
DELAY_MS = int(os.environ.get("BENCH_IPFS_PIN_DELAY_MS", "50"))
CONCURRENCY = int(os.environ.get("BENCH_IPFS_PIN_CONCURRENCY", "8"))
CALL_DOCS = 100          # documents per zl_ipfs_pin_many call (ZL_IPFS_BATCH_MAX)
STAND_IN_DOCS_MAX = 200  # a bound of 1 costs DELAY_MS each: keep a trial short
CLIENT_TIMEOUT_S = 300


class DelayingPsa:
    """A Pinning Service API stand-in: POST /pins answers "pinned" for the
    requested CID after DELAY_MS, as many at once as it is sent."""

    def __init__(self, delay_s: float):
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                time.sleep(delay_s)
                body = json.dumps({"requestid": uuid.uuid4().hex, "status": "pinned",
                                   "created": "2026-12-06T00:00:00Z", "pin": {"cid": req["cid"]},
                                   "delegates": []}).encode()
                self.send_response(202)  # the spec's "accepted", already pinned here
                for k, v in (("Content-Type", "application/json"), ("Content-Length", str(len(body)))):
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def client_trial(providers: str, gateways: str, bound: int, n: int) -> float:
    """Pins/s of n fresh documents through the stage's client, both bounds
    set to bound."""
    r = subprocess.run([PIN_BIN, providers, gateways, str(bound), str(bound), str(n), str(CALL_DOCS)],
                       capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)
    if r.returncode != 0:
        raise RuntimeError(f"zl-ipfs-pin failed ({r.returncode}): {r.stderr[-500:]}")
    got = json.loads(r.stdout)
    assert got["ok"] == n, got
    return got["pins_per_s"]


def doc(i: int) -> bytes:
    tx = "0x" + uuid.uuid4().hex + uuid.uuid4().hex
    return json.dumps({"name": f"zeroloss deposit receipt 31337:{tx}:{i}", "description": "bench",
                       "image": "ipfs://bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa",
                       "attributes": [{"trait_type": "amount", "value": str(10 ** 18 + i)}]},
                      separators=(",", ":")).encode()


def add(files: list[bytes]) -> int:
    boundary = uuid.uuid4().hex
    parts = []
    for i, data in enumerate(files):
        parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d{i}.json\"\r\n"
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"{API}/api/v0/add?{OPTS}", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=ADD_TIMEOUT_S) as r:
        return len([line for line in r.read().splitlines() if b'"Hash"' in line])


def trial(n: int, per_request: int) -> float:
    """Pins/s of n fresh documents, per_request documents per add."""
    docs = [doc(i) for i in range(n)]
    start = time.monotonic()
    done = 0
    for i in range(0, n, per_request):
        done += add(docs[i:i + per_request])
    assert done == n, (done, n)
    return n / (time.monotonic() - start)


def client_rounds(n: int, rounds: int) -> dict[str, list[float]]:
    """The client's trials, "<target> <bound>" -> pins/s per round."""
    stand_in = DelayingPsa(DELAY_MS / 1000)
    targets = {"stand-in": (f"psa={stand_in.url}", "", min(n, STAND_IN_DOCS_MAX)),
               "kubo": (f"kubo={API}", GATEWAY, n)}
    rates: dict[str, list[float]] = {f"{t} {b}": [] for t in targets for b in (1, CONCURRENCY)}
    try:
        for r in range(rounds):
            for t, (providers, gateways, docs) in targets.items():
                for b in (1, CONCURRENCY):
                    rates[f"{t} {b}"].append(round(client_trial(providers, gateways, b, docs), 1))
                    print(f"bench: ipfs-pin: round {r + 1}: client, {t:>8}, bound {b:>2}: "
                          f"{rates[f'{t} {b}'][-1]:8.1f} pins/s ({docs} documents)", file=sys.stderr, flush=True)
    finally:
        stand_in.stop()
    return rates


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    out = sys.argv[3] if len(sys.argv) > 3 else None
    rates: dict[int, list[float]] = {p: [] for p in PER_REQUEST}
    for r in range(rounds):
        for per in PER_REQUEST:
            rates[per].append(round(trial(n, per), 1))
            print(f"bench: ipfs-pin: round {r + 1}: {per:>3} per request: {rates[per][-1]:8.1f} pins/s ({n} documents)",
                  file=sys.stderr, flush=True)
    client = client_rounds(n, rounds)
    if out is None:
        return 0
    ref = statistics.median(rates[1])
    res = {"n": n, "rounds": rounds, "api": API, "pins_per_s": {str(p): v for p, v in rates.items()},
           "median": {str(p): statistics.median(v) for p, v in rates.items()},
           "client": {"delay_ms": DELAY_MS, "concurrency": CONCURRENCY, "call_docs": CALL_DOCS,
                      "pins_per_s": client, "median": {k: statistics.median(v) for k, v in client.items()}}}
    json.dump(res, open(os.path.join(out, "ipfs-pin.json"), "w"), indent=2, sort_keys=True)
    md = ["## ipfs-pin", "",
          f"Pins per second into this run's Kubo (offline, loopback), {n} fresh ~700-byte metadata documents per "
          f"trial, the ipfs-upload stage's add options; {rounds} interleaved rounds. Reference: one document per "
          "add request (the stage before it pinned a poll batch with one add).", "",
          "| documents per add | median pins/s | min–max | × one per add |", "|---:|---:|---:|---:|"]
    for p, v in rates.items():
        md.append(f"| {p} | {statistics.median(v):,.1f} | {min(v):,.1f}–{max(v):,.1f} |"
                  f" {statistics.median(v) / ref:.2f} |")
    md += ["", f"The stage's IPFS client (`zl_ipfs_pin_many`, `tests/zl-ipfs-pin`), calls of {CALL_DOCS} "
           f"documents as one poll batch, pin_k 1. Stand-in: a local Pinning Service API holding each pin "
           f"{DELAY_MS} ms (a remote provider's round trip), {min(n, STAND_IN_DOCS_MAX)} documents, no read-back. "
           f"Kubo: {n} documents, one add request per call, each document read back through Kubo's gateway. "
           f"Reference: both bounds 1 (one request after another, the stage before issue 19), same run, "
           "interleaved. Other helpers' builds and tests shared the 2 cores during this run.", "",
           "| provider | bound per provider and gateway | median pins/s | min–max | × bound 1 |",
           "|---|---:|---:|---:|---:|"]
    for target in ("stand-in", "kubo"):
        cref = statistics.median(client[f"{target} 1"])
        for bound in (1, CONCURRENCY):
            v = client[f"{target} {bound}"]
            md.append(f"| {target} | {bound} | {statistics.median(v):,.1f} | {min(v):,.1f}–{max(v):,.1f} |"
                      f" {statistics.median(v) / cref:.2f} |")
    open(os.path.join(out, "ipfs-pin.md"), "w").write("\n".join(md) + "\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

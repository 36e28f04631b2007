#!/usr/bin/env python3
"""bench/ipfs_pin.py: the trials of bench/ipfs-pin.sh. Pins per second into
Kubo: one document per /api/v0/add request (the reference: what the
ipfs-upload stage did before it pinned a poll batch with one add) beside
several documents per request, with the options the stage uses
(cid-version=1, raw-leaves, pin, sha2-256, chunker=size-262144).

Documents are ~700-byte metadata-like JSON, unique per trial (so Kubo
stores new blocks every time, as in production). Rounds are interleaved
(1, 10, 50 per request, then again), medians reported.

Usage: python3 bench/ipfs_pin.py N ROUNDS [OUT_DIR]
  (ZL_IPFS_API_URL from `deploy/local/services env`); with OUT_DIR it writes
  ipfs-pin.json and ipfs-pin.md there, else prints each trial.
"""
import json
import os
import statistics
import sys
import time
import urllib.request
import uuid

API = os.environ.get("ZL_IPFS_API_URL", "http://127.0.0.1:5001").rstrip("/")
OPTS = "cid-version=1&raw-leaves=true&pin=true&hash=sha2-256&chunker=size-262144&progress=false"
PER_REQUEST = (1, 10, 50)
ADD_TIMEOUT_S = 60


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
    if out is None:
        return 0
    ref = statistics.median(rates[1])
    res = {"n": n, "rounds": rounds, "api": API, "pins_per_s": {str(p): v for p, v in rates.items()},
           "median": {str(p): statistics.median(v) for p, v in rates.items()}}
    json.dump(res, open(os.path.join(out, "ipfs-pin.json"), "w"), indent=2, sort_keys=True)
    md = ["## ipfs-pin", "",
          f"Pins per second into this run's Kubo (offline, loopback), {n} fresh ~700-byte metadata documents per "
          f"trial, the ipfs-upload stage's add options; {rounds} interleaved rounds. Reference: one document per "
          "add request (the stage before it pinned a poll batch with one add).", "",
          "| documents per add | median pins/s | min–max | × one per add |", "|---:|---:|---:|---:|"]
    for p, v in rates.items():
        md.append(f"| {p} | {statistics.median(v):,.1f} | {min(v):,.1f}–{max(v):,.1f} |"
                  f" {statistics.median(v) / ref:.2f} |")
    open(os.path.join(out, "ipfs-pin.md"), "w").write("\n".join(md) + "\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

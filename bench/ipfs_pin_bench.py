#!/usr/bin/env python3
"""Pins per second into Kubo: one document per /api/v0/add request versus
several documents per request, with the options the ipfs-upload stage uses
(cid-version=1, raw-leaves, pin, sha2-256, chunker=size-262144).

Usage: eval "$(deploy/local/services env)"; python3 bench/ipfs_pin_bench.py [N]
Documents are ~700-byte metadata-like JSON, unique per run (so Kubo stores
new blocks every time, as in production).
"""
import json
import os
import sys
import time
import urllib.request
import uuid

API = os.environ.get("ZL_IPFS_API_URL", "http://127.0.0.1:5001")
OPTS = "cid-version=1&raw-leaves=true&pin=true&hash=sha2-256&chunker=size-262144&progress=false"


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
    with urllib.request.urlopen(req, timeout=60) as r:
        return len([line for line in r.read().splitlines() if b'"Hash"' in line])


def run(n: int, per_request: int) -> float:
    docs = [doc(i) for i in range(n)]
    start = time.monotonic()
    done = 0
    for i in range(0, n, per_request):
        done += add(docs[i:i + per_request])
    assert done == n, (done, n)
    return n / (time.monotonic() - start)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    for per in (1, 10, 50):
        print(f"{per:>3} per request: {run(n, per):8.1f} pins/s ({n} documents)")

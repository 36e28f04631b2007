"""The ipfs-upload stage's concurrent pins and read-backs (issue 19): each
provider and each gateway is a bulkhead of its own, bounded by
ZL_IPFS_PROVIDER_CONCURRENCY_MAX / ZL_IPFS_GATEWAY_CONCURRENCY_MAX.

The stand-in is TEST CODE: a Pinata-compatible pinning service and an IPFS
gateway in one local HTTP server that holds each metadata pin (and each
read-back) for a while and records how many it held at once. No assertion
here is about speed: the bound is checked by the concurrency the stand-in
observes, never by a duration.
"""
import base64
import hashlib
import http.server
import json
import re
import threading
import time

import pytest

from conftest import need_env
from ipfs_helpers import IMAGE_FILE, IpfsPipeline, insert_verified_rows, rows, verified_deposit
from runtime_helpers import wait_until
from zlharness.stage import new_stage_pipeline


def raw_cid(data: bytes) -> str:
    """CIDv1, raw codec, sha2-256, base32: what cid.h computes for one block."""
    digest = bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(digest).decode().lower().rstrip("=")


def multipart_file(content_type: str, body: bytes) -> tuple[str, bytes]:
    """The file name and bytes of the part named "file"."""
    boundary = re.search(r"boundary=\"?([^\";]+)", content_type).group(1).encode()
    for part in body.split(b"--" + boundary):
        head, _, data = part.partition(b"\r\n\r\n")
        if b'name="file"' in head:
            name = re.search(rb'filename="([^"]*)"', head).group(1).decode()
            return name, data[:-2] if data.endswith(b"\r\n") else data
    raise ValueError("no file part")


class SlowPinata:
    """TEST CODE: pinFileToIPFS and GET /ipfs/<cid> of what it pinned. Each
    metadata pin (a `.json` file; the image passes at once) is held
    `pin_delay_s`, or until release() when `stall`; each read-back
    `gateway_delay_s`. `max_pins`/`max_reads` are the most it held at once."""

    def __init__(self, pin_delay_s: float = 0.0, gateway_delay_s: float = 0.0, stall: bool = False):
        me = self
        self.lock = threading.Lock()
        self.released = threading.Event()
        if not stall:
            self.released.set()
        self.pin_delay_s, self.gateway_delay_s = pin_delay_s, gateway_delay_s
        self.stored: dict[str, bytes] = {}
        self.pins = self.max_pins = self.pinned = 0
        self.reads = self.max_reads = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status: int, body: bytes, ctype: str = "application/json"):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if not self.path.startswith("/pinning/pinFileToIPFS"):
                    return self.answer(404, b"{}")
                name, data = multipart_file(self.headers["Content-Type"], body)
                if name.endswith(".json"):
                    with me.lock:
                        me.pins += 1
                        me.max_pins = max(me.max_pins, me.pins)
                    try:
                        me.released.wait(30)
                        time.sleep(me.pin_delay_s)
                    finally:
                        with me.lock:
                            me.pins -= 1
                            me.pinned += 1
                cid = raw_cid(data)
                with me.lock:
                    me.stored[cid] = data
                self.answer(200, json.dumps({"IpfsHash": cid, "PinSize": len(data),
                                             "Timestamp": "2026-12-06T00:00:00Z"}).encode())

            def do_GET(self):
                cid = self.path.rsplit("/", 1)[-1]
                with me.lock:
                    data = me.stored.get(cid)
                    me.reads += 1
                    me.max_reads = max(me.max_reads, me.reads)
                try:
                    time.sleep(me.gateway_delay_s)
                finally:
                    with me.lock:
                        me.reads -= 1
                if data is None:
                    return self.answer(404, b"not found", "text/plain")
                self.answer(200, data, "application/octet-stream")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def release(self) -> None:
        self.released.set()

    def stop(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pipeline(tmp_path):
    jwt = tmp_path / "pinata.jwt"
    jwt.write_text("test-jwt\n")
    jwt.chmod(0o600)  # the stage refuses a secret others can read
    p = new_stage_pipeline(IpfsPipeline, tmp_path, "ipfs-upload", ZL_OUTAGE_BASE_MS="100",
                           ZL_IPFS_PROVIDERS=f"kubo={need_env('ZL_IPFS_API_URL')}",
                           ZL_IPFS_PINATA_JWT_FILE=str(jwt), ZL_NFT_IMAGE_FILE=str(IMAGE_FILE),
                           ZL_BATCH_SIZE_MAX="50", ZL_BATCH_FILL_MS="1500")
    yield p
    p.stop_all()


def all_pinned(ids):
    return lambda: (lambda r: len(r) == len(ids) and all(v["state"] == "pinned" for v in r.values()))(rows(ids))


def test_a_batch_pins_and_reads_back_up_to_each_bound_and_never_more(pipeline):
    """Guards against pinning a poll batch one document after another (N
    pins cost N delays) and against a bound that is not kept: with a
    provider that holds each pin 0.3 s, the stand-in sees exactly
    ZL_IPFS_PROVIDER_CONCURRENCY_MAX pins at once at its busiest, never
    more, and its gateway side exactly ZL_IPFS_GATEWAY_CONCURRENCY_MAX
    read-backs; each deposit still ends pinned under its own CID."""
    stand_in = SlowPinata(pin_delay_s=0.3, gateway_delay_s=0.3)
    try:
        deposits = [verified_deposit(amount=str(10 ** 18 + i)) for i in range(24)]
        ids = [d["deposit_id"] for d in deposits]
        insert_verified_rows(deposits)
        pipeline.produce(deposits)
        pipeline.start("w", ZL_IPFS_PROVIDERS=f"pinata={stand_in.url}", ZL_IPFS_GATEWAY_URLS=stand_in.url,
                       ZL_IPFS_PROVIDER_CONCURRENCY_MAX="4", ZL_IPFS_GATEWAY_CONCURRENCY_MAX="3")
        wait_until(all_pinned(ids), 90, "every deposit pinned")
        assert stand_in.max_pins == 4, f"expected at most and at least 4 pins at once, saw {stand_in.max_pins}"
        assert stand_in.max_reads == 3, f"expected at most and at least 3 read-backs at once, saw {stand_in.max_reads}"
        got = rows(ids)
        assert len({r["cid"] for r in got.values()}) == len(ids), "two deposits share a CID"
        for r in got.values():
            assert r["cid"] in stand_in.stored and r["uri"] == "ipfs://" + r["cid"], r
        assert pipeline.dlq_headers() == []
    finally:
        stand_in.stop()


def test_a_stalled_provider_holds_only_its_own_bound_not_the_other_providers_pins(pipeline):
    """Guards against one stalled provider holding every pin of the batch
    (the bulkhead): with ZL_IPFS_PIN_K=2, while the first provider holds
    its metadata pins the second pins every document of the batch, and the
    stalled one never has more than its bound in flight. Once it answers,
    each deposit is pinned on both and moves on."""
    stalled = SlowPinata(stall=True)
    fast = SlowPinata()
    try:
        deposits = [verified_deposit(amount=str(10 ** 18 + i)) for i in range(12)]
        ids = [d["deposit_id"] for d in deposits]
        insert_verified_rows(deposits)
        pipeline.produce(deposits)
        pipeline.start("w", ZL_IPFS_PROVIDERS=f"pinata={stalled.url},pinata={fast.url}", ZL_IPFS_PIN_K="2",
                       ZL_IPFS_GATEWAY_URLS=fast.url, ZL_IPFS_PROVIDER_CONCURRENCY_MAX="3")
        wait_until(lambda: stalled.pins == 3, 30, "the stalled provider holding its bound of pins")
        wait_until(lambda: fast.pinned == len(ids), 20, "the other provider pinning every document meanwhile")
        assert stalled.pinned == 0 and stalled.max_pins == 3, (stalled.pinned, stalled.max_pins)
        assert rows(ids)[ids[0]]["state"] == "verified", "pinned with one of two providers"
        stalled.release()
        wait_until(all_pinned(ids), 90, "every deposit pinned once the stalled provider answers")
        assert stalled.max_pins == 3, f"the stalled provider had {stalled.max_pins} pins at once, bound 3"
        assert pipeline.dlq_headers() == []
    finally:
        stalled.stop()
        fast.stop()

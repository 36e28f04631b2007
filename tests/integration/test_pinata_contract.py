"""CONTRACT TEST of the ipfs-upload stage's Pinata adapter.

Pinata cannot be reached from this machine, so a local HTTP capture server
stands in for it. It is not a mock of our code: it checks each request
exactly as Pinata documents it (POST /pinning/pinFileToIPFS, header
`Authorization: Bearer <JWT>`, multipart/form-data with the part `file` and
the JSON parts `pinataMetadata` {"name"} and `pinataOptions` {"cidVersion":1};
GET /data/testAuthentication; DELETE /pinning/unpin/<cid> with no body),
refuses anything else with 400, and plays back Pinata's documented answers:
{"IpfsHash","PinSize","Timestamp"}, 200 "OK" for an unpin, 400 with reason
CURRENT_USER_HAS_NOT_PINNED_CID for a CID the account does not pin, 401 for
a bad key and 429 when rate limited. It also serves what it stored under
/ipfs/<cid>, as a Pinata dedicated gateway does, so the retrievability check
runs too. The real Kafka and PostgreSQL are used; the CID it returns is the
one the real Kubo CLI computes for the uploaded bytes.
"""
import email.parser
import email.policy
import http.server
import json
import os
import threading
import uuid
from pathlib import Path

import pytest

from conftest import need_env
from ipfs_helpers import IMAGE_FILE, IpfsPipeline, KuboCli, insert_verified_rows, rows, verified_deposit
from runtime_helpers import psql, wait_until
from test_ipfs_upload import pipeline  # noqa: F401  (isolated topics and group)
from test_unpin import own_db  # noqa: F401  (a database of the test's own)

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJ6bCI6InRlc3QifQ.c2lnbmF0dXJl"


class PinataCapture:
    def __init__(self, cli: KuboCli, jwt: str = JWT, rate_limited: int = 0):
        self.requests = []     # every request as seen, for the assertions
        self.violations = []   # contract breaches found while serving
        self.store = {}        # cid -> bytes
        self.pinned = set()    # CIDs pinned and not unpinned
        self.rate_limited = rate_limited
        cap = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, code, obj=None, raw=None, ctype="application/json"):
                body = raw if raw is not None else json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def authorised(self):
                if self.headers.get("Authorization") != f"Bearer {jwt}":
                    self.answer(401, {"error": {"reason": "INVALID_CREDENTIALS",
                                                "details": "Invalid/expired credentials"}})
                    return False
                return True

            def do_GET(self):
                cap.requests.append({"method": "GET", "path": self.path, "headers": dict(self.headers)})
                if self.path.startswith("/ipfs/"):
                    data = cap.store.get(self.path[len("/ipfs/"):])
                    return self.answer(200, raw=data, ctype="application/octet-stream") if data is not None \
                        else self.answer(404, {"error": "not found"})
                if self.path == "/data/testAuthentication":
                    if self.authorised():
                        self.answer(200, {"message": "Congratulations! You are communicating with the Pinata API!"})
                    return
                self.answer(404, {"error": "no such route"})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                req = {"method": "POST", "path": self.path, "headers": dict(self.headers), "parts": {}}
                cap.requests.append(req)
                if self.path != "/pinning/pinFileToIPFS":
                    cap.violations.append(f"POST to {self.path}")
                    return self.answer(404, {"error": "no such route"})
                if not self.authorised():
                    return
                if cap.rate_limited > 0:
                    cap.rate_limited -= 1
                    return self.answer(429, {"error": {"reason": "RATE_LIMITED",
                                                       "details": "Too many requests"}})
                ctype = self.headers.get("Content-Type", "")
                if not ctype.startswith("multipart/form-data; boundary="):
                    cap.violations.append(f"Content-Type {ctype!r}")
                    return self.answer(400, {"error": "expected multipart/form-data"})
                msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                    b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
                for part in msg.iter_parts():
                    name = part.get_param("name", header="content-disposition")
                    req["parts"][name] = {"filename": part.get_filename(),
                                          "data": part.get_payload(decode=True)}
                problems = []
                if set(req["parts"]) != {"file", "pinataMetadata", "pinataOptions"}:
                    problems.append(f"parts {sorted(req['parts'])}")
                else:
                    if not req["parts"]["file"]["filename"]:
                        problems.append("file part without a filename")
                    meta = json.loads(req["parts"]["pinataMetadata"]["data"])
                    if not isinstance(meta.get("name"), str) or not meta["name"]:
                        problems.append(f"pinataMetadata {meta}")
                    if json.loads(req["parts"]["pinataOptions"]["data"]) != {"cidVersion": 1}:
                        problems.append("pinataOptions is not {\"cidVersion\":1}")
                if problems:
                    cap.violations.extend(problems)
                    return self.answer(400, {"error": "; ".join(problems)})
                data = req["parts"]["file"]["data"]
                cid = cli.cid(data)
                cap.store[cid] = data
                cap.pinned.add(cid)
                self.answer(200, {"IpfsHash": cid, "PinSize": len(data), "Timestamp": "2026-11-23T10:00:00.000Z"})

            def do_DELETE(self):
                length = int(self.headers.get("Content-Length", "0"))
                cap.requests.append({"method": "DELETE", "path": self.path, "headers": dict(self.headers),
                                     "body": self.rfile.read(length) if length else b""})
                prefix = "/pinning/unpin/"
                if not self.path.startswith(prefix) or "/" in self.path[len(prefix):] or length:
                    cap.violations.append(f"DELETE {self.path} with {length} body bytes")
                    return self.answer(400, {"error": "expected DELETE /pinning/unpin/{hashToUnpin}"})
                if not self.authorised():
                    return
                cid = self.path[len(prefix):]
                if cid not in cap.pinned:
                    return self.answer(400, {"error": {"reason": "CURRENT_USER_HAS_NOT_PINNED_CID",
                                                       "details": f"The current user has not pinned the cid: {cid}"}})
                cap.pinned.discard(cid)
                self.answer(200, raw=b"OK", ctype="text/plain")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    return KuboCli(tmp_path_factory.mktemp("kubo-cli-pinata"))


def jwt_file(tmp_path: Path, jwt: str = JWT) -> str:
    p = tmp_path / "pinata.jwt"
    p.write_text(jwt + "\n")
    p.chmod(0o600)
    return str(p)


def start_with_pinata(pipeline, cap, tmp_path, jwt=JWT):
    return pipeline.start("w", ZL_IPFS_PROVIDERS=f"pinata={cap.url}", ZL_IPFS_GATEWAY_URLS=cap.url,
                          ZL_IPFS_PINATA_JWT_FILE=jwt_file(tmp_path, jwt))


def test_contract_pin_file_to_ipfs_request_is_exactly_as_pinata_documents(pipeline, cli, tmp_path):
    """Guards against an adapter Pinata would refuse (wrong path, auth
    header, multipart fields or options) or whose CIDs would differ from
    ours (cidVersion not 1)."""
    cap = PinataCapture(cli)
    try:
        deposits = [verified_deposit() for _ in range(2)]
        ids = [d["deposit_id"] for d in deposits]
        insert_verified_rows(deposits)
        pipeline.produce(deposits)
        start_with_pinata(pipeline, cap, tmp_path)
        wait_until(lambda: all(r["state"] == "pinned" for r in rows(ids).values()), 60, "pinned through Pinata")
        assert cap.violations == []
        pins = [r for r in cap.requests if r["method"] == "POST"]
        assert len(pins) == 3, f"expected the image once and two documents, got {len(pins)} uploads"
        assert pins[0]["parts"]["file"]["data"] == IMAGE_FILE.read_bytes(), "the image was not uploaded first"
        for r in pins:
            assert r["headers"]["Authorization"] == f"Bearer {JWT}"
        got = rows(ids)
        for d in deposits:
            assert got[d["deposit_id"]]["cid"] in cap.store
        # the retrievability check fetched every object back
        fetched = {r["path"][len("/ipfs/"):] for r in cap.requests if r["path"].startswith("/ipfs/")}
        assert fetched == set(cap.store)
        assert pipeline.dlq_headers() == []
    finally:
        cap.stop()


def test_contract_pinata_429_is_retried_not_dead_lettered(pipeline, cli, tmp_path):
    """Guards against rate limiting (HTTP 429, as Pinata documents it) being
    treated as a permanent failure: the deposit is pinned once the limit
    lifts."""
    cap = PinataCapture(cli, rate_limited=2)
    try:
        d = verified_deposit()
        insert_verified_rows([d])
        pipeline.produce([d])
        start_with_pinata(pipeline, cap, tmp_path)
        wait_until(lambda: rows([d["deposit_id"]])[d["deposit_id"]]["state"] == "pinned", 60, "pinned after 429s")
        assert cap.rate_limited == 0, "the 429 answers were never played"
        assert 'provider="0:pinata",outcome="busy"' in pipeline.metrics("w")
        assert pipeline.dlq_headers() == []
    finally:
        cap.stop()


def test_contract_pinata_rejecting_the_jwt_is_an_outage_not_a_dead_letter(pipeline, cli, tmp_path):
    """Guards against a revoked or wrong Pinata key dead-lettering every
    deposit: a 401 means the provider is unusable, so the stage pauses and
    reports not-ready until the key works."""
    cap = PinataCapture(cli)
    try:
        d = verified_deposit()
        insert_verified_rows([d])
        pipeline.produce([d])
        start_with_pinata(pipeline, cap, tmp_path, jwt="not-the-right-key")
        wait_until(lambda: pipeline.ready("w") == 503, 30, "readiness to turn off")
        wait_until(lambda: len([r for r in cap.requests if r["path"] == "/data/testAuthentication"]) > 0, 30,
                   "the outage probe to ask Pinata")
        assert rows([d["deposit_id"]])[d["deposit_id"]]["state"] == "verified"
        assert pipeline.dlq_headers() == []
    finally:
        cap.stop()


def test_contract_unpin_request_is_exactly_as_pinata_documents(own_db, pipeline, cli, tmp_path):
    """Guards against orphaned metadata staying pinned (and paid for) on
    Pinata because the unpin request is not the one Pinata documents
    (DELETE /pinning/unpin/{hashToUnpin}, Bearer JWT), and against a CID
    Pinata no longer holds (CURRENT_USER_HAS_NOT_PINNED_CID) being retried
    for ever instead of counted as done."""
    cap = PinataCapture(cli)
    try:
        d = verified_deposit()
        dep = d["deposit_id"]
        insert_verified_rows([d])
        pipeline.produce([d])
        pipeline.start("w", ZL_IPFS_PROVIDERS=f"pinata={cap.url}", ZL_IPFS_GATEWAY_URLS=cap.url,
                       ZL_IPFS_PINATA_JWT_FILE=jwt_file(tmp_path), ZL_UNPIN_GRACE_MS="1000",
                       ZL_UNPIN_INTERVAL_MS="200")
        wait_until(lambda: rows([dep])[dep]["state"] == "pinned", 60, "pinned through Pinata")
        cid = rows([dep])[dep]["cid"]
        assert cid in cap.pinned
        # detect marks the deposit reorged (its block left the chain).
        psql("UPDATE deposits SET state = 'reorged', updated_at = now() WHERE deposit_id = :'v1'", dep)

        def unpinned_at():
            return psql("SELECT coalesce(unpinned_at::text, 'held') FROM deposits WHERE deposit_id = :'v1'", dep)[0][0]
        wait_until(lambda: unpinned_at() != "held", 30, "the reorged deposit unpinned")
        assert cap.violations == []
        deletes = [r for r in cap.requests if r["method"] == "DELETE"]
        assert [r["path"] for r in deletes] == [f"/pinning/unpin/{cid}"]
        assert deletes[0]["headers"]["Authorization"] == f"Bearer {JWT}"
        assert cid not in cap.pinned
        assert len(cap.pinned) == 1, "the image, which every document shares, stays pinned"

        # As if the pass died before recording it: Pinata answers it does
        # not pin the CID, which counts as done.
        psql("UPDATE deposits SET unpinned_at = NULL WHERE deposit_id = :'v1'", dep)
        wait_until(lambda: unpinned_at() != "held", 30, "recorded again")
        assert 'zl_ipfs_unpins_total{stage="ipfs-unpin",provider="0:pinata",outcome="not_pinned"} 1' in \
            pipeline.metrics("w")
        assert cap.violations == []
    finally:
        cap.stop()

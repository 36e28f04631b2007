"""Orphaned pins (issue 21): a deposit that ends `reorged`, or `dead` with its
dead letter resolved by an operator, after ipfs-upload pinned its metadata
has those pins removed from every provider after ZL_UNPIN_GRACE_MS, once,
recorded on the row; a deposit that may still be minted (minted, a dead
letter not resolved) never loses its pins; a reorged deposit that comes
back after its pins were removed is pinned again.

Against the real Kafka, PostgreSQL and a Kubo daemon of the test's own (so
`pin ls` lists only this test's pins), and, as the second provider, a
Pinning Service API stand-in (TEST CODE, below): no such service is
reachable from here, so it implements the spec's requests the adapter uses
(POST /pins, GET /pins/{requestid}, GET /pins?cid=&status=, DELETE
/pins/{requestid}, Bearer auth) over an in-memory table. Rows are moved to
reorged / minted / dead with the statements detect, mint, the runtime and
the admin API use, as test_admin*.py does. Each test has a database of its
own: an unpin pass acts on every row of its database, and other tests'
rows are not this test's to unpin.
"""
import http.server
import json
import os
import threading
import time
import urllib.parse
import urllib.request
import uuid
from datetime import datetime

import pytest

from ipfs_helpers import IMAGE_FILE, IpfsPipeline, Kubo, insert_verified_rows, kubo_recursive_pins, verified_deposit
from runtime_helpers import psql, wait_until
from zlharness.pg import create_database, drop_database
from zlharness.stage import new_stage_pipeline

PSA_TOKEN = "psa-test-token-0123456789"
GRACE_MS = 4000


class PinningServiceFake:
    """TEST CODE: an IPFS Pinning Service API over a dict. Pins are
    "pinned" at once (the bytes are on the test's Kubo, the first
    provider); every request is recorded."""

    def __init__(self):
        self.pins = {}      # requestid -> PinStatus
        self.requests = []  # (method, path)
        self.down = False   # FAULT INJECTION: answer every DELETE 503, as a service in trouble
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, code, obj=None):
                body = json.dumps(obj).encode() if obj is not None else b""
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def authorised(self):
                fake.requests.append((self.command, self.path))
                if self.headers.get("Authorization") != f"Bearer {PSA_TOKEN}":
                    self.answer(401, {"error": {"reason": "UNAUTHORIZED"}})
                    return False
                return True

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                if not self.authorised():
                    return
                if self.path != "/pins":
                    return self.answer(404, {"error": {"reason": "NOT_FOUND"}})
                rid = uuid.uuid4().hex
                fake.pins[rid] = {"requestid": rid, "status": "pinned", "created": "2026-12-06T10:00:00Z",
                                  "pin": {"cid": body["cid"], "name": body.get("name", "")}, "delegates": []}
                self.answer(202, fake.pins[rid])

            def do_GET(self):
                if not self.authorised():
                    return
                url = urllib.parse.urlsplit(self.path)
                if url.path.startswith("/pins/"):
                    st = fake.pins.get(url.path[len("/pins/"):])
                    return self.answer(200, st) if st else self.answer(404, {"error": {"reason": "NOT_FOUND"}})
                if url.path != "/pins":
                    return self.answer(404, {"error": {"reason": "NOT_FOUND"}})
                q = urllib.parse.parse_qs(url.query)
                cids = set(q.get("cid", [""])[0].split(",")) - {""}
                statuses = set(q.get("status", ["pinned"])[0].split(","))
                limit = int(q.get("limit", ["10"])[0])
                hits = [p for p in fake.pins.values()
                        if (not cids or p["pin"]["cid"] in cids) and p["status"] in statuses]
                self.answer(200, {"count": len(hits), "results": hits[:limit]})

            def do_DELETE(self):
                if not self.authorised():
                    return
                if fake.down:
                    return self.answer(503, {"error": {"reason": "INTERNAL_SERVER_ERROR"}})
                rid = self.path[len("/pins/"):] if self.path.startswith("/pins/") else ""
                if fake.pins.pop(rid, None) is None:
                    return self.answer(404, {"error": {"reason": "NOT_FOUND"}})
                self.answer(202)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def cids(self) -> set[str]:
        return {p["pin"]["cid"] for p in list(self.pins.values())}

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def kubo_pins(k: Kubo) -> set[str]:
    return kubo_recursive_pins(k.api_url)


@pytest.fixture
def own_db(monkeypatch):
    """A fresh migrated database, made the default (ZL_PG_DSN) for the
    test's helpers and the workers it starts: request it before any
    pipeline fixture."""
    name = "zl_unpin_" + uuid.uuid4().hex[:10]
    server = dict(os.environ)  # the shared database's DSN, to drop ours from
    monkeypatch.setenv("ZL_PG_DSN", create_database(name))
    yield
    drop_database(name, env=server)


@pytest.fixture
def kubo(tmp_path):
    k = Kubo(tmp_path)
    k.start()
    yield k
    k.kill()


@pytest.fixture
def psa():
    f = PinningServiceFake()
    yield f
    f.stop()


@pytest.fixture
def pipeline(own_db, tmp_path, kubo, psa):
    token = tmp_path / "psa.token"
    token.write_text(PSA_TOKEN + "\n")
    token.chmod(0o600)
    p = new_stage_pipeline(IpfsPipeline, tmp_path, "ipfs-upload", ZL_BATCH_SIZE_MAX="10", ZL_OUTAGE_BASE_MS="100",
                           ZL_IPFS_PROVIDERS=f"kubo={kubo.api_url},psa={psa.url}", ZL_IPFS_PIN_K="2",
                           ZL_IPFS_PSA_TOKEN_FILE=str(token), ZL_IPFS_GATEWAY_URLS=kubo.gateway_url,
                           ZL_NFT_IMAGE_FILE=str(IMAGE_FILE), ZL_UNPIN_GRACE_MS=str(GRACE_MS),
                           ZL_UNPIN_INTERVAL_MS="300")
    yield p
    p.stop_all()


def unpin_rows(ids: list[str]) -> dict[str, dict]:
    arr = "{" + ",".join(ids) + "}"
    got = psql("SELECT deposit_id, state, coalesce(metadata_cid, ''), coalesce(unpinned_at::text, ''),"
               " coalesce(unpin_error, ''), unpin_attempts FROM deposits WHERE deposit_id = ANY(:'v1'::text[])", arr)
    return {r[0]: {"state": r[1], "cid": r[2], "unpinned_at": r[3], "error": r[4], "attempts": int(r[5])}
            for r in got}


def pin_all(p: IpfsPipeline, n: int) -> tuple[list[dict], dict[str, str]]:
    """n verified deposits pinned by the stage: their events and id ->
    metadata CID."""
    deposits = [verified_deposit() for _ in range(n)]
    ids = [d["deposit_id"] for d in deposits]
    insert_verified_rows(deposits)
    p.produce(deposits)
    p.start("w")
    wait_until(lambda: all(r["state"] == "pinned" for r in unpin_rows(ids).values()), 60, "every deposit pinned")
    return deposits, {i: r["cid"] for i, r in unpin_rows(ids).items()}


# What detect does to a deposit whose block left the chain before it was
# minted (as verify's verify_mark_reorged / detect's det_mark_orphans).
REORG = ("UPDATE deposits SET state = 'reorged', last_error = 'block orphaned', updated_at = now()"
         " WHERE deposit_id = :'v1'")
# What the runtime does when a message dead-letters (state.c, mark_dead).
DIE = ("UPDATE deposits SET state = 'dead', dead_from_state = 'pinned', dlq_topic = 'zl.mint.dlq', dlq_partition = 0,"
       " dlq_offset = :'v2'::bigint, updated_at = now() WHERE deposit_id = :'v1'")
# POST /admin/dead/{id}/resolve (admin.c, adm_resolve).
RESOLVE = ("INSERT INTO dead_resolutions (deposit_id, dlq_topic, dlq_partition, dlq_offset, actor, reason)"
           " SELECT deposit_id, dlq_topic, dlq_partition, dlq_offset, 'test', 'handled by hand' FROM deposits"
           " WHERE deposit_id = :'v1'")
# The mint stage's results on the row (mint_submitted -> minted).
MINT = ("UPDATE deposits SET state = 'minted', nft_contract = '0x' || repeat('44', 20), token_id = 7,"
        " mint_tx_hash = '0x' || repeat('55', 32), updated_at = now() WHERE deposit_id = :'v1'")


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_reorged_and_resolved_dead_deposits_are_unpinned_after_the_grace_period_minted_and_unresolved_never(
        pipeline, kubo, psa):
    """Guards against pins held forever for deposits that will never be
    minted, and against the opposite, worse mistake: removing the metadata
    of a deposit that is minted (its NFT would point at nothing) or that an
    operator may still requeue (a dead letter not resolved)."""
    deposits, cids = pin_all(pipeline, 5)
    ids = [d["deposit_id"] for d in deposits]
    reorged, minted, unresolved, resolved, minted_dead = ids
    assert set(cids.values()) <= kubo_pins(kubo) and set(cids.values()) <= psa.cids()

    psql(REORG, reorged)
    psql(MINT, minted)
    psql(DIE, unresolved, "11")
    psql(DIE, resolved, "12")
    psql(RESOLVE, resolved)
    # A dead row that was minted first, resolved: it has a receipt, its
    # metadata must stay.
    psql(MINT, minted_dead)
    psql(DIE.replace("'pinned'", "'minted'"), minted_dead, "13")
    psql(RESOLVE, minted_dead)
    terminal_at = time.time()

    # Within the grace period nothing is removed.
    time.sleep(GRACE_MS / 2000)
    assert all(r["unpinned_at"] == "" for r in unpin_rows(ids).values()), "unpinned within the grace period"
    assert set(cids.values()) <= kubo_pins(kubo)

    wait_until(lambda: all(unpin_rows([i])[i]["unpinned_at"] for i in (reorged, resolved)), 30,
               "the reorged and the resolved deposit unpinned")
    got = unpin_rows(ids)
    for i in (reorged, resolved):
        assert ts(got[i]["unpinned_at"]) >= terminal_at + GRACE_MS / 1000 - 1, f"{i} unpinned before its grace"
        assert got[i]["error"] == "" and got[i]["attempts"] == 1, got[i]
        assert got[i]["cid"] == cids[i], "the row keeps the CID it released (admin view, audits)"
    held = kubo_pins(kubo)
    assert cids[reorged] not in held and cids[resolved] not in held, "Kubo still lists an unpinned CID"
    assert cids[reorged] not in psa.cids() and cids[resolved] not in psa.cids(), "the pinning service still has it"
    for i in (minted, unresolved, minted_dead):
        assert got[i]["unpinned_at"] == "", f"{got[i]['state']} row {i} was unpinned"
        assert cids[i] in held and cids[i] in psa.cids(), f"{got[i]['state']} row {i} lost a pin"
    # The image every document points at is never unpinned.
    image = psql("SELECT cid FROM ipfs_images WHERE source = :'v1' LIMIT 1", str(IMAGE_FILE))[0][0]
    assert image in held

    # Several passes later, still exactly those two (once each).
    time.sleep(1.5)
    got2 = unpin_rows(ids)
    assert [i for i in ids if got2[i]["unpinned_at"]] == [reorged, resolved]
    assert got2[reorged]["attempts"] == 1 and got2[resolved]["attempts"] == 1
    m = pipeline.metrics("w")
    assert 'zl_ipfs_unpins_total{stage="ipfs-unpin",provider="0:kubo",outcome="removed"} 2' in m, m
    assert 'zl_ipfs_unpins_total{stage="ipfs-unpin",provider="1:psa",outcome="removed"} 2' in m, m
    # The unresolved dead row still holds its pins for no receipt.
    assert 'zl_ipfs_orphaned_pins{stage="ipfs-unpin"} 1' in m, m
    deletes = [path for method, path in psa.requests if method == "DELETE"]
    assert len(deletes) == 2, deletes


def test_an_unpin_cut_short_before_it_was_recorded_is_done_again_harmlessly(pipeline, kubo, psa):
    """Guards against a crash between the providers' answer and the row's
    update leaving a row that can never be recorded: the next pass finds
    nothing pinned, counts that as done, and records it."""
    deposits, cids = pin_all(pipeline, 1)
    dep = deposits[0]["deposit_id"]
    psql(REORG, dep)
    psql("UPDATE deposits SET updated_at = now() - interval '1 hour' WHERE deposit_id = :'v1'", dep)
    wait_until(lambda: unpin_rows([dep])[dep]["unpinned_at"] != "", 30, "the reorged deposit unpinned")
    # As if the first pass died after the providers removed the pins but
    # before its commit: the row says still held.
    psql("UPDATE deposits SET unpinned_at = NULL WHERE deposit_id = :'v1'", dep)
    wait_until(lambda: unpin_rows([dep])[dep]["unpinned_at"] != "", 30, "recorded by the next pass")
    assert unpin_rows([dep])[dep]["attempts"] == 2 and unpin_rows([dep])[dep]["error"] == ""
    m = pipeline.metrics("w")
    assert 'zl_ipfs_unpins_total{stage="ipfs-unpin",provider="0:kubo",outcome="not_pinned"} 1' in m, m
    assert 'zl_ipfs_unpins_total{stage="ipfs-unpin",provider="1:psa",outcome="not_pinned"} 1' in m, m
    assert cids[dep] not in kubo_pins(kubo)


def test_a_reorged_deposit_back_on_the_chain_after_its_pins_were_removed_is_pinned_again(pipeline, kubo, psa):
    """Guards against a deposit re-included after a reorg (detect sets the
    row `detected` again) being minted with a token URI whose content no
    provider holds any more: the stale CID is forgotten and ipfs-upload pins
    the document again. Also a resolved dead letter requeued after its pins
    went (admin requeue would resume it at `pinned`): back to verified."""
    deposits, cids = pin_all(pipeline, 2)
    ids = [d["deposit_id"] for d in deposits]
    back, requeued = ids
    psql(REORG, back)
    psql(DIE, requeued, "21")
    psql(RESOLVE, requeued)
    psql("UPDATE deposits SET updated_at = now() - interval '1 hour' WHERE deposit_id = :'v1'", back)
    psql("UPDATE dead_resolutions SET resolved_at = now() - interval '1 hour' WHERE deposit_id = :'v1'", requeued)
    wait_until(lambda: all(r["unpinned_at"] for r in unpin_rows(ids).values()), 30, "both unpinned")
    assert not set(cids.values()) & kubo_pins(kubo)

    # detect's det_insert for a reorged row seen again on the canonical chain.
    psql("UPDATE deposits SET state = 'detected', block_number = 101, block_hash = '0x' || repeat('cd', 32),"
         " last_error = NULL, last_error_class = NULL, updated_at = now() WHERE deposit_id = :'v1'", back)
    # admin.c's adm_requeue.
    to = psql("UPDATE deposits SET state = coalesce(dead_from_state, 'detected'), dead_from_state = NULL,"
              " attempts = 0, next_attempt_at = NULL, last_error = 'requeued by operator: test',"
              " last_error_class = NULL, updated_at = now() WHERE deposit_id = :'v1' AND state = 'dead'"
              " RETURNING state", requeued)
    assert to == [["verified"]], f"a requeued row whose pins went must resume before ipfs-upload, got {to}"
    got = unpin_rows(ids)
    for i in ids:
        assert got[i]["cid"] == "" and got[i]["unpinned_at"] == "", f"{i} kept a stale CID: {got[i]}"

    # verify passes the re-included deposit on; the requeued one is swept.
    psql("UPDATE deposits SET state = 'verified' WHERE deposit_id = :'v1'", back)
    again = [dict(d, event_id=str(uuid.uuid4())) for d in deposits]
    again[0].update(block_number=101, block_hash="0x" + "cd" * 32)
    pipeline.produce(again)
    wait_until(lambda: all(r["state"] == "pinned" for r in unpin_rows(ids).values()), 60, "pinned again")
    got = unpin_rows(ids)
    held = kubo_pins(kubo)
    for i in ids:
        assert got[i]["cid"] == cids[i], "the same document, the same CID"
        assert got[i]["unpinned_at"] == "" and cids[i] in held and cids[i] in psa.cids(), f"{i} not pinned again"


def test_the_ipfs_upload_role_is_granted_what_the_unpin_pass_does(pipeline, kubo, psa):
    """Guards against a pass that works as the schema's owner but not as
    ipfs-upload's own least-privilege role (009 style, 014's grants): it
    would log permission errors for ever while the pins stay."""
    role = f"zlt_unpin_{uuid.uuid4().hex[:8]}"
    psql(f'CREATE ROLE "{role}" LOGIN IN ROLE zl_ipfs_upload')
    try:
        u = urllib.parse.urlsplit(os.environ["ZL_PG_DSN"])
        dsn = urllib.parse.urlunsplit((u.scheme, f"{role}@{u.netloc.rsplit('@', 1)[-1]}", u.path, u.query,
                                       u.fragment))
        deposits = [verified_deposit() for _ in range(2)]
        ids = [d["deposit_id"] for d in deposits]
        reorged, resolved = ids
        insert_verified_rows(deposits)
        pipeline.produce(deposits)
        pipeline.start("w", ZL_PG_DSN=dsn)
        wait_until(lambda: all(r["state"] == "pinned" for r in unpin_rows(ids).values()), 60, "pinned as the role")
        psql(REORG, reorged)
        psql(DIE, resolved, "31")
        psql(RESOLVE, resolved)
        wait_until(lambda: all(r["unpinned_at"] for r in unpin_rows(ids).values()), 30, "unpinned as the role")
        assert "permission denied" not in pipeline.log("w")
    finally:
        pipeline.stop_all()
        psql(f'DROP ROLE IF EXISTS "{role}"', check=False)


def test_a_provider_failing_the_unpin_leaves_the_row_for_the_next_pass_with_its_reason(pipeline, kubo, psa):
    """Guards against a row recorded unpinned while one provider still holds
    the pin (it would never be asked again), and against a failure that is
    not visible to the operator: the row says why, and the pass tries again
    until every provider confirmed."""
    deposits, cids = pin_all(pipeline, 1)
    dep = deposits[0]["deposit_id"]
    psa.down = True
    psql(REORG, dep)
    psql("UPDATE deposits SET updated_at = now() - interval '1 hour' WHERE deposit_id = :'v1'", dep)
    wait_until(lambda: unpin_rows([dep])[dep]["attempts"] >= 2, 30, "two failed attempts")
    got = unpin_rows([dep])[dep]
    assert got["unpinned_at"] == "", "recorded unpinned while the pinning service still holds it"
    # (after five failures in a row its breaker opens: then "circuit open")
    assert "1:psa down" in got["error"] and ("HTTP 503" in got["error"] or "circuit open" in got["error"]), \
        got["error"]
    assert cids[dep] not in kubo_pins(kubo) and cids[dep] in psa.cids()
    psa.down = False
    wait_until(lambda: unpin_rows([dep])[dep]["unpinned_at"] != "", 30, "unpinned once the service is back")
    got = unpin_rows([dep])[dep]
    assert got["error"] == "" and cids[dep] not in psa.cids()
    m = pipeline.metrics("w")
    assert 'zl_unpin_rows_total{stage="ipfs-unpin",outcome="unpinned"} 1' in m, m
    assert 'zl_ipfs_unpins_total{stage="ipfs-unpin",provider="1:psa",outcome="down"}' in m, m

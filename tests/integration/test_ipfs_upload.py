"""The ipfs-upload stage against the real Kafka, PostgreSQL and Kubo.

Every test isolates itself with its own topic prefix, consumer group and
random deposit ids. Where a test needs an IPFS provider to die, it starts its
own Kubo daemon (never the shared one) and kills it by pid; the one fake is a
proxy that lies about CIDs, used only for that fault.
"""
import signal
import time

import pytest

from conftest import need_env
from ipfs_helpers import (IMAGE_FILE, IpfsPipeline, Kubo, KuboCli, KuboProxy, expected_metadata, free_port,
                          http_get, insert_verified_rows, kubo_recursive_pins, pinned_transitions, rows,
                          verified_deposit)
from runtime_helpers import psql, wait_until
from zlharness.stage import new_stage_pipeline


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    return KuboCli(tmp_path_factory.mktemp("kubo-cli"))


@pytest.fixture(scope="module")
def image_cid(cli):
    return cli.cid(IMAGE_FILE.read_bytes())


@pytest.fixture
def pipeline(tmp_path):
    p = new_stage_pipeline(IpfsPipeline, tmp_path, "ipfs-upload", ZL_BATCH_SIZE_MAX="10", ZL_OUTAGE_BASE_MS="100",
                           ZL_IPFS_PROVIDERS=f"kubo={need_env('ZL_IPFS_API_URL')}",
                           ZL_IPFS_GATEWAY_URLS=need_env("ZL_IPFS_GATEWAY_URLS").split(",")[0],
                           ZL_NFT_IMAGE_FILE=str(IMAGE_FILE), ZL_IPFS_BREAKER_BREAK_MS="500")
    yield p
    p.stop_all()


@pytest.fixture
def own_kubo(tmp_path):
    k = Kubo(tmp_path)
    k.start()
    yield k
    k.kill()


def all_pinned(ids):
    return lambda: (lambda r: len(r) == len(ids) and all(v["state"] == "pinned" for v in r.values()))(rows(ids))


def assert_pinned_exactly_once(p: IpfsPipeline, deposits: list[dict], cli: KuboCli, image_cid: str,
                               gateway: str) -> dict[str, str]:
    """Every deposit pinned once, under the CID Kubo computes for the
    canonical document, retrievable and hash-equal through the gateway, and
    published with that CID. Returns deposit_id -> CID."""
    ids = [d["deposit_id"] for d in deposits]
    got = rows(ids)
    cids = {}
    for d in deposits:
        row = got[d["deposit_id"]]
        want_bytes = expected_metadata(d, image_cid)
        want_cid = cli.cid(want_bytes)
        assert row["cid"] == want_cid, f"{d['deposit_id']}: row CID {row['cid']}, Kubo computes {want_cid}"
        assert row["uri"] == "ipfs://" + want_cid
        status, body = http_get(f"{gateway}/ipfs/{want_cid}")
        assert status == 200 and body == want_bytes, f"gateway gave {status} and {body[:200]!r}"
        cids[d["deposit_id"]] = want_cid
    assert pinned_transitions(ids) == {i: 1 for i in ids}, "a row moved to pinned more than once"
    # The row moves before its output is delivered (commit, then publish).
    wait_until(lambda: {o["deposit_id"] for o in p.outputs()} >= set(ids), 30, "every deposit published downstream")
    outs = [o for o in p.outputs() if o["deposit_id"] in cids]
    assert {o["deposit_id"] for o in outs} == set(ids), "a deposit was never published downstream"
    for o in outs:
        assert o["schema"] == "zl.nft.pinned/v1"
        assert o["metadata_cid"] == cids[o["deposit_id"]] and o["token_uri"] == "ipfs://" + o["metadata_cid"], o
    return cids


def test_verified_deposits_are_pinned_under_the_cid_kubo_computes_and_are_retrievable(pipeline, cli, image_cid):
    """Guards against a local CID that differs from the provider's (every pin
    would dead-letter), metadata that is not canonical, and content that
    cannot be fetched back."""
    # amounts of different lengths: documents of different sizes
    deposits = [verified_deposit(amount=str(10 ** (i % 25) + i)) for i in range(20)]
    insert_verified_rows(deposits)
    pipeline.produce(deposits)
    pipeline.start("w")
    ids = [d["deposit_id"] for d in deposits]
    wait_until(all_pinned(ids), 60, "every deposit pinned")
    gateway = pipeline.env["ZL_IPFS_GATEWAY_URLS"]
    cids = assert_pinned_exactly_once(pipeline, deposits, cli, image_cid, gateway)
    # retrievable is not pinned: unpinned blocks go at Kubo's next garbage collection
    missing = set(cids.values()) - kubo_recursive_pins(need_env("ZL_IPFS_API_URL"))
    assert not missing, f"{len(missing)} documents marked pinned are not in Kubo's pin set: {sorted(missing)[:3]}"
    # the image: pinned, fetchable, remembered
    status, body = http_get(f"{gateway}/ipfs/{image_cid}")
    assert status == 200 and body == IMAGE_FILE.read_bytes()
    assert psql("SELECT tier, bytes FROM ipfs_images WHERE cid = :'v1' AND providers = :'v2'", image_cid,
                pipeline.env["ZL_IPFS_PROVIDERS"]) == [["default", str(len(IMAGE_FILE.read_bytes()))]]
    assert pipeline.dlq_headers() == []


def test_a_poll_batch_is_pinned_with_one_add_request(pipeline, cli, image_cid):
    """Guards against one Kubo add request per deposit (a round trip each to a
    provider that may be far away). A poll batch's documents now go in one
    add request (one per ZL_IPFS_BATCH_MAX), each still checked against its
    own CID, and a deposit twice in the batch is pinned once."""
    proxy = KuboProxy(need_env("ZL_IPFS_API_URL"))
    try:
        deposits = [verified_deposit(amount=str(10 ** (i % 25) + i)) for i in range(40)]
        insert_verified_rows(deposits)
        pipeline.produce(deposits + deposits[:5])  # five redelivered beside their originals
        pipeline.start("w", ZL_IPFS_PROVIDERS=f"kubo={proxy.url}", ZL_BATCH_SIZE_MAX="50", ZL_BATCH_FILL_MS="500")
        ids = [d["deposit_id"] for d in deposits]
        wait_until(all_pinned(ids), 60, "every deposit pinned")
        assert_pinned_exactly_once(pipeline, deposits, cli, image_cid, pipeline.env["ZL_IPFS_GATEWAY_URLS"])
        # 40 documents and the image; one add each was 41 requests
        assert proxy.added >= 41, proxy.added
        assert proxy.adds <= 8, f"{proxy.adds} add requests for {proxy.added} files"
        assert pipeline.dlq_headers() == []
    finally:
        proxy.stop()


def test_redelivery_and_rerun_give_the_identical_cid(pipeline, cli, image_cid):
    """Guards against a retry producing a second, different object: a
    redelivered event republishes the stored CID, and a rerun after the row
    was reset (a crash before the DB update) pins the very same CID."""
    deposits = [verified_deposit() for _ in range(3)]
    ids = [d["deposit_id"] for d in deposits]
    insert_verified_rows(deposits)
    pipeline.produce(deposits)
    pipeline.start("w")
    wait_until(all_pinned(ids), 60, "first pass")
    first = {i: r["cid"] for i, r in rows(ids).items()}

    pipeline.produce(deposits)  # redelivery of the same events
    wait_until(lambda: len([o for o in pipeline.outputs() if o["deposit_id"] in first]) >= 6, 30, "republished")
    for o in pipeline.outputs():
        if o["deposit_id"] in first:
            assert o["metadata_cid"] == first[o["deposit_id"]], "a redelivery published another CID"

    arr = "{" + ",".join(ids) + "}"
    psql("UPDATE deposits SET state = 'verified', metadata_cid = NULL, token_uri = NULL"
         " WHERE deposit_id = ANY(:'v1'::text[])", arr)
    pipeline.produce(deposits)
    wait_until(all_pinned(ids), 60, "second pass")
    assert {i: r["cid"] for i, r in rows(ids).items()} == first, "the same deposit got another CID"


def test_provider_returning_another_cid_dead_letters_as_permanent_and_alerts(pipeline):
    """Guards against accepting a pin under a CID that is not the content's:
    the message goes to the DLQ as permanent (never retried into a second
    object) and the mismatch metric counts it."""
    proxy = KuboProxy(need_env("ZL_IPFS_API_URL"), lie_about_metadata=True)
    try:
        d = verified_deposit()
        insert_verified_rows([d])
        pipeline.produce([d])
        pipeline.start("w", ZL_IPFS_PROVIDERS=f"kubo={proxy.url}")
        wait_until(lambda: rows([d["deposit_id"]])[d["deposit_id"]]["state"] == "dead", 60, "the deposit dead")
        dlq = wait_until(lambda: pipeline.dlq_headers(), 30, "a dead letter")
        assert len(dlq) == 1
        assert dlq[0]["zl-dlq-error-class"] == "permanent", dlq[0]
        assert KuboProxy.WRONG in dlq[0]["zl-dlq-error"], dlq[0]["zl-dlq-error"]
        assert dlq[0]["zl-dlq-attempts"] == "1", "a CID mismatch was retried"
        assert 'zl_ipfs_cid_mismatch_total{stage="ipfs-upload",provider="0:kubo"} 1' in pipeline.metrics("w")
        assert rows([d["deposit_id"]])[d["deposit_id"]]["cid"] == ""
        assert pipeline.outputs() == []
    finally:
        proxy.stop()


def test_dead_primary_provider_and_dead_first_gateway_fail_over(pipeline, cli, image_cid):
    """Guards against one IPFS provider or gateway being a single point of
    failure: with the first of each dead, the second takes every pin and
    every check, and nothing is dead-lettered."""
    dead_api, dead_gw = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    gateway = need_env("ZL_IPFS_GATEWAY_URLS").split(",")[0]
    deposits = [verified_deposit() for _ in range(10)]
    ids = [d["deposit_id"] for d in deposits]
    insert_verified_rows(deposits)
    pipeline.produce(deposits)
    pipeline.start("w", ZL_IPFS_PROVIDERS=f"kubo={dead_api},kubo={need_env('ZL_IPFS_API_URL')}",
                   ZL_IPFS_GATEWAY_URLS=f"{dead_gw},{gateway}")
    wait_until(all_pinned(ids), 60, "every deposit pinned through the second provider")
    assert_pinned_exactly_once(pipeline, deposits, cli, image_cid, gateway)
    m = pipeline.metrics("w")
    assert 'provider="0:kubo",outcome="down"' in m, "the dead primary was never tried"
    assert 'provider="1:kubo",outcome="ok"' in m
    assert f'gateway="{dead_gw}",outcome="down"' in m and f'gateway="{gateway}",outcome="ok"' in m
    assert pipeline.dlq_headers() == []


def test_every_provider_down_pauses_without_dead_letters_then_finishes(pipeline, own_kubo, cli, image_cid):
    """Guards against an IPFS outage flooding the DLQ: with every provider
    down the stage pauses and reports not-ready, and when one returns it
    finishes every deposit exactly once."""
    first = [verified_deposit() for _ in range(5)]
    second = [verified_deposit() for _ in range(10)]
    insert_verified_rows(first + second)
    pipeline.produce(first)
    pipeline.start("w", ZL_IPFS_PROVIDERS=f"kubo={own_kubo.api_url}", ZL_IPFS_GATEWAY_URLS=own_kubo.gateway_url,
                   ZL_IPFS_TIMEOUT_MS="3000", ZL_IPFS_GATEWAY_TIMEOUT_MS="3000")
    wait_until(all_pinned([d["deposit_id"] for d in first]), 60, "first batch")
    assert pipeline.ready("w") == 200

    own_kubo.kill()
    try:
        pipeline.produce(second)
        wait_until(lambda: pipeline.ready("w") == 503, 30, "readiness to turn off")
        time.sleep(5)
        assert pipeline.ready("w") == 503
        assert http_get(f"http://127.0.0.1:{pipeline.http_port('w')}/health/live")[0] == 200
        assert pipeline.dlq_headers() == [], "an IPFS outage dead-lettered messages"
        assert all(r["state"] == "verified" for r in rows([d["deposit_id"] for d in second]).values())
    finally:
        own_kubo.start()
    ids = [d["deposit_id"] for d in first + second]
    wait_until(all_pinned(ids), 90, "everything after Kubo returned")
    wait_until(lambda: pipeline.ready("w") == 200, 30, "readiness to return")
    assert pipeline.dlq_headers() == []
    assert_pinned_exactly_once(pipeline, first + second, cli, image_cid, own_kubo.gateway_url)


def test_kill_after_pin_before_db_update_then_restart_pins_once_with_the_same_cid(pipeline, cli, image_cid):
    """Guards against a crash between the pin and the DB update leaving a
    second object, a second state change or a second output: the restart
    pins the same CID, moves each row once and publishes each deposit once."""
    deposits = [verified_deposit() for _ in range(10)]
    ids = [d["deposit_id"] for d in deposits]
    insert_verified_rows(deposits)
    pipeline.produce(deposits)
    doomed = pipeline.start("doomed", ZL_FAULT_POINT="after_side_effect", ZL_FAULT_AFTER="1")
    rc = doomed.wait(timeout=60)
    assert rc == -signal.SIGKILL, f"worker did not die at after_side_effect (rc {rc}): {pipeline.log('doomed')[-2000:]}"
    assert not any(r["state"] == "pinned" for r in rows(ids).values()), "the kill came after the DB update"
    pipeline.start("survivor")
    wait_until(all_pinned(ids), 60, "every deposit pinned after the restart")
    assert_pinned_exactly_once(pipeline, deposits, cli, image_cid, pipeline.env["ZL_IPFS_GATEWAY_URLS"])
    outs = [o["deposit_id"] for o in pipeline.outputs()]
    assert sorted(outs) == sorted(ids), "not exactly one output per deposit"

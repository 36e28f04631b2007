"""ipfs-upload when the database does not match the code: a migration not
applied, or a column gone under a running worker.

pg decides that such a failure is an outage (pg.h: a person must act, the
deposit is fine) and ipfs-upload passes the class on unchanged, so the stage
pauses (ready 503) and nothing is dead-lettered; once the schema is back it
resumes and pins every deposit once. Before issue 16 the same failure was an
outage on one path of the stage and transient (the retry tiers, then the
DLQ) on another.

Each test hides part of the shared schema for its own duration only and puts
it back in a `finally`.
"""
import json
import time
import uuid

from ipfs_helpers import http_get, insert_verified_rows, pinned_transitions, rows, verified_deposit
from runtime_helpers import psql, wait_until
from test_ipfs_upload import all_pinned, pipeline  # noqa: F401 (pipeline is a fixture)

# How long a paused stage must stay paused: longer than ZL_OUTAGE_CAP_MS (1 s
# in the pipeline fixture), so a stage that resumed into the same failure
# would be seen ready at least once.
STAYS_PAUSED_S = 3


def paused(p) -> bool:
    """The stage is in an outage pause: /health/ready says 503 *and* paused.
    A 503 alone may be a stage still starting (its dependencies not yet
    reported), which turns 200 before the first message fails: waiting
    for that 503 made this check race the start."""
    status, body = http_get(f"http://127.0.0.1:{p.http_port('w')}/health/ready")
    try:
        return status == 503 and json.loads(body).get("paused") is True
    except ValueError:
        return False


def assert_paused_without_dead_letters(p, ids: list[str]) -> None:
    wait_until(lambda: paused(p), 30, "the stage to pause")
    deadline = time.monotonic() + STAYS_PAUSED_S
    while time.monotonic() < deadline:
        assert p.ready("w") == 503, "the stage resumed into the same schema failure"
        time.sleep(0.2)
    assert http_get(f"http://127.0.0.1:{p.http_port('w')}/health/live")[0] == 200
    assert p.dlq_headers() == [], "a schema failure dead-lettered messages"
    assert {r["state"] for r in rows(ids).values()} == {"verified"}


def assert_resumed_and_pinned_once(p, ids: list[str]) -> None:
    wait_until(all_pinned(ids), 60, "every deposit pinned once the schema is back")
    wait_until(lambda: p.ready("w") == 200, 30, "readiness to return")
    assert pinned_transitions(ids) == {i: 1 for i in ids}
    assert p.dlq_headers() == []


def test_missing_ipfs_images_migration_pauses_without_dead_letters_then_resumes(pipeline):  # noqa: F811
    """Guards against a migration not applied (ipfs_images missing) sending
    deposits through the retry tiers into the DLQ: the stage pauses, says
    why in its log, and resumes once the table exists."""
    deposits = [verified_deposit() for _ in range(3)]
    ids = [d["deposit_id"] for d in deposits]
    insert_verified_rows(deposits)
    psql("ALTER TABLE ipfs_images RENAME TO ipfs_images_not_migrated")
    try:
        pipeline.produce(deposits)
        pipeline.start("w")
        assert_paused_without_dead_letters(pipeline, ids)
        assert "ipfs_images" in pipeline.log("w"), pipeline.log("w")[-2000:]
    finally:
        psql("ALTER TABLE ipfs_images_not_migrated RENAME TO ipfs_images")
    assert_resumed_and_pinned_once(pipeline, ids)


def test_a_column_gone_under_a_running_worker_pauses_then_resumes(pipeline, tmp_path):  # noqa: F811
    """Guards against a statement that was prepared fine failing later for a
    schema reason (a column renamed by a half-applied migration) being
    retried into the DLQ: the worker pinned a deposit, then a new tier's
    image cannot be remembered (ipfs_images.source is gone); the stage
    pauses instead, and resumes once the column is back."""
    tier_image = tmp_path / "tier.svg"
    tier_image.write_text(f'<svg xmlns="http://www.w3.org/2000/svg"><title>{uuid.uuid4()}</title></svg>\n')
    small, big = verified_deposit(amount="1000"), verified_deposit(amount="5000")
    insert_verified_rows([small, big])
    pipeline.produce([small])
    pipeline.start("w", ZL_NFT_IMAGE_TIERS=f"5000={tier_image}")
    wait_until(all_pinned([small["deposit_id"]]), 60, "the first deposit pinned (statements prepared)")
    psql("ALTER TABLE ipfs_images RENAME COLUMN source TO source_not_migrated")
    try:
        pipeline.produce([big])
        assert_paused_without_dead_letters(pipeline, [big["deposit_id"]])
    finally:
        psql("ALTER TABLE ipfs_images RENAME COLUMN source_not_migrated TO source")
    assert_resumed_and_pinned_once(pipeline, [small["deposit_id"], big["deposit_id"]])
    assert psql("SELECT source FROM ipfs_images WHERE tier = '5000' AND source = :'v1'", str(tier_image)) == [
        [str(tier_image)]]

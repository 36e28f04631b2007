"""zl-replay and the runtime's delay tiers trust nothing a message says about
itself (issue 17), against the real broker and database: a dead letter goes
only to the input of the stage whose DLQ holds it, its replay count is
replay_log's, a poison letter must decode, be keyed by its deposit_id and
match its row, and a retry dated far ahead cannot stop its partition."""
import json
import subprocess
import time
import uuid
from datetime import datetime, timezone

from ops_helpers import (bin_path, insert_rows, make_dead, make_pipeline, new_deposit, pipeline,  # noqa: F401
                         replayed_keys, summary, topic_messages)
from runtime_helpers import Pipeline, kcat, psql, states, wait_until
from zlharness.stage import new_stage_pipeline

YEAR_MS = 365 * 24 * 3600 * 1000


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def produce_letter(topic: str, key: str, value: str, headers: dict[str, str], partition: int | None = None) -> None:
    """One message with the given key, value (one line) and headers."""
    args = ["-P", "-t", topic, "-k", key, "-X", "acks=all"]
    for name, val in headers.items():
        args += ["-H", f"{name}={val}"]
    if partition is not None:
        args += ["-p", str(partition)]
    kcat(*args, data=value + "\n")


def letter_headers(stage: str, original_topic: str, cls: str = "poison", replay_count: str = "0") -> dict[str, str]:
    """The headers the runtime puts on a dead letter, as a forger copies them."""
    return {
        "zl-dlq-stage": stage,
        "zl-dlq-error-class": cls,
        "zl-dlq-error": "crafted",
        "zl-dlq-attempts": "1",
        "zl-dlq-original-topic": original_topic,
        "zl-dlq-original-partition": "0",
        "zl-dlq-original-offset": "0",
        "zl-dlq-failed-at": now_rfc3339(),
        "zl-dlq-replay-count": replay_count,
    }


def replay(p: Pipeline, stage: str, *args: str, **extra_env: str) -> subprocess.CompletedProcess:
    """zl-replay --from-stage stage with the pipeline's settings only: no
    ZL_IN_TOPIC, so the target is what the DLQ's name says."""
    env = dict(p.env, ZL_REPLAY_GROUP_ID=f"zl-replay-{p.prefix}", ZL_REPLAY_RATE="0")
    env.update({k: str(v) for k, v in extra_env.items()})
    return subprocess.run([bin_path("zl-replay"), "--from-stage", stage, *args], env=env, capture_output=True,
                          text=True, timeout=120)


def pinned_event(d: dict) -> dict:
    cid = "bafy" + "a" * 52
    return dict(d, schema="zl.nft.pinned/v1", event_id=str(uuid.uuid4()), confirmations=12, metadata_cid=cid,
                token_uri="ipfs://" + cid)


def test_a_verify_letter_pointing_at_nft_pinned_is_refused_and_sends_nothing(tmp_path):
    """Guards against zl-replay publishing wherever a letter's
    zl-dlq-original-topic header says: a poison letter in verify's DLQ
    naming zl.nft.pinned would hand mint an event verify never passed."""
    p = new_stage_pipeline(Pipeline, tmp_path, "verify", letter="o")
    try:
        d = new_deposit()
        insert_rows([d])
        did = d["deposit_id"]
        pinned = p.prefix + "nft.pinned"
        produce_letter(p.prefix + "verify.dlq", did, json.dumps(pinned_event(d)), letter_headers("verify", pinned))

        out = replay(p, "verify")
        assert out.returncode == 0, out.stdout + out.stderr
        counts = summary(out)
        assert counts.get("misdirected") == 1 and counts["sent"] == 0, out.stdout + out.stderr
        assert "zl-dlq-original-topic says " + pinned in out.stderr, out.stderr
        assert topic_messages(pinned) == [], "the crafted letter reached nft.pinned"
        assert [m for m in topic_messages(p.prefix + "deposits.detected") if m["key"] == did] == [], \
            "the crafted letter reached verify's input"
        assert states([did])[did] == "detected"
        assert psql("SELECT count(*) FROM replay_log WHERE deposit_id = :'v1'", did) == [["0"]]

        # Passed over, not retried on every run; an honest letter behind it
        # (the same deposit's detected event, header naming verify's input)
        # still goes to verify's input: the one topic this DLQ may feed.
        produce_letter(p.prefix + "verify.dlq", did, json.dumps(d),
                       letter_headers("verify", p.prefix + "deposits.detected"))
        out = replay(p, "verify")
        counts = summary(out)
        assert counts.get("misdirected") == 0 and counts["sent"] == 1, out.stdout + out.stderr
        assert [m["key"] for m in topic_messages(p.prefix + "deposits.detected")] == [did]
        assert topic_messages(pinned) == []
    finally:
        p.stop_all()


def test_a_replay_count_header_of_zero_does_not_reset_the_cap(pipeline):
    """Guards against the cap being read from the letter: a dead letter whose
    zl-dlq-replay-count says 0 for a deposit replay_log shows replayed up to
    the cap would circle between its stage and the DLQ again."""
    deps = make_dead(pipeline, 1)
    did = deps[0]["deposit_id"]
    assert [m["headers"]["zl-dlq-replay-count"] for m in pipeline.dlq_messages()] == ["0"]
    for off in (1000, 1001):
        psql("INSERT INTO replay_log (dlq_topic, dlq_partition, dlq_offset, deposit_id, target_topic, status,"
             " replay_count) VALUES (:'v1', 99, :'v2', :'v3', :'v4', 'sent', :'v5')",
             pipeline.dlq_topic, str(off), did, pipeline.in_topic, str(off - 999))
    out = replay(pipeline, "passthrough", ZL_IN_TOPIC=pipeline.in_topic, ZL_REPLAY_COUNT_MAX="2")
    counts = summary(out)
    assert counts["refused"] == 1 and counts["sent"] == 0, out.stdout + out.stderr
    assert "replayed 2 times already" in out.stderr, out.stderr
    assert replayed_keys(pipeline) == []
    assert states([did])[did] == "dead", "a refused replay moved the row"


def test_poison_letters_are_sent_only_when_they_decode_match_their_key_and_their_row(pipeline):
    """Guards against the class header excusing a letter from every check: a
    poison letter that does not decode, whose key is another deposit's, whose
    amount is not its row's, or that names no row was re-published as is."""
    a, b, ghost = new_deposit(), new_deposit(), new_deposit()
    insert_rows([a, b])  # ghost has no row
    ida, idb = a["deposit_id"], b["deposit_id"]
    h = letter_headers("passthrough", pipeline.in_topic)
    produce_letter(pipeline.dlq_topic, ida, "this is not an envelope", h)
    produce_letter(pipeline.dlq_topic, idb, json.dumps(a), h)  # keyed b, says a
    produce_letter(pipeline.dlq_topic, ida, json.dumps(dict(a, amount=str(int(a["amount"]) + 1))), h)
    produce_letter(pipeline.dlq_topic, ghost["deposit_id"], json.dumps(ghost), h)
    produce_letter(pipeline.dlq_topic, ida, json.dumps(a), h)  # the genuine one
    out = replay(pipeline, "passthrough", ZL_IN_TOPIC=pipeline.in_topic)
    assert out.returncode == 0, out.stdout + out.stderr
    counts = summary(out)
    assert counts.get("untrusted") == 3 and counts["row-not-dead"] == 1 and counts["sent"] == 1, \
        out.stdout + out.stderr
    for reason in ("is not a zl.deposits.detected/v1 event", f"its key {idb} is not the envelope's deposit_id",
                   "field amount differs", "no state row"):
        assert reason in out.stderr, (reason, out.stderr)
    sent = [m for m in topic_messages(pipeline.in_topic) if "zl-replayed-from" in m["headers"]]
    assert [m["key"] for m in sent] == [ida], sent
    assert json.loads(sent[0]["value"])["amount"] == a["amount"]
    assert set(states([ida, idb]).values()) == {"detected"}


def test_a_retry_dated_a_year_ahead_does_not_hold_up_the_retries_behind_it(tmp_path):
    """Guards against an unbounded zl-retry-due-at: one retry dated a year
    ahead paused its tier partition for a year, and every retry behind it
    with it."""
    p = make_pipeline(tmp_path, partitions=1)
    try:
        far, *behind = [new_deposit() for _ in range(6)]
        insert_rows([far] + behind)
        tier_topic = p.prefix + "passthrough.retry.1"  # the longest tier: 1000 ms (TEST_TIMINGS)
        now_ms = int(time.time() * 1000)
        for d, due in [(far, now_ms + YEAR_MS)] + [(d, now_ms) for d in behind]:
            produce_letter(tier_topic, d["deposit_id"], json.dumps(d),
                           {"zl-retry-tier": "1", "zl-retry-due-at": str(due), "zl-attempt": "1",
                            "zl-origin-topic": p.in_topic, "zl-origin-partition": "0", "zl-origin-offset": "0"},
                           partition=0)
        p.start("w")
        ids = [d["deposit_id"] for d in behind]
        # Start-up and the group join take a few seconds; the hold is one
        # tier delay (1 s). Unclamped it was a year.
        wait_until(lambda: set(states(ids).values()) == {"verified"}, 30, "the retries behind the far-dated one")
        wait_until(lambda: states([far["deposit_id"]])[far["deposit_id"]] == "verified", 10,
                   "the far-dated retry itself, after its tier's delay")
        metrics = p.metrics("w")
        assert 'zl_retry_due_clamped_total{stage="passthrough"} 1' in metrics, \
            [l for l in metrics.splitlines() if "clamped" in l]
        log = p.log("w")
        assert log.count("beyond the longest tier") == 1, log
        assert p.dlq_messages() == []
    finally:
        p.stop_all()

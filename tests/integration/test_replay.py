"""zl-replay against the real broker and database, with the passthrough test
stage: dead letters go back to the topic they came from, once, with their
replay count raised, and the state rows follow."""
import signal
import time
from collections import Counter

import pytest

from ops_helpers import (make_dead, pipeline, replayed_keys, run_replay, stop, summary,  # noqa: F401
                         topic_messages)
from runtime_helpers import psql, states, wait_until


def test_filters_select_exactly_the_matching_dead_letters(pipeline):
    """Guards against a filtered replay re-publishing dead letters the
    operator did not choose (wrong deposit, class, stage or time)."""
    deps = make_dead(pipeline, 3)
    ids = [d["deposit_id"] for d in deps]
    for args in (["--class", "transient"], ["--stage", "verify"], ["--until", "2000-01-01T00:00:00Z"],
                 ["--since", "2999-01-01T00:00:00Z"], ["--deposit", "31337:0x" + "0" * 64 + ":0"]):
        out = run_replay(pipeline, *args)
        assert out.returncode == 0, out.stderr
        assert summary(out)["sent"] == 0, (args, out.stdout)
    assert replayed_keys(pipeline) == []
    assert set(states(ids).values()) == {"dead"}

    out = run_replay(pipeline, "--deposit", ids[1], "--class", "permanent", "--stage", "passthrough",
                     "--since", "2000-01-01T00:00:00Z")
    assert out.returncode == 0, out.stderr
    assert summary(out)["sent"] == 1, out.stdout + out.stderr
    assert replayed_keys(pipeline) == [ids[1]]
    st = states(ids)
    assert st[ids[1]] == "detected", "the replayed row was not moved back to the state it died in"
    assert st[ids[0]] == "dead" and st[ids[2]] == "dead"

    out = run_replay(pipeline, "--max", "1")
    assert summary(out)["sent"] == 1, out.stdout
    assert len(replayed_keys(pipeline)) == 2


def test_dry_run_sends_nothing_and_moves_nothing(pipeline):
    """Guards against --dry-run publishing or changing rows: an operator uses
    it to look before acting."""
    deps = make_dead(pipeline, 2)
    ids = [d["deposit_id"] for d in deps]
    before = len(topic_messages(pipeline.in_topic))
    out = run_replay(pipeline, "--dry-run")
    assert out.returncode == 0, out.stderr
    assert summary(out)["dry-run"] == 2, out.stdout
    assert "would send" in out.stderr
    assert len(topic_messages(pipeline.in_topic)) == before
    assert set(states(ids).values()) == {"dead"}
    # A dry run does not advance the replay group either: the real run sees them.
    out = run_replay(pipeline)
    assert summary(out)["sent"] == 2, out.stdout


def test_rate_limit_holds_within_ten_percent(pipeline):
    """Guards against a replay flooding a recovering stage: --rate N/s
    spaces the sends."""
    make_dead(pipeline, 21)
    out = run_replay(pipeline, "--rate", "10/s")
    assert summary(out)["sent"] == 21, out.stdout + out.stderr
    msgs = topic_messages_with_ts(pipeline.in_topic)
    stamps = sorted(t for k, t, replayed in msgs if replayed)
    assert len(stamps) == 21
    span_s = (stamps[-1] - stamps[0]) / 1000.0
    expected = 20 / 10.0
    assert abs(span_s - expected) <= 0.1 * expected, f"21 sends at 10/s took {span_s:.2f}s, expected {expected}s"


def topic_messages_with_ts(topic):
    from runtime_helpers import kcat
    out = kcat("-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k\x1f%T\x1f%h\x1e")
    rows = []
    for rec in out.split("\x1e"):
        if rec.strip():
            k, t, h = rec.lstrip("\n").split("\x1f", 2)
            rows.append((k, int(t), "zl-replayed-from=" in h))
    return rows


def test_replay_count_cap_refuses_and_a_message_that_fails_again_returns_with_its_count_raised(pipeline):
    """Guards against a dead letter circling between the DLQ and its stage
    forever, and against a replayed failure losing its history."""
    deps = make_dead(pipeline, 1)
    did = deps[0]["deposit_id"]
    out = run_replay(pipeline, ZL_REPLAY_COUNT_MAX="1")
    assert summary(out)["sent"] == 1, out.stdout
    # The cause is not fixed: the stage fails it again.
    pipeline.start("still-failing", ZL_PT_PERMANENT_USER="poisoned")
    wait_until(lambda: len(pipeline.dlq_messages()) >= 2, 60, "the replayed message back in the DLQ")
    wait_until(lambda: states([did])[did] == "dead", 30, "the row dead again")
    dlq = pipeline.dlq_messages()
    assert [m["headers"]["zl-dlq-replay-count"] for m in dlq] == ["0", "1"], dlq
    assert dlq[1]["headers"].get("zl-attempt") != "3", "stale retry headers survived the replay"
    out = run_replay(pipeline, ZL_REPLAY_COUNT_MAX="1")
    counts = summary(out)
    assert counts["refused"] == 1 and counts["sent"] == 0, out.stdout + out.stderr
    assert states([did])[did] == "dead", "a refused replay moved the row"


@pytest.mark.parametrize("point", ["replay_after_claim", "replay_after_delivery", "replay_after_record"])
def test_replay_killed_midway_and_run_again_sends_each_dead_letter_once(pipeline, point):
    """Guards against a crashed replay losing dead letters (a row moved out
    of dead whose message was never sent) or sending them twice when the
    operator runs it again."""
    deps = make_dead(pipeline, 8)
    ids = [d["deposit_id"] for d in deps]
    out = run_replay(pipeline, ZL_FAULT_POINT=point, ZL_FAULT_AFTER="3")
    assert out.returncode == -signal.SIGKILL, f"replay did not die at {point}: {out.returncode} {out.stderr}"
    out = run_replay(pipeline)
    assert out.returncode == 0, out.stderr
    counts = Counter(replayed_keys(pipeline))
    assert set(counts) == set(ids), f"{len(set(ids) - set(counts))} dead letters never replayed"
    twice = {k: v for k, v in counts.items() if v != 1}
    if point == "replay_after_delivery":
        # The one documented window: delivered, not yet recorded. At most the
        # message in flight is sent again, and the stage's CAS absorbs it.
        assert sum(twice.values()) - len(twice) <= 1, twice
    else:
        assert twice == {}, f"sent twice after a kill at {point}: {twice}"
    assert set(states(ids).values()) == {"detected"}
    rows = psql("SELECT count(*) FROM replay_log WHERE dlq_topic = :'v1' AND status = 'sent'", pipeline.dlq_topic)
    assert rows == [["8"]]

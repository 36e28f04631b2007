"""The stage runtime's guarantees, proved with the passthrough test stage
against the real Kafka and PostgreSQL.

The passthrough stage's side effect is not idempotent on purpose (pt_effects.n
is incremented in the CAS transaction), so "applied exactly once" is visible
as n = 1 for every deposit.
"""
import os
import re
import signal
import subprocess
import time
import uuid

import pytest

from conftest import need_env, services
from zlharness.kafka import consume, headers
from runtime_helpers import Pipeline, effects, insert_rows, new_deposit, psql, states, wait_until
from zlharness.stage import new_stage_pipeline

FAULT_POINTS = ["after_decode", "after_side_effect", "after_db_commit", "before_produce",
                "after_produce_before_offset_store"]


@pytest.fixture
def pipeline(tmp_path):
    # A group per test (new_stage_pipeline): killed workers of one test
    # must not slow the next test's rebalances until their sessions time out.
    p = new_stage_pipeline(Pipeline, tmp_path, "passthrough", ZL_BATCH_SIZE_MAX="10")
    yield p
    p.stop_all()


def all_in_state(ids, state):
    return lambda: all(s == state for s in states(ids).values()) and len(states(ids)) == len(ids)


def assert_exactly_once(p: Pipeline, ids: list[str]):
    eff = effects(ids)
    assert sorted(eff) == sorted(ids), f"{len(set(ids) - set(eff))} deposits never applied"
    doubled = {k: v for k, v in eff.items() if v != 1}
    assert doubled == {}, f"applied more than once: {doubled}"
    # The row moves before its output is delivered (commit, then publish):
    # give the last publication a moment instead of racing it.
    try:
        wait_until(lambda: set(ids) <= set(p.output_deposit_ids()), 30, "every deposit published downstream")
    except AssertionError:
        pass  # reported precisely below
    published = set(p.output_deposit_ids())
    missing = set(ids) - published
    assert missing == set(), f"{len(missing)} deposits never published downstream"


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_kill_at_fault_point_then_restart_applies_each_deposit_once(pipeline, point):
    """Guards against loss or double effect when a worker dies between any two
    steps of the stage contract (decode, side effect, DB commit, produce,
    offset store)."""
    deposits = [new_deposit() for _ in range(40)]
    ids = [d["deposit_id"] for d in deposits]
    insert_rows(deposits)
    pipeline.produce(deposits)

    doomed = pipeline.start("doomed", ZL_FAULT_POINT=point, ZL_FAULT_AFTER="2")
    rc = doomed.wait(timeout=60)
    assert rc == -signal.SIGKILL, f"worker did not die at {point} (rc {rc}): {pipeline.log('doomed')[-2000:]}"

    pipeline.start("survivor")
    wait_until(all_in_state(ids, "verified"), 60, f"every deposit verified after a kill at {point}")
    assert_exactly_once(pipeline, ids)


def test_poison_goes_to_dlq_with_readable_headers_and_partition_keeps_flowing(pipeline):
    """Guards against a bad message crashing the worker or blocking its
    partition, and against DLQ headers operators cannot read with kcat."""
    good = [new_deposit() for _ in range(3)]
    insert_rows(good)
    # One partition, each message keyed by its deposit (a stage refuses any
    # other key as poison).
    pipeline.produce([good[0]], partition=0)
    pipeline.produce_raw("same-partition", "this is not json", partition=0)
    pipeline.produce([good[1]], partition=0)
    bad_schema = new_deposit()
    bad_schema["amount"] = 12.5  # a float amount: never valid
    pipeline.produce([bad_schema], partition=0)
    pipeline.produce([good[2]], partition=0)

    worker = pipeline.start("w")
    ids = [d["deposit_id"] for d in good]
    wait_until(all_in_state(ids, "verified"), 60, "good messages behind poison ones to pass")
    dlq = wait_until(lambda: len(pipeline.dlq_messages()) >= 2 and pipeline.dlq_messages(), 30, "two dead letters")
    assert worker.poll() is None, "worker died on poison"
    assert len(dlq) == 2
    for m in dlq:
        h = m["headers"]
        assert h["zl-dlq-error-class"] == "poison"
        assert h["zl-dlq-stage"] == "passthrough"
        assert h["zl-dlq-original-topic"] == pipeline.in_topic
        assert h["zl-dlq-error"], "a dead letter without a reason"
        assert h["zl-dlq-consumer-group"] == pipeline.env["ZL_GROUP_ID"]
        assert int(h["zl-dlq-original-offset"]) >= 0
        for name in ("zl-dlq-attempts", "zl-dlq-original-partition", "zl-dlq-original-timestamp",
                     "zl-dlq-failed-at", "zl-dlq-replay-count", "traceparent"):
            assert name in h, f"missing header {name}: {h}"
    assert any("amount" in m["headers"]["zl-dlq-error"] for m in dlq), [m["headers"]["zl-dlq-error"] for m in dlq]
    assert_exactly_once(pipeline, ids)


def test_transient_failure_walks_the_delay_tiers_to_the_dlq_without_holding_up_its_partition(pipeline):
    """Guards against one slow message blocking every message behind it, and
    against a message that keeps failing being retried forever."""
    flaky = new_deposit(user_id="flaky")
    normal = [new_deposit() for _ in range(20)]
    insert_rows([flaky] + normal)
    key = flaky["deposit_id"]  # the key a stage accepts: the deposit's own
    pipeline.produce([flaky], partition=0)
    pipeline.produce(normal, partition=0)

    pipeline.start("w", ZL_PT_TRANSIENT_USER="flaky")
    ids = [d["deposit_id"] for d in normal]
    wait_until(all_in_state(ids, "verified"), 30, "messages behind the flaky one")
    assert states([flaky["deposit_id"]])[flaky["deposit_id"]] == "detected", \
        "the flaky message reached its end before the others passed: it was not delayed off the partition"

    wait_until(lambda: states([flaky["deposit_id"]])[flaky["deposit_id"]] == "dead", 30, "the flaky one dead")
    dlq = pipeline.dlq_messages()
    assert [m["key"] for m in dlq] == [key]
    h = dlq[0]["headers"]
    assert h["zl-dlq-error-class"] == "transient"
    assert h["zl-dlq-attempts"] == "3", h  # first try + 2 tiers
    assert h["zl-dlq-original-topic"] == pipeline.in_topic  # not a retry tier: replay goes back here
    assert "injected transient failure" in h["zl-dlq-error"]
    row = psql("SELECT last_error_class, dead_from_state, dlq_topic FROM deposits WHERE deposit_id = :'v1'",
               flaky["deposit_id"])
    assert row == [["transient", "detected", pipeline.dlq_topic]]
    assert_exactly_once(pipeline, ids)


def test_defers_do_not_spend_the_transient_budget(pipeline):
    """Guards against a valid deposit dead-lettered for one timeout after a
    long wait: defers (not yet final) carry a message into the last delay
    tier, and the transient budget was once read from the tier it sat in, so
    its first transient failure went straight to the DLQ. Found as a flaky
    reorg test: verify deferred for confirmations, then met "no receipt yet"
    once while the chain was being reorganised, and the deposit died."""
    waiter = new_deposit(user_id="waiter")
    insert_rows([waiter])
    pipeline.produce([waiter])
    pipeline.start("w", ZL_PT_DEFER_USER="waiter", ZL_PT_DEFERS="3")
    did = waiter["deposit_id"]
    wait_until(lambda: states([did])[did] in ("verified", "dead"), 30, "the waiting deposit settled")
    assert states([did])[did] == "verified", psql("SELECT last_error FROM deposits WHERE deposit_id = :'v1'", did)
    assert pipeline.dlq_messages() == []
    log = pipeline.log("w")
    assert "injected defer 3 of 3" in log and "injected transient failure after 3 defers" in log, \
        "the scenario did not run as designed: three defers, then one transient failure"
    assert_exactly_once(pipeline, [did])


@pytest.mark.parametrize("queued", [True, False], ids=["queue-wait", "fact-wait"])
def test_a_wait_in_the_stages_own_queue_never_spends_the_defers_budget(pipeline, queued):
    """Guards against a backlog dead-lettering valid deposits: mint on Solana
    has ZL_SOLANA_NONCE_ACCOUNTS receipts in flight at once, and the others
    defer until an account is free. Those defers were counted toward
    ZL_DEFERS_MAX, so under load (and in the Solana fault test, after a
    validator restart slowed finality) deposits went to the DLQ for
    waiting their turn. A defer marked queued is not counted; the same
    defers unmarked still are (the control case): 8 defers with a budget of
    3 die there."""
    waiter = new_deposit(user_id="waiter")
    insert_rows([waiter])
    pipeline.produce([waiter])
    pipeline.start("w", ZL_PT_DEFER_USER="waiter", ZL_PT_DEFERS="8", ZL_PT_DEFER_MS="100", ZL_DEFERS_MAX="3",
                   ZL_PT_QUEUED="1" if queued else "0")
    did = waiter["deposit_id"]
    wait_until(lambda: states([did])[did] in ("verified", "dead"), 60, "the waiting deposit settled")
    if not queued:
        assert states([did])[did] == "dead"
        (h,) = [m["headers"] for m in pipeline.dlq_messages()]
        assert h["zl-dlq-error-class"] == "defer", h
        return
    assert states([did])[did] == "verified", psql("SELECT last_error FROM deposits WHERE deposit_id = :'v1'", did)
    assert pipeline.dlq_messages() == []
    log = pipeline.log("w")
    assert "injected defer 8 of 8" in log, "the scenario did not run: eight queue waits"
    assert_exactly_once(pipeline, [did])


def test_a_defer_that_says_how_long_is_rechecked_then_in_the_first_tier(pipeline):
    """Guards against a wait for the next block landing in a long tier: each
    defer stepped one tier on, so a deposit two blocks short of final sat in
    the second tier (10 s by default) and one three blocks short in the
    third (60 s), on a chain with a block a second. A defer that gives its
    estimate (defer_ms: verify's blocks to go, mint's next block) goes to
    the shortest tier covering it, due after that long, however many defers
    came before."""
    waiter = new_deposit(user_id="waiter")
    insert_rows([waiter])
    pipeline.produce([waiter])
    pipeline.start("w", ZL_PT_DEFER_USER="waiter", ZL_PT_DEFERS="3", ZL_PT_DEFER_MS="200")
    did = waiter["deposit_id"]
    wait_until(lambda: states([did])[did] in ("verified", "dead"), 30, "the waiting deposit settled")
    assert states([did])[did] == "verified"
    assert "injected defer 3 of 3" in pipeline.log("w"), "the scenario did not run: three defers"
    # Test tiers: 500 and 1000 ms (runtime_helpers.TEST_TIMINGS).
    tier = {}
    for i in (0, 1):
        recs = consume(f"{pipeline.prefix}passthrough.retry.{i}", "%T|%h\x1e")
        tier[i] = [r.strip() for r in recs.split("\x1e") if r.strip()]
    defers = []
    for rec in tier[0]:
        ts, _, hdrs = rec.partition("|")
        h = headers(hdrs)
        if h.get("zl-last-error-class") == "defer":
            defers.append(int(h["zl-retry-due-at"]) - int(ts))
    assert tier[1] == [], f"a defer with an estimate stepped on to tier 1: {tier[1]}"
    assert len(defers) == 3, tier[0]
    # Due after the estimate (200 ms), not after the tier's 500 ms; the
    # message's timestamp is taken a moment after the header is written.
    assert all(100 <= d <= 260 for d in defers), f"due-at minus produce time, ms: {defers}"
    assert_exactly_once(pipeline, [did])


def test_a_stale_message_for_a_reincluded_deposit_is_dropped_and_never_kills_the_row(pipeline):
    """Guards against a stale copy of a deposit's event (naming the block a
    reorg replaced) being acted on: passed on with old block facts, or, as
    CI once showed, failing and marking the live, re-detected row dead. The
    row names block B; a message naming block A arrives and would fail
    permanently if processed. It must be dropped (no DLQ letter, the row
    untouched), while the message naming B goes through."""
    d = new_deposit(user_id="doomed")
    insert_rows([d])
    psql("UPDATE deposits SET block_hash = :'v1', block_number = 101 WHERE deposit_id = :'v2'",
         "0x" + "cd" * 32, d["deposit_id"])
    pipeline.produce([d], key=d["deposit_id"])  # stale: still names block 0xabab...
    pipeline.start("w", ZL_PT_PERMANENT_USER="doomed")
    wait_until(lambda: "superseded" in pipeline.log("w"), 30, "the stale message seen")
    time.sleep(1)
    assert states([d["deposit_id"]])[d["deposit_id"]] == "detected", "the stale message changed the row"
    assert pipeline.dlq_messages() == [], "a stale message was dead-lettered"
    assert effects([d["deposit_id"]]) == {}, "a stale message was processed"
    # The row is the truth (a message must agree with it on the user): the
    # current message, for a user the stage does not fail, needs a row that
    # says so.
    psql("UPDATE deposits SET user_id = 'ok' WHERE deposit_id = :'v1'", d["deposit_id"])
    fresh = dict(d, block_hash="0x" + "cd" * 32, block_number=101, event_id=str(uuid.uuid4()), user_id="ok")
    pipeline.produce([fresh], key=d["deposit_id"])
    wait_until(lambda: states([d["deposit_id"]])[d["deposit_id"]] == "verified", 30, "the current message applied")
    assert effects([d["deposit_id"]]) == {d["deposit_id"]: 1}


def test_a_fenced_consumer_exits_for_a_restart_instead_of_idling(pipeline):
    """Guards against a worker that can never consume again but looks alive:
    a second copy started under the same ZL_GROUP_INSTANCE_ID makes the
    broker fence the first, whose consumer then has a fatal error. It must
    exit 1 (its supervisor restarts it) rather than idle with its partitions
    gone. Found by the chaos suite, where it stalled a whole schedule."""
    deps = [new_deposit() for _ in range(5)]
    insert_rows(deps)
    pipeline.produce(deps)
    first = pipeline.start("first", ZL_GROUP_INSTANCE_ID="copy-a")
    wait_until(all_in_state([d["deposit_id"] for d in deps], "verified"), 30, "the first copy working")
    second = pipeline.start("second", ZL_GROUP_INSTANCE_ID="copy-a")
    first.wait(timeout=60)
    assert first.returncode == 1, pipeline.log("first")[-2000:]
    assert "consumer fatal error, exiting for a restart" in pipeline.log("first")
    assert second.poll() is None, "the copy that took over must keep running"
    more = [new_deposit() for _ in range(5)]
    insert_rows(more)
    pipeline.produce(more)
    wait_until(all_in_state([d["deposit_id"] for d in more], "verified"), 60, "the second copy consuming")


def test_a_static_member_whose_session_timed_out_exits_for_a_restart(pipeline):
    """Guards against a static member that lost its group session (a broker
    outage or a pause longer than session.timeout.ms) idling forever with no
    partitions while it looks alive, then hanging in close: the chaos suite
    found a verify copy doing exactly that after a Kafka restart (librdkafka
    issue 3437). Stopped for longer than the session timeout (10 s), the copy
    must exit 1 at once for its supervisor, and a copy started again under
    the same instance id consumes."""
    deps = [new_deposit() for _ in range(5)]
    insert_rows(deps)
    pipeline.produce(deps)
    first = pipeline.start("first", ZL_GROUP_INSTANCE_ID="copy-s")
    wait_until(all_in_state([d["deposit_id"] for d in deps], "verified"), 30, "the copy working")
    first.send_signal(signal.SIGSTOP)
    time.sleep(14)  # the session timeout (10 s) and the broker's check of it
    first.send_signal(signal.SIGCONT)
    try:
        first.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("a static member whose session timed out kept running: " + pipeline.log("first")[-2000:])
    assert first.returncode == 1, pipeline.log("first")[-2000:]
    assert "session timed out as static member copy-s, exiting for a restart" in pipeline.log("first")
    pipeline.start("again", ZL_GROUP_INSTANCE_ID="copy-s")
    more = [new_deposit() for _ in range(5)]
    insert_rows(more)
    pipeline.produce(more)
    wait_until(all_in_state([d["deposit_id"] for d in more], "verified"), 60, "the restarted copy consuming")


def test_a_partition_left_paused_by_the_kafka_client_is_found_and_consumed_again(pipeline):
    """Guards against deposits stuck forever behind a live worker: librdkafka
    can leave a partition paused after pause/seek/resume races a rebalance
    (the chaos suite saw 1,067 messages wait behind one verify copy that
    looked healthy). The test pauses the input partitions in the client
    behind the runtime's back after the first batch; the stall watch must
    notice messages waiting with no progress for ZL_STALL_MS and fetch
    them again. With ZL_STALL_MS=0 (the watch off) they stay unprocessed."""
    first = [new_deposit() for _ in range(3)]
    insert_rows(first)
    pipeline.produce(first)
    pipeline.start("w", ZL_TEST_STRAY_PAUSE_AFTER="1", ZL_STALL_MS="2000")
    wait_until(lambda: "paused behind the runtime's back" in pipeline.log("w"), 30, "the stray pause")
    wait_until(all_in_state([d["deposit_id"] for d in first], "verified"), 30, "the first batch")
    more = [new_deposit() for _ in range(10)]
    insert_rows(more)
    pipeline.produce(more)
    wait_until(all_in_state([d["deposit_id"] for d in more], "verified"), 60, "the stalled partitions consumed again")
    assert "no progress for 2000 ms: resuming it" in pipeline.log("w")
    eff = effects([d["deposit_id"] for d in first + more])
    assert {k: v for k, v in eff.items() if v != 1} == {}, "a deposit applied twice"


def test_without_the_stall_watch_a_stray_pause_strands_messages(pipeline):
    """The control for the test above: the same stray pause with the watch
    off leaves the messages unprocessed (so the test above proves the
    watch, not something else, consumed them)."""
    first = [new_deposit() for _ in range(3)]
    insert_rows(first)
    pipeline.produce(first)
    pipeline.start("w", ZL_TEST_STRAY_PAUSE_AFTER="1", ZL_STALL_MS="0")
    wait_until(lambda: "paused behind the runtime's back" in pipeline.log("w"), 30, "the stray pause")
    more = [new_deposit() for _ in range(10)]
    insert_rows(more)
    pipeline.produce(more)
    time.sleep(8)
    ids = [d["deposit_id"] for d in more]
    assert not all_in_state(ids, "verified")(), "consumed despite the stray pause: the test above proves nothing"


def http_status(port: int, path: str) -> int:
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, timeout=10)
    return int(out.stdout or 0)


def test_postgres_outage_pauses_the_stage_without_dead_letters(pipeline):
    """Guards against an infrastructure outage flooding the DLQ: with the
    database down the stage pauses, reports not-ready, and finishes everything
    once it returns."""
    outage_s = float(os.environ.get("ZL_TEST_OUTAGE_S", "30"))
    first = [new_deposit() for _ in range(20)]
    second = [new_deposit() for _ in range(20)]
    insert_rows(first + second)
    pipeline.produce(first)
    pipeline.start("w")
    port = pipeline.http_port("w")
    wait_until(all_in_state([d["deposit_id"] for d in first], "verified"), 60, "first batch")
    assert http_status(port, "/health/ready") == 200

    services("stop", "postgres")
    try:
        pipeline.produce(second)
        wait_until(lambda: http_status(port, "/health/ready") == 503, 30, "readiness to turn off")
        time.sleep(outage_s)
        assert http_status(port, "/health/ready") == 503
        assert http_status(port, "/health/live") == 200, "an outage is not a dead process"
        assert pipeline.dlq_messages() == [], "an outage dead-lettered messages"
    finally:
        services("start", "postgres")
    ids = [d["deposit_id"] for d in first + second]
    wait_until(all_in_state(ids, "verified"), 90, "everything after the database returned")
    wait_until(lambda: http_status(port, "/health/ready") == 200, 30, "readiness to return")
    assert pipeline.dlq_messages() == []
    assert_exactly_once(pipeline, ids)


def committed_lag(group: str, topic: str) -> int:
    """Total lag of the group on topic, from Kafka's own group tool."""
    cp = os.path.join(need_env("ZL_KAFKA_HOME"), "lib", "*")
    out = subprocess.run(["java", "-cp", cp, "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "--bootstrap-server",
                          need_env("ZL_KAFKA_BROKERS"), "--describe", "--group", group],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lag, seen = 0, 0
    for line in out.stdout.splitlines():
        cols = line.split()
        if len(cols) >= 6 and cols[1] == topic:
            assert cols[3] != "-", f"partition {cols[2]} has no committed offset: {line}"
            lag += int(cols[5])
            seen += 1
    assert seen > 0, out.stdout
    return lag


def test_sigterm_drains_and_exits_zero_with_offsets_committed(pipeline):
    """Guards against a shutdown that loses its place: after SIGTERM the
    group's committed offsets cover everything processed."""
    deposits = [new_deposit() for _ in range(30)]
    ids = [d["deposit_id"] for d in deposits]
    insert_rows(deposits)
    pipeline.produce(deposits)
    w = pipeline.start("w")
    wait_until(all_in_state(ids, "verified"), 60, "all processed")
    w.send_signal(signal.SIGTERM)
    assert w.wait(timeout=30) == 0, pipeline.log("w")[-2000:]
    assert "stopped cleanly" in pipeline.log("w")
    assert committed_lag(pipeline.env["ZL_GROUP_ID"], pipeline.in_topic) == 0


def test_three_copies_with_one_killed_lose_nothing_and_double_nothing(pipeline):
    """Guards against loss or duplicates across a rebalance when one copy of a
    scaled stage dies mid-run."""
    deposits = [new_deposit() for _ in range(300)]
    ids = [d["deposit_id"] for d in deposits]
    insert_rows(deposits)
    workers = [pipeline.start(f"w{i}") for i in range(3)]
    time.sleep(3)  # let the group form so the kill lands mid-run
    pipeline.produce(deposits)
    wait_until(lambda: sum(1 for s in states(ids).values() if s == "verified") >= 30, 60, "work to start")
    workers[1].send_signal(signal.SIGKILL)
    wait_until(all_in_state(ids, "verified"), 90, "every deposit verified by the survivors")
    assert workers[0].poll() is None and workers[2].poll() is None
    assert_exactly_once(pipeline, ids)


def group_members(group: str) -> list[dict[str, set[int]]]:
    """Each member's assignment, {topic: {partition}}, from Kafka's own
    group tool (--describe: a row per partition with its owner's
    CONSUMER-ID, "-" for none)."""
    cp = os.path.join(need_env("ZL_KAFKA_HOME"), "lib", "*")
    out = subprocess.run(["java", "-Xmx256m", "-cp", cp, "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
                          "--bootstrap-server", need_env("ZL_KAFKA_BROKERS"), "--describe", "--group", group],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    members: dict[str, dict[str, set[int]]] = {}
    for line in out.stdout.splitlines():
        cols = line.split()
        if len(cols) < 7 or cols[0] != group or cols[6] == "-":
            continue
        members.setdefault(cols[6], {}).setdefault(cols[1], set()).add(int(cols[2]))
    return list(members.values())


@pytest.mark.parametrize("assignor", ["default", "cooperative-sticky"])
def test_two_copies_share_every_topic_not_just_the_count(tmp_path, assignor):
    """Guards against a second copy that adds nothing: the cooperative-sticky
    assignor balanced only the count of partitions over a stage's input and
    retry topics together, and handed the first copy every input partition
    while the second got the retry tiers (issue 19's benchmark: two mint
    copies no faster than one). By default each copy now gets its share of
    the input topic and of each tier; cooperative-sticky still works when an
    operator sets it (the rebalance callback serves both protocols), and
    either way nothing is lost or applied twice."""
    p = new_stage_pipeline(Pipeline, tmp_path, "passthrough", partitions=4, ZL_BATCH_SIZE_MAX="10")
    try:
        extra = {}
        if assignor != "default":
            props = tmp_path / "kafka.properties"
            props.write_text(f"partition.assignment.strategy={assignor}\n")
            os.chmod(props, 0o600)
            extra["ZL_KAFKA_PROPERTIES_FILE"] = str(props)
        group = p.env["ZL_GROUP_ID"]
        p.start("a", **extra)
        wait_until(lambda: [sum(map(len, m.values())) for m in group_members(group)] == [12], 60,
                   "the first copy to own all 12 partitions (4 input, 4 per tier)")
        p.start("b", **extra)
        wait_until(lambda: len([m for m in group_members(group) if m]) == 2, 60, "both copies to own partitions")
        members = group_members(group)
        topics = [p.in_topic] + [f"{p.prefix}passthrough.retry.{i}" for i in (0, 1)]
        shares = {t: sorted(len(m.get(t, ())) for m in members) for t in topics}
        if assignor == "default":
            assert all(v == [2, 2] for v in shares.values()), f"partitions per copy, per topic: {shares}"
        deposits = [new_deposit() for _ in range(200)]
        ids = [d["deposit_id"] for d in deposits]
        insert_rows(deposits)
        p.produce(deposits)
        wait_until(all_in_state(ids, "verified"), 60, "every deposit verified by the two copies")
        assert_exactly_once(p, ids)
    finally:
        p.stop_all()


# ---- batches in flight (ZL_BATCHES_INFLIGHT_MAX, issue 19): the next poll
# batch is worked on while the previous one's outputs await delivery.

def test_offsets_never_pass_an_undelivered_message_with_two_batches_in_flight(pipeline):
    """Guards against losing a deposit when batches overlap: the second poll
    batch's produce fails (nothing reaches the broker), which the batch
    learns only when it finishes, after the third batch, from the same
    partition, was produced and delivered. The worker is stopped during the
    outage that follows, so what it committed is all the next copy has: had
    the third batch stored its offsets, the second batch's deposits (rows
    already moved) would never be consumed again, their outputs never
    published."""
    deposits = [new_deposit() for _ in range(40)]
    ids = [d["deposit_id"] for d in deposits]
    insert_rows(deposits)
    pipeline.produce(deposits, partition=0)  # one partition: every batch behind the failed one shares it
    # A long outage pause (its first probe up to a minute away) to stop it in.
    w = pipeline.start("w", ZL_BATCH_SIZE_MAX="5", ZL_BATCHES_INFLIGHT_MAX="2", ZL_TEST_FAIL_PRODUCE_BATCH="2",
                       ZL_OUTAGE_BASE_MS="60000", ZL_OUTAGE_CAP_MS="60000")
    wait_until(lambda: "failed on purpose (ZL_TEST_FAIL_PRODUCE_BATCH)" in pipeline.log("w"), 60,
               "the second batch's produce to fail")
    wait_until(lambda: pipeline.ready("w") == 503, 30, "the outage pause")
    w.send_signal(signal.SIGTERM)
    assert w.wait(timeout=30) == 0, pipeline.log("w")[-2000:]
    survivor = pipeline.start("survivor")
    wait_until(all_in_state(ids, "verified"), 60, "every deposit verified")
    assert_exactly_once(pipeline, ids)
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(timeout=30) == 0, pipeline.log("survivor")[-2000:]
    assert committed_lag(pipeline.env["ZL_GROUP_ID"], pipeline.in_topic) == 0


# A copy that joins later makes another rebalance: after this long without
# a revoke that found batches in flight, up to COPIES_MAX copies in all.
REJOIN_AFTER_S = 8
COPIES_MAX = 6
# Deposits fed each round while waiting for that revoke.
REFEED = 250


def test_a_revoke_with_batches_in_flight_finishes_them_first(pipeline):
    """Guards against loss or double effect when partitions move while a
    batch is in flight: the revoke must wait for its deliveries and store
    its offsets before the next owner starts from the committed ones. A
    second copy joins while the first is busy; deposits keep arriving until
    the first copy has given up partitions with batches in flight."""
    first = pipeline.start("a", ZL_BATCH_SIZE_MAX="2")
    ids: list[str] = []

    def feed(count: int) -> None:
        more = [new_deposit() for _ in range(count)]
        insert_rows(more)
        pipeline.produce(more)
        ids.extend(d["deposit_id"] for d in more)

    feed(300)
    wait_until(lambda: sum(1 for s in states(ids).values() if s == "verified") >= 20, 60, "the first copy busy")
    copies = [first, pipeline.start("b", ZL_BATCH_SIZE_MAX="2")]
    deadline = time.monotonic() + 90
    joined = time.monotonic()
    while "revoke: finishing" not in pipeline.log("a") and time.monotonic() < deadline:
        feed(REFEED)  # enough that the first copy has a backlog, not only the batch at hand
        time.sleep(0.3)
        # The revoke may find the first copy between batches (a loaded
        # machine, CI stop 29): another copy joining makes another revoke.
        if time.monotonic() - joined > REJOIN_AFTER_S and len(copies) < COPIES_MAX:
            copies.append(pipeline.start(f"c{len(copies)}", ZL_BATCH_SIZE_MAX="2"))
            joined = time.monotonic()
    assert "revoke: finishing" in pipeline.log("a"), "no revoke came while the first copy had a batch in flight"
    wait_until(all_in_state(ids, "verified"), 120, "every deposit verified by the copies")
    assert all(c.poll() is None for c in copies)
    assert_exactly_once(pipeline, ids)
    # The revoke committed what the batches in flight finished: the next
    # owner starts after them, so nothing was published twice.
    out = pipeline.output_deposit_ids()
    twice = sorted({i for i in out if out.count(i) > 1})
    assert twice == [], f"{len(twice)} deposits published twice across the rebalance, e.g. {twice[:3]}"


def test_the_same_deposit_in_two_consecutive_batches_is_dead_lettered_once(pipeline):
    """Guards against two batches in flight acting on one deposit: its first
    message is dead-lettered (the row is marked dead once the letter is
    delivered), its second, in the very next batch, must read the row after
    that and leave it alone. Without the hold it read the row still
    `detected` and dead-lettered the deposit a second time."""
    d = new_deposit(user_id="doomed")
    insert_rows([d])
    pipeline.produce([d, d], partition=0)
    after = [new_deposit() for _ in range(3)]
    insert_rows(after)
    pipeline.produce(after, partition=0)
    pipeline.start("w", ZL_BATCH_SIZE_MAX="1", ZL_BATCHES_INFLIGHT_MAX="2", ZL_PT_PERMANENT_USER="doomed")
    wait_until(all_in_state([a["deposit_id"] for a in after], "verified"), 60, "the messages behind it")
    did = d["deposit_id"]
    assert states([did])[did] == "dead"
    assert pipeline.dlq_keys() == [did], "one deposit, one dead letter"
    holds = [line for line in pipeline.metrics("w").splitlines() if line.startswith("zl_batch_holds_total")]
    assert holds and float(holds[0].split()[-1]) >= 1, f"the second batch did not wait for the first: {holds}"
    assert_exactly_once(pipeline, [a["deposit_id"] for a in after])

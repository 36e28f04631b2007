"""zl-sweep against the real database and a broker of the test's own (so
stopping it disturbs nobody else), with the passthrough test stage.

Each test uses its own random chain id and ZL_SWEEP_CHAIN_ID, so its sweeper
only ever touches its own rows in the shared database."""
import random
import time

import pytest

from zlharness.services import local_env, ports, services
from ops_helpers import chain_deposit, make_pipeline, start_tool, stop, topic_messages
from runtime_helpers import effects, insert_rows, new_deposit, psql, states, wait_until


@pytest.fixture(scope="module")
def own_kafka(tmp_path_factory):
    """A Kafka broker for this module only, from the project's services
    script in a folder of its own; stopped by that script (by pid)."""
    local = tmp_path_factory.mktemp("kafka-local")
    env = local_env(local)

    def svc(*args):
        services(*args, env=env, timeout=240)
    svc("start", "kafka")
    broker = f"127.0.0.1:{ports(local)['KAFKA_PORT']}"
    try:
        yield broker, svc
    finally:
        svc("stop", "kafka")


def test_deposits_recorded_while_kafka_is_down_are_published_when_it_returns(own_kafka, tmp_path):
    """Guards against losing deposits the detector recorded in the state
    table while the broker was down: the sweeper publishes them once it is
    back, and each is applied exactly once."""
    broker, svc = own_kafka
    chain = random.randrange(10**9, 2 * 10**9)
    p = make_pipeline(tmp_path, brokers=broker, partitions=3)
    try:
        p.start("w")
        start_tool(p, "sweep", "zl-sweep", ZL_SWEEP_CHAIN_ID=chain, ZL_SWEEP_STALE_MS=2000,
                   ZL_SWEEP_INTERVAL_MS=500, ZL_DELIVERY_TIMEOUT_MS=5000)
        svc("stop", "kafka")
        down = [chain_deposit(chain) for _ in range(20)]
        insert_rows(down)  # what the detector does first; its publish fails
        ids = [d["deposit_id"] for d in down]
        time.sleep(6)  # the sweeper tries and fails while the broker is away
        assert set(states(ids).values()) == {"detected"}
        svc("start", "kafka")
        wait_until(lambda: set(states(ids).values()) == {"verified"}, 90,
                   "every deposit recorded during the outage verified")
        eff = effects(ids)
        assert sorted(eff) == sorted(ids), f"{len(set(ids) - set(eff))} deposits never applied"
        assert {k: v for k, v in eff.items() if v != 1} == {}, "a deposit was applied twice"
        assert topic_messages(p.dlq_topic, broker) == [], "the outage dead-lettered something"
        assert "sweep: re-published" in p.log("sweep")
    finally:
        p.stop_all()


def test_sweeper_skips_rows_waiting_on_purpose_and_terminal_rows_and_only_one_copy_sweeps(own_kafka, tmp_path):
    """Guards against the sweeper re-publishing rows that are deliberately
    waiting (next_attempt_at in the future) or finished (dead, reorged), and
    against two sweepers both publishing."""
    broker, _ = own_kafka
    chain = random.randrange(2 * 10**9, 3 * 10**9)
    p = make_pipeline(tmp_path, brokers=broker, partitions=1)
    try:
        stale, waiting, dead = (chain_deposit(chain) for _ in range(3))
        insert_rows([stale, waiting, dead])
        psql("UPDATE deposits SET updated_at = now() - interval '1 hour' WHERE deposit_id IN (:'v1', :'v2', :'v3')",
             stale["deposit_id"], waiting["deposit_id"], dead["deposit_id"])
        psql("UPDATE deposits SET next_attempt_at = now() + interval '1 hour' WHERE deposit_id = :'v1'",
             waiting["deposit_id"])
        psql("UPDATE deposits SET state = 'dead', dead_from_state = 'detected' WHERE deposit_id = :'v1'",
             dead["deposit_id"])
        kw = dict(ZL_SWEEP_CHAIN_ID=chain, ZL_SWEEP_STALE_MS=60000, ZL_SWEEP_INTERVAL_MS=300)
        a = start_tool(p, "sweep-a", "zl-sweep", **kw)
        b = start_tool(p, "sweep-b", "zl-sweep", **kw)
        wait_until(lambda: len(topic_messages(p.in_topic, broker)) >= 1, 30, "the stale row published")
        time.sleep(3)  # several passes of both copies
        keys = [m["key"] for m in topic_messages(p.in_topic, broker)]
        assert keys == [stale["deposit_id"]], f"expected only the stale row, once; got {keys}"
        logs = p.log("sweep-a") + p.log("sweep-b")
        assert logs.count("now active") == 1, "not exactly one active sweeper"
        # The standby takes over when the active one goes away.
        active, standby = (a, b) if "now active" in p.log("sweep-a") else (b, a)
        stop(active)
        wait_until(lambda: "now active" in p.log(standby.zl_name), 30, "the standby to take over")
    finally:
        p.stop_all()


def test_a_row_that_stays_stale_is_re_published_with_growing_gaps(own_kafka, tmp_path):
    """Guards against the sweeper flooding a slow stage: with a flat
    ZL_SWEEP_STALE_MS it re-published every queued row each stale_ms, so a
    backlog grew by itself (the chaos suite measured 11 re-publications per
    row). A row that stays put is now re-published after stale_ms, then
    2x, 4x, ... later. Here nothing consumes, stale_ms is 1 s and sweeps run
    every 0.1 s: publications at about 1, 3 and 7 s, so 3 in 9.5 s (a flat
    1 s gave 9)."""
    broker, _ = own_kafka
    chain = random.randrange(3 * 10**9, 4 * 10**9)
    p = make_pipeline(tmp_path, brokers=broker, partitions=1)
    try:
        d = chain_deposit(chain)
        insert_rows([d])
        start_tool(p, "sweep", "zl-sweep", ZL_SWEEP_CHAIN_ID=chain, ZL_SWEEP_STALE_MS=1000, ZL_SWEEP_INTERVAL_MS=100)
        wait_until(lambda: len(topic_messages(p.in_topic, broker)) >= 1, 30, "the first re-publication")
        t0 = time.monotonic()
        wait_until(lambda: len(topic_messages(p.in_topic, broker)) >= 2, 30, "the second re-publication")
        first_gap = time.monotonic() - t0
        time.sleep(max(0.0, 8.5 - first_gap))
        keys = [m["key"] for m in topic_messages(p.in_topic, broker)]
        assert set(keys) == {d["deposit_id"]}
        assert 2 <= len(keys) <= 4, f"{len(keys)} re-publications of one row in ~9.5 s"
        assert first_gap >= 1.5, f"the second re-publication came {first_gap:.1f} s after the first"
    finally:
        p.stop_all()

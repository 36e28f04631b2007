"""A three-broker Kafka cluster (issue 23), started by this file itself: a
LocalPipeline of its own with ZL_KAFKA_NODES=3 (deploy/local/services runs
kafka-1..kafka-3 on loopback, each broker and controller), stopped by pid
afterwards whether the tests passed or not.

  - the topics zl-topics makes there, without being told the setup is
    local, have 3 replicas, min.insync.replicas 2 and no unclean leader
    election: read back with Kafka's own TopicCommand and ConfigCommand,
    from the brokers' jars;
  - the whole pipeline credits every deposit exactly once while the broker
    leading the most partitions of verify's input topic is SIGKILLed (no
    controlled shutdown: its partitions have no leader until the controller
    fences it), deposits keep coming, and it is started again.
"""
import re
import subprocess
import time

import pytest

from runtime_helpers import wait_until
from zlharness.pipeline import STAGES, SECOND_CREDIT_WAIT_S, scratch_pipeline
from zlharness.services import busiest_leader, kafka_tool, node_service, partitions, wait_in_sync, wait_led_without

# verify's input: detect produces it, verify consumes it, under load.
INPUT_TOPIC = "zl.deposits.detected"
WAVE_DEPOSITS = 10
WAVES = 3
SETTLE_S = 300
# How long the killed broker stays down (deposits keep coming meanwhile).
DOWN_S = 5


@pytest.fixture(scope="module")
def cluster():
    with scratch_pipeline("cluster", kafka_nodes=3) as p:
        # zl-topics as production runs it: ZL_TOPICS_LOCAL unset.
        env = {k: v for k, v in p.env.items() if k != "ZL_TOPICS_LOCAL"}
        out = subprocess.run([str(p.bin / "zl-topics")], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        yield p


def test_cluster_services_print_three_brokers_and_replication_three(cluster):
    """Guards against a cluster whose clients know one broker (its loss
    would look like an outage) or whose topics are made with one replica."""
    assert len(cluster.env["ZL_KAFKA_BROKERS"].split(",")) == 3, cluster.env["ZL_KAFKA_BROKERS"]
    assert cluster.env["ZL_TOPIC_REPLICATION"] == "3"
    assert "ZL_TOPICS_LOCAL" not in cluster.services("env")
    assert sorted({b for p in partitions(cluster.env["ZL_KAFKA_BROKERS"]) for b in p["replicas"]}) == [1, 2, 3]


def test_topics_have_three_replicas_min_isr_two_and_no_unclean_election(cluster):
    """Guards against production topics a single broker's loss could stop or
    truncate: every topic zl-topics makes has 3 replicas, needs 2 in sync
    for a write to count, and never elects an out-of-date leader."""
    described = kafka_tool(cluster.env, "org.apache.kafka.tools.TopicCommand", "--describe")
    topics = re.findall(r"^Topic: (\S+)\s+TopicId: \S+\s+PartitionCount: \d+\s+ReplicationFactor: (\d+)",
                        described, re.M)
    mine = [(t, rf) for t, rf in topics if t.startswith("zl.")]
    assert len(mine) >= 10, described
    assert all(rf == "3" for _t, rf in mine), mine
    for topic in (INPUT_TOPIC, "zl.credit.dlq"):
        out = kafka_tool(cluster.env, "kafka.admin.ConfigCommand", "--entity-type", "topics", "--entity-name", topic,
                         "--describe")
        conf = dict(line.strip().split(" sensitive=", 1)[0].split("=", 1) for line in out.splitlines()
                    if " sensitive=" in line)
        assert conf.get("min.insync.replicas") == "2", conf
        assert conf.get("unclean.leader.election.enable") == "false", conf


def test_deposits_are_credited_once_while_the_busiest_leader_is_killed_and_restarted(cluster):
    """Guards against a produce acknowledged by a leader that dies before its
    followers copied it, a batch lost or repeated across the
    NOT_LEADER_FOR_PARTITION errors and metadata refreshes of a leader
    change, and an offset commit lost with the group's coordinator: every
    deposit made before, during and after the crash is credited once."""
    p = cluster
    brokers = p.env["ZL_KAFKA_BROKERS"]
    p.setup(accounts=2, users=WAVE_DEPOSITS * WAVES)
    addrs = list(p.deposit_addrs)
    # Each deposit its own address and amount (1..30 USDT): a credit of the
    # wrong size or a second one shows on that address alone.
    usdt = {a: i + 1 for i, a in enumerate(addrs)}
    p.start_workers([(s, 1) for s in STAGES])
    # As Kubernetes would: a static member that exits 1 (fenced, or its
    # session timed out while a broker was down) is restarted under its name.
    p.supervise()

    def wave(k: int) -> None:
        part = addrs[k * WAVE_DEPOSITS:(k + 1) * WAVE_DEPOSITS]
        assert p.make_deposits(len(part), part, lambda j: usdt[part[j]] * 10**18) == len(part)

    wave(0)
    wait_until(lambda: p.counts(addrs)["credited"] >= 1, 180, "the first deposit credited (the pipeline is flowing)")
    victim, led = busiest_leader(brokers, INPUT_TOPIC)
    t0 = time.monotonic()
    p.services("kill", node_service(victim))
    wave(1)
    moved_s = wait_led_without(brokers, victim)
    time.sleep(max(0.0, DOWN_S - (time.monotonic() - t0)))
    wave(2)
    p.services("start", node_service(victim))
    back_s = time.monotonic() - t0
    in_sync_s = wait_in_sync(brokers)
    print(f"broker {victim} (leader of {led} partitions of {INPUT_TOPIC}) killed: leaders moved in {moved_s:.1f} s,"
          f" back after {back_s:.1f} s, every replica in sync {in_sync_s:.1f} s later")

    wait_until(lambda: p.counts(addrs)["credited"] == len(addrs), SETTLE_S, "every deposit credited")
    time.sleep(SECOND_CREDIT_WAIT_S)  # a second credit, if one were coming
    c = p.counts(addrs)
    assert c["credited"] == len(addrs) and sum(c.values()) == len(addrs), c
    rows = p.psql("SELECT d.to_addr, e.amount FROM ledger_entries e JOIN deposits d USING (deposit_id)"
                  " WHERE e.kind = 'user_credit' AND d.to_addr = ANY (string_to_array(:'v1', ','))", ",".join(addrs))
    credits: dict[str, list[str]] = {}
    for to, eggs in rows:
        credits.setdefault(to, []).append(eggs)
    wrong = {a: credits.get(a) for a in addrs if credits.get(a) != [str(usdt[a] * 100)]}
    assert not wrong, f"deposits not credited exactly once with their amount (address: credits): {wrong}"
    assert not p.sanitizer_reports()

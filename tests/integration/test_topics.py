"""What zl-topics makes (issue 23): production topics have 3 replicas,
min.insync.replicas 2 and no unclean leader election, and fewer replicas are
refused unless the setup says it is local. Against the test services' real
broker; topic configs read back with Kafka's own ConfigCommand, from the same
jars."""
import os
import subprocess
import uuid
from pathlib import Path

from conftest import need_env


def zl_topics(**env: str) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k not in ("ZL_TOPIC_REPLICATION", "ZL_TOPICS_LOCAL")}
    e.update(env)
    return subprocess.run([str(Path(need_env("ZL_BIN_DIR")) / "zl-topics")], env=e, capture_output=True, text=True,
                          timeout=120)


def topic_config(topic: str) -> dict[str, str]:
    home = need_env("ZL_KAFKA_HOME")
    out = subprocess.run(["java", "-cp", f"{home}/lib/*", "kafka.admin.ConfigCommand", "--bootstrap-server",
                          need_env("ZL_KAFKA_BROKERS"), "--entity-type", "topics", "--entity-name", topic,
                          "--describe"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    conf = {}
    for line in out.stdout.splitlines():
        line = line.strip()
        if "=" in line and " sensitive=" in line:
            k, v = line.split(" sensitive=", 1)[0].split("=", 1)
            conf[k] = v
    return conf


def test_fewer_than_three_replicas_are_refused_unless_the_setup_is_local():
    """Guards against production topics created with the local default of one
    replica (a broker's loss would then lose every message it held): the
    default is 3, and less is refused, naming the setting that allows it."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    out = zl_topics(ZL_TOPIC_PREFIX=prefix, ZL_TOPICS_STAGES="credit", ZL_TOPIC_REPLICATION="1")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "ZL_TOPIC_REPLICATION=1" in out.stderr and "ZL_TOPICS_LOCAL=true" in out.stderr, out.stderr
    # The default asks a one-broker cluster for 3 replicas: the broker refuses (exit 1), nothing half made.
    out = zl_topics(ZL_TOPIC_PREFIX=prefix, ZL_TOPICS_STAGES="credit")
    assert out.returncode == 1 and "replication factor" in out.stderr.lower(), out.stdout + out.stderr


def test_local_topics_are_made_with_no_unclean_leader_election():
    """Guards against a topic whose out-of-date replica may become leader and
    drop acknowledged deposits' events: unclean leader election is off on
    every topic zl-topics makes (with min.insync.replicas 1 at one replica;
    the three-broker test checks 2 at three)."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    out = zl_topics(ZL_TOPIC_PREFIX=prefix, ZL_TOPICS_STAGES="credit", ZL_TOPIC_REPLICATION="1",
                    ZL_TOPICS_LOCAL="true")
    assert out.returncode == 0, out.stderr
    for topic in (f"{prefix}deposits.detected", f"{prefix}credit.dlq"):
        conf = topic_config(topic)
        assert conf.get("unclean.leader.election.enable") == "false", conf
        assert conf.get("min.insync.replicas") == "1", conf


def test_every_topic_is_readable_the_moment_zl_topics_returns():
    """Guards against "N topics present" printed while a broker still answers
    "unknown topic" for some of them (the controller has committed them, the
    broker's metadata has not caught up): a stage or an operator's kcat
    started right then failed (CI, stop 28: test_credit's DLQ read). zl-topics
    now returns only when every topic it made has a leader for every
    partition. Several fresh prefixes, each read at once, so a race that
    shows one time in a few is seen here."""
    brokers = need_env("ZL_KAFKA_BROKERS")
    rounds = 3  # each leaves its topics on the test broker: a few are enough
    for _ in range(rounds):
        prefix = f"t{uuid.uuid4().hex[:8]}."
        out = zl_topics(ZL_TOPIC_PREFIX=prefix, ZL_TOPICS_STAGES="mint,credit", ZL_TOPIC_REPLICATION="1",
                        ZL_TOPICS_LOCAL="true", ZL_TOPIC_PARTITIONS="3")
        assert out.returncode == 0, out.stderr
        for topic in (f"{prefix}credit.dlq", f"{prefix}mint.dlq", f"{prefix}deposits.detected"):
            got = subprocess.run(["kcat", "-b", brokers, "-C", "-t", topic, "-o", "beginning", "-e", "-q"],
                                 capture_output=True, text=True, timeout=60)
            assert got.returncode == 0, f"{topic} right after zl-topics: {got.stderr}"

"""Kafka 4 brokers (issue 23): librdkafka 2.0.2, Debian's, against a Kafka
4.x broker. Kafka 4.0 removed ZooKeeper and the oldest versions of every
request (KIP-896); a client that still spoke one of them would be refused.
This module starts a one-node KRaft broker from the Kafka 4 jars that
deploy/local/deps fetches (deploy/local/kafka4-pom.xml, ZL_KAFKA4_VERSION in
deploy/local/versions.sh), and passes deposits through zl-topics and a stage
worker there: the idempotent producer (acks=all), the classic consumer group
with the roundrobin assignor, offset commits, and the drain. The
pipeline itself runs on the 3.9 jars of the dev broker.

What zeroloss cannot use on Kafka 4 is KIP-848's consumer group protocol
(group.protocol=consumer), which needs librdkafka 2.4 or later; the brokers
still serve the classic protocol, which is what this proves.
"""
import subprocess
from pathlib import Path

import pytest

from test_kafka_tls import pass_deposits_through
from zlharness.env import REPO
from zlharness.kafka_broker import PlainBroker
from zlharness.procs import running


def kafka4_home() -> Path:
    out = subprocess.run(["bash", "-c", f". {REPO}/deploy/local/versions.sh && echo \"$ZL_KAFKA4_HOME\""],
                         capture_output=True, text=True, check=True)
    home = Path(out.stdout.strip())
    assert list((home / "lib").glob("kafka_2.13-4.*.jar")), f"no Kafka 4 jars in {home}/lib: run deploy/local/deps"
    return home


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with running(PlainBroker(tmp_path_factory.mktemp("kafka4"), kafka_home=kafka4_home())) as b:
        yield b


def test_a_stage_worker_moves_deposits_through_a_kafka_4_broker(broker, tmp_path):
    """Guards against a Kafka 4 upgrade of the cluster stopping the pipeline:
    zl-topics creates the topics, and a stage worker consumes, produces with
    acks=all and the idempotent producer, commits and drains, each deposit
    applied once and published downstream."""
    jar = sorted((broker.kafka_home / "lib").glob("kafka_2.13-*.jar"))
    assert jar and jar[0].name.startswith("kafka_2.13-4."), jar
    pass_deposits_through(broker, "PLAINTEXT", {}, tmp_path)

"""Authenticated Kafka: the workers and tools talk SASL through librdkafka's
pass-through properties, and a wrong password fails loudly.

Production brokers require authentication; the shared dev broker does not.
So this module starts a SECOND real broker from the same jars
($ZL_KAFKA_HOME/lib), KRaft mode, in a temporary directory on free ports, with
a SASL_PLAINTEXT listener using the PLAIN mechanism (users defined in the
listener's JAAS config), and stops it by pid at the end. PostgreSQL is the
shared dev database: only the broker is the subject here.

TLS uses the same mechanism (security.protocol=SSL or SASL_SSL plus ssl.*
properties, see docs/deploy.md): test_kafka_tls.py starts a broker of the
same kind (zlharness.kafka_broker) with certificates it makes with openssl
and keytool, and proves mutual TLS and SCRAM-SHA-512 over TLS.
"""
import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conftest import need_env
from runtime_helpers import insert_rows, new_deposit, psql, wait_until
from zlharness.kafka_broker import (ADMIN_PASSWORD, ADMIN_USER, PASSWORD, USER, SaslBroker,  # noqa: F401
                                    sasl_props, tool_env, write_props_file, x_args, zl_topics)
from zlharness.procs import running


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with running(SaslBroker(tmp_path_factory.mktemp("sasl-kafka"))) as b:
        yield b


def base_env(broker: SaslBroker, prefix: str) -> dict:
    return tool_env(broker.bootstrap, prefix)


def topic_names(broker: SaslBroker) -> set[str]:
    out = broker.kcat("-L", "-J")
    assert out.returncode == 0, out.stderr
    return {t["topic"] for t in json.loads(out.stdout)["topics"]}


def test_topics_tool_authenticates_with_a_private_properties_file(broker, tmp_path):
    """Guards against the SASL credentials in ZL_KAFKA_PROPERTIES_FILE not
    reaching librdkafka: against an authenticating broker, topic creation
    must succeed only because the file's properties were applied."""
    prefix = f"s{uuid.uuid4().hex[:8]}."
    env = base_env(broker, prefix)
    env["ZL_KAFKA_PROPERTIES_FILE"] = str(write_props_file(tmp_path / "kafka.properties", sasl_props()))
    out = zl_topics(env)
    assert out.returncode == 0, f"zl-topics failed against the SASL broker: {out.stderr}"
    want = {prefix + "deposits.detected", prefix + "deposits.verified", prefix + "passthrough.dlq",
            prefix + "passthrough.retry.0"}
    # Metadata of a just-created topic reaches the broker's cache a moment later.
    wait_until(lambda: want <= topic_names(broker), 10, f"topics {sorted(want)} in the broker's metadata")


def test_properties_file_readable_by_others_is_refused_before_connecting(broker, tmp_path):
    """Guards against a SASL password file left world-readable being used
    silently: the tool must refuse it and name the file and the fix."""
    env = base_env(broker, f"s{uuid.uuid4().hex[:8]}.")
    path = write_props_file(tmp_path / "kafka.properties", sasl_props(), mode=0o644)
    env["ZL_KAFKA_PROPERTIES_FILE"] = str(path)
    out = zl_topics(env)
    assert out.returncode == 2, f"expected a configuration error (2), got {out.returncode}: {out.stderr}"
    assert str(path) in out.stderr and "chmod 600" in out.stderr, out.stderr
    assert PASSWORD not in out.stderr + out.stdout, "the password was printed"


def test_wrong_password_is_refused_with_an_authentication_error(broker, tmp_path):
    """Guards against a bad credential looking like a slow broker: the tool
    must exit non-zero, and what it prints must say authentication failed,
    without printing the password it tried."""
    prefix = f"s{uuid.uuid4().hex[:8]}."
    env = base_env(broker, prefix)
    wrong = "not-the-password"
    t0 = time.monotonic()
    out = zl_topics(env, *x_args(sasl_props(password=wrong)))
    elapsed = time.monotonic() - t0
    assert out.returncode != 0, f"zl-topics succeeded with a wrong password: {out.stdout}"
    text = out.stdout + out.stderr
    assert "authentication" in text.lower(), f"no authentication error in the output:\n{text[-3000:]}"
    assert wrong not in text, "the tried password was printed"
    assert elapsed < 30, f"took {elapsed:.0f}s to give up"
    assert not any(n.startswith(prefix) for n in topic_names(broker)), "topics created without authenticating"


def test_stage_worker_consumes_and_publishes_through_sasl(broker, tmp_path):
    """Guards against a stage that authenticates its producer but not its
    consumer (or the reverse): the passthrough stage, given the credentials
    only as -X pass-through properties, must move every deposit exactly once
    and publish it downstream on the authenticating broker."""
    prefix = f"s{uuid.uuid4().hex[:8]}."
    env = base_env(broker, prefix)
    env["ZL_KAFKA_PROPERTIES_FILE"] = str(write_props_file(tmp_path / "kafka.properties", sasl_props()))
    out = zl_topics(env)
    assert out.returncode == 0, out.stderr

    deposits = [new_deposit() for _ in range(10)]
    ids = [d["deposit_id"] for d in deposits]
    insert_rows(deposits)
    lines = "".join(f"{d['deposit_id']}\t{json.dumps(d)}\n" for d in deposits)
    prod = broker.kcat("-P", "-t", prefix + "deposits.detected", "-K", "\t", "-X", "acks=all", data=lines)
    assert prod.returncode == 0, prod.stderr

    wenv = dict(env)
    del wenv["ZL_KAFKA_PROPERTIES_FILE"]  # this time the credentials come from -X only
    wenv["ZL_HTTP_PORT_FILE"] = str(tmp_path / "w.port")
    log = open(tmp_path / "w.log", "ab")
    worker = subprocess.Popen([str(Path(need_env("ZL_BUILD_DIR")) / "tests" / "zl-passthrough"),
                               *x_args(sasl_props())], env=wenv, stdout=log, stderr=log, start_new_session=True)
    log.close()
    try:
        def verified():
            rows = psql("SELECT deposit_id, state FROM deposits WHERE deposit_id = ANY(:'v1'::text[])",
                        "{" + ",".join(ids) + "}")
            return len(rows) == len(ids) and all(r[1] == "verified" for r in rows)
        wait_until(verified, 45, "every deposit verified through the SASL broker")
        eff = psql("SELECT deposit_id, n FROM pt_effects WHERE deposit_id = ANY(:'v1'::text[])",
                   "{" + ",".join(ids) + "}")
        assert sorted(r[0] for r in eff) == sorted(ids)
        assert all(r[1] == "1" for r in eff), f"applied more than once: {eff}"

        def published():
            c = broker.kcat("-C", "-t", prefix + "deposits.verified", "-o", "beginning", "-e", "-q", "-f", "%k\n")
            return c.returncode == 0 and set(ids) <= set(c.stdout.split())
        wait_until(published, 20, "every deposit published downstream through the SASL broker")
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.send_signal(signal.SIGKILL)
                worker.wait(timeout=10)
    text = (tmp_path / "w.log").read_text(errors="replace")
    assert worker.returncode == 0, f"worker did not drain cleanly on SIGTERM ({worker.returncode}):\n{text[-3000:]}"
    assert PASSWORD not in text, "the worker logged the SASL password"

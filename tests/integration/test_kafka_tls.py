"""Kafka over TLS: mutual TLS (security.protocol=SSL) and SCRAM-SHA-512 over
TLS (SASL_SSL), the settings docs/deploy.md gives, end to end through a
stage worker, and the ways a client must fail: loudly, quickly, and never by
talking plaintext instead.

This module starts a SECOND real broker (zlharness.kafka_broker.TlsBroker,
the jars of the dev broker, KRaft, free ports, stopped by pid) with an SSL
listener that requires a client certificate and a SASL_SSL listener with
SCRAM users written by `kafka-storage format --add-scram`. The certificates
are made here with openssl (a throwaway CA; a broker certificate naming
127.0.0.1 and localhost) and keytool (the broker's truststore). PostgreSQL is
the shared dev database.
"""
import json
import time
import uuid
from pathlib import Path

import pytest

from zlharness.kafka_broker import PASSWORD, TlsBroker, tool_env, write_props_file, x_args, zl_topics
from zlharness.procs import running, stop, wait_until
from zlharness.stage import StagePipeline, effects, insert_rows, new_deposit, states
from zlharness.tls import deploy_doc_blocks, issue, make_ca

# A client that gives up must say so within this many seconds (the tools'
# admin timeout is 8 s here), not hang like a slow broker.
GIVE_UP_S = 30
DEPOSITS = 5


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with running(TlsBroker(tmp_path_factory.mktemp("tls-kafka"))) as b:
        yield b


@pytest.fixture(scope="module")
def stranger(tmp_path_factory):
    """A CA the broker never heard of, and a client certificate it signed."""
    folder = tmp_path_factory.mktemp("stranger-ca")
    ca = make_ca(folder, "stranger")
    return ca, issue(ca, folder, "stranger-client", sans=("DNS:zl-worker",), usage="clientAuth")


def topics_with(broker: TlsBroker, prefix: str) -> set[str]:
    out = broker.kcat("-L", "-J")
    assert out.returncode == 0, out.stderr
    return {t["topic"] for t in json.loads(out.stdout)["topics"] if t["topic"].startswith(prefix)}


def pass_deposits_through(broker: TlsBroker, listener: str, props: dict, tmp_path: Path) -> None:
    """zl-topics and the passthrough stage, given only `props` in a
    ZL_KAFKA_PROPERTIES_FILE, on `listener`: every deposit must be applied
    once, marked verified and published downstream, and the worker must
    drain cleanly on SIGTERM."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    env = tool_env(broker.bootstrap_of(listener), prefix)
    env["ZL_KAFKA_PROPERTIES_FILE"] = str(write_props_file(tmp_path / "kafka.properties", props))
    out = zl_topics(env)
    assert out.returncode == 0, f"zl-topics failed over {listener}: {out.stderr}"

    deposits = [new_deposit() for _ in range(DEPOSITS)]
    ids = [d["deposit_id"] for d in deposits]
    insert_rows(deposits)
    lines = "".join(f"{d['deposit_id']}\t{json.dumps(d)}\n" for d in deposits)
    prod = broker.kcat("-P", "-t", prefix + "deposits.detected", "-K", "\t", "-X", "acks=all", data=lines,
                       props=props, listener=listener)
    assert prod.returncode == 0, prod.stderr

    stage = StagePipeline(prefix=prefix, workdir=tmp_path, env=env)
    worker = stage.start("w")
    try:
        wait_until(lambda: states(ids) == {i: "verified" for i in ids}, 45,
                   f"every deposit verified through the {listener} listener")
        assert effects(ids) == {i: 1 for i in ids}, f"not applied exactly once: {effects(ids)}"

        def published():
            c = broker.kcat("-C", "-t", prefix + "deposits.verified", "-o", "beginning", "-e", "-q", "-f", "%k\n",
                            props=props, listener=listener)
            return c.returncode == 0 and set(ids) <= set(c.stdout.split())
        wait_until(published, 20, f"every deposit published downstream through the {listener} listener")
    finally:
        code = stop(worker)
        stage.stop_all()
    text = stage.log("w")
    assert code == 0, f"worker did not drain cleanly on SIGTERM ({code}):\n{text[-3000:]}"
    assert PASSWORD not in text, "the worker logged the SCRAM password"


def refused(broker: TlsBroker, listener: str, props: dict) -> str:
    """zl-topics as a client the broker must not accept: asserts it exits
    non-zero within GIVE_UP_S and created nothing; its output."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    t0 = time.monotonic()
    out = zl_topics(tool_env(broker.bootstrap_of(listener), prefix), *x_args(props))
    elapsed = time.monotonic() - t0
    text = out.stdout + out.stderr
    assert out.returncode != 0, f"zl-topics succeeded as a client the broker must refuse:\n{text[-3000:]}"
    assert elapsed < GIVE_UP_S, f"took {elapsed:.0f}s to give up"
    assert not topics_with(broker, prefix), "topics created by a refused client"
    return text


def test_stage_worker_moves_deposits_over_mutual_tls(broker, tmp_path):
    """Guards against ssl.* properties not reaching a stage's consumer or
    producer: over a listener that requires TLS and a client certificate,
    only a client that applied all of them gets through."""
    pass_deposits_through(broker, "SSL", broker.ssl_props(), tmp_path)


def test_stage_worker_moves_deposits_over_scram_sha512_tls(broker, tmp_path):
    """Guards against SCRAM or TLS settings that work for one client and
    not another: the docs' production properties (SASL_SSL, SCRAM-SHA-512,
    the CA, host name check) carry a deposit through a stage worker."""
    pass_deposits_through(broker, "SASL_SSL", broker.scram_props(), tmp_path)


def test_client_that_does_not_trust_the_ca_fails_and_never_talks_plaintext(broker, stranger):
    """Guards against a man in the middle: a client whose CA did not sign
    the broker's certificate must fail the handshake, loudly, and must not
    go on without TLS (the listener would refuse plaintext as well, but the
    client's error must be the certificate, not a protocol mismatch)."""
    stranger_ca, _ = stranger
    for listener, props in (("SSL", broker.ssl_props(ca=stranger_ca.crt)),
                            ("SASL_SSL", broker.scram_props(ca=stranger_ca.crt))):
        text = refused(broker, listener, props)
        assert "certificate verify failed" in text, f"{listener}: no certificate error in:\n{text[-3000:]}"
        assert PASSWORD not in text, "the SCRAM password was printed"


def test_tls_listener_refuses_a_plaintext_client(broker):
    """Guards against a listener that would serve a client which forgot
    security.protocol: the broker must not answer it."""
    for listener in ("SSL", "SASL_SSL"):
        out = broker.kcat("-L", "-m", "3", props={"security.protocol": "plaintext"}, listener=listener)
        assert out.returncode != 0 and "1 brokers" not in out.stdout, \
            f"{listener} answered a plaintext client: {out.stdout}"


def test_mutual_tls_refuses_a_client_certificate_from_another_ca(broker, stranger):
    """Guards against a broker that would let any certificate in: the SSL
    listener requires one its CA signed."""
    _, stranger_client = stranger
    text = refused(broker, "SSL", broker.ssl_props(cert=stranger_client))
    # The broker's TLS alert, as librdkafka reports it.
    assert "certificate unknown" in text, f"no certificate alert in:\n{text[-3000:]}"


def test_wrong_scram_password_is_refused_with_an_authentication_error(broker):
    """Guards against a bad SCRAM credential looking like a slow broker:
    the tool exits non-zero, says authentication failed, and does not print
    the password it tried."""
    wrong = "not-the-scram-password"
    text = refused(broker, "SASL_SSL", broker.scram_props(password=wrong))
    assert "authentication" in text.lower(), f"no authentication error in the output:\n{text[-3000:]}"
    assert wrong not in text, "the tried password was printed"



def documented_client(protocol: str) -> dict:
    """The docs' librdkafka properties block for security.protocol=protocol."""
    for block in deploy_doc_blocks("properties"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line and not line.startswith("#"))
        if props.get("security.protocol") == protocol and "listeners" not in props:
            return props
    raise AssertionError(f"docs/deploy.md shows no client properties with security.protocol={protocol}")


def test_docs_show_the_client_properties_these_tests_prove(broker):
    """Guards against docs/deploy.md drifting from what is tested: its
    client blocks name exactly the properties the tests give the worker,
    with the same values wherever a value is not a path or a secret."""
    for protocol, tested in (("SSL", broker.ssl_props()), ("SASL_SSL", broker.scram_props())):
        shown = documented_client(protocol)
        assert set(shown) == set(tested), f"{protocol}: docs show {sorted(shown)}, tests use {sorted(tested)}"
        for key in ("security.protocol", "sasl.mechanisms", "ssl.endpoint.identification.algorithm"):
            assert shown.get(key) == tested.get(key), f"{protocol} {key}: docs {shown.get(key)}, tests {tested.get(key)}"

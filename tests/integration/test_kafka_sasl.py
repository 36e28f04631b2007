"""Authenticated Kafka: the workers and tools talk SASL through librdkafka's
pass-through properties, and a wrong password fails loudly.

Production brokers require authentication; the shared dev broker does not.
So this module starts a SECOND real broker from the same jars
($ZL_KAFKA_HOME/lib), KRaft mode, in a temporary directory on free ports, with
a SASL_PLAINTEXT listener using the PLAIN mechanism (users defined in the
listener's JAAS config), and stops it by pid at the end. PostgreSQL is the
shared dev database: only the broker is the subject here.

TLS uses the same mechanism (security.protocol=SASL_SSL plus ssl.* properties,
see docs/deploy.md); it is not exercised here because the broker would need a
keystore, which this machine has no tool to make offline without keytool
plumbing that would prove nothing about our code.
"""
import base64
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conftest import need_env
from runtime_helpers import insert_rows, new_deposit, psql, wait_until
from zlharness.procs import free_port

USER, PASSWORD = "zl-worker", "s3cret-for-tests"
ADMIN_USER, ADMIN_PASSWORD = "admin", "admin-secret-for-tests"
BROKER_START_TIMEOUT_S = 60


def sasl_props(user: str = USER, password: str = PASSWORD) -> dict:
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN", "sasl.username": user,
            "sasl.password": password}


def x_args(props: dict) -> list[str]:
    out = []
    for k, v in props.items():
        out += ["-X", f"{k}={v}"]
    return out


def write_props_file(path: Path, props: dict, mode: int = 0o600) -> Path:
    path.write_text("# librdkafka properties for the SASL test broker\n"
                    + "".join(f"{k}={v}\n" for k, v in props.items()))
    os.chmod(path, mode)
    return path


class SaslBroker:
    """A one-node KRaft broker with a SASL_PLAINTEXT (PLAIN) client listener."""

    def __init__(self, workdir: Path, users: dict | None = None, extra_properties: str = ""):
        """users: more SASL users (name: password); extra_properties: more
        server.properties lines (an authorizer, for the ACL tests)."""
        self.dir = workdir
        self.users = users or {}
        self.extra_properties = extra_properties
        self.port = free_port()
        self.controller_port = free_port()
        self.proc = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        lib = Path(need_env("ZL_KAFKA_HOME")) / "lib"
        if not list(lib.glob("kafka_2.13-*.jar")):
            raise RuntimeError(f"Kafka jars missing in {lib}: run deploy/local/deps")
        data = self.dir / "data"
        data.mkdir(parents=True)
        jaas = ("org.apache.kafka.common.security.plain.PlainLoginModule required"
                f' username="{ADMIN_USER}" password="{ADMIN_PASSWORD}"'
                f' user_{ADMIN_USER}="{ADMIN_PASSWORD}" user_{USER}="{PASSWORD}"'
                + "".join(f' user_{u}="{pw}"' for u, pw in self.users.items()) + ";")
        (self.dir / "server.properties").write_text(f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{self.controller_port}
listeners=SASL_PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}
advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{self.port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_PLAINTEXT
listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms=PLAIN
sasl.mechanism.inter.broker.protocol=PLAIN
listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config={jaas}
log.dirs={data}
num.partitions=2
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=2
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
{self.extra_properties}""")
        (self.dir / "log4j.properties").write_text(
            "log4j.rootLogger=WARN, stdout\n"
            "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n")
        # Small heap: the machine is shared with other tests and the dev broker.
        jvm = ["java", "-Xms128m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
               "-Djava.awt.headless=true", f"-Dlog4j.configuration=file:{self.dir / 'log4j.properties'}",
               "-cp", str(lib / "*")]
        # A KRaft cluster id is a UUID in URL-safe base64 without padding.
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        fmt = subprocess.run(jvm + ["kafka.tools.StorageTool", "format", "-t", cluster_id,
                                    "-c", str(self.dir / "server.properties")],
                             capture_output=True, text=True, timeout=120)
        assert fmt.returncode == 0, f"kafka storage format failed: {fmt.stdout}{fmt.stderr}"
        log = open(self.dir / "kafka.log", "ab")
        self.proc = subprocess.Popen(jvm + ["kafka.Kafka", str(self.dir / "server.properties")], stdout=log,
                                     stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + BROKER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"SASL broker exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
            probe = subprocess.run(["kcat", "-b", self.bootstrap, *x_args(sasl_props()), "-L", "-m", "2"],
                                   capture_output=True, text=True, timeout=30)
            if probe.returncode == 0 and "1 brokers" in probe.stdout:
                return
            time.sleep(0.5)
        raise AssertionError(f"SASL broker not ready after {BROKER_START_TIMEOUT_S}s:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def log(self) -> str:
        p = self.dir / "kafka.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def kcat(self, *args: str, props: dict | None = None, data: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["kcat", "-b", self.bootstrap, *x_args(props or sasl_props()), *args], input=data,
                              capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = SaslBroker(tmp_path_factory.mktemp("sasl-kafka"))
    try:
        b.start()
        yield b
    finally:
        b.stop()


def base_env(broker: SaslBroker, prefix: str) -> dict:
    return {
        "PATH": os.environ["PATH"],
        "ZL_KAFKA_BROKERS": broker.bootstrap,
        "ZL_PG_DSN": need_env("ZL_PG_DSN"),
        "ZL_TOPIC_PREFIX": prefix,
        "ZL_GROUP_ID": f"zl-passthrough-{prefix}",
        "ZL_TOPICS_STAGES": "passthrough",
        "ZL_TOPIC_PARTITIONS": "2",
        "ZL_RETRY_TIERS_MS": "500",
        "ZL_ADMIN_TIMEOUT_MS": "8000",
        "ZL_LOG_LEVEL": "info",
    }


def zl_topics(env: dict, *args: str) -> subprocess.CompletedProcess:
    env = dict(env, ZL_TOPIC_REPLICATION="1", ZL_TOPICS_LOCAL="true")  # one broker
    return subprocess.run([str(Path(need_env("ZL_BIN_DIR")) / "zl-topics"), *args], env=env, capture_output=True,
                          text=True, timeout=60)


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

"""The local services behave like the production ones the chaos tests rely on."""
import os
import subprocess
import uuid

from conftest import services


def kcat(*args: str, data: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["kcat", *args], input=data, capture_output=True, text=True, timeout=timeout)


def test_kafka_keeps_messages_across_restart(brokers):
    """Guards against a broker that loses its log on restart: the chaos tests
    restart Kafka mid-run and count on every acknowledged message surviving."""
    topic = f"zl.test.restart.{uuid.uuid4().hex[:8]}"
    # The broker does not auto-create topics; create it with Kafka's own tool.
    java_cp = os.path.join(os.environ["ZL_KAFKA_HOME"], "lib", "*")
    subprocess.run(["java", "-cp", java_cp, "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", brokers,
                    "--create", "--topic", topic, "--partitions", "1", "--replication-factor", "1"],
                   check=True, capture_output=True, timeout=120)
    lines = [f"m{i}" for i in range(100)]
    produced = kcat("-P", "-b", brokers, "-t", topic, "-X", "acks=all", data="\n".join(lines) + "\n")
    assert produced.returncode == 0, produced.stderr

    pid_before = services("pid", "kafka").strip()
    services("restart", "kafka")
    pid_after = services("pid", "kafka").strip()
    assert pid_before != pid_after, "restart did not replace the broker process"

    consumed = kcat("-C", "-b", brokers, "-t", topic, "-o", "beginning", "-e", "-q")
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout.split() == lines


def test_postgres_keeps_rows_across_restart(pg_dsn):
    """Guards against a database that comes back empty: the state table is the
    source of truth for every deposit."""
    psql = [os.path.join(os.environ["ZL_PG_BIN"], "psql"), pg_dsn, "-v", "ON_ERROR_STOP=1", "-tAc"]
    table = f"restart_{uuid.uuid4().hex[:8]}"
    subprocess.run(psql + [f"CREATE TABLE {table}(v int); INSERT INTO {table} VALUES (7)"], check=True,
                   capture_output=True, timeout=30)
    services("restart", "postgres")
    out = subprocess.run(psql + [f"SELECT v FROM {table}"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "7"


def test_status_reports_every_service_running():
    """Guards against `services up` returning while a service already died."""
    out = services("status")
    for name in ("postgres", "kafka", "anvil", "ipfs"):
        assert f"{name} running" in out, out

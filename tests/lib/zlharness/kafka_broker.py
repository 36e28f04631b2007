"""A SECOND real Kafka broker for the tests of secured connections.

The shared dev broker (deploy/local/services) speaks PLAINTEXT only, as the
local stack should; production brokers authenticate and encrypt. So the tests
of SASL, TLS and SCRAM start a broker of their own from the same jars
($ZL_KAFKA_HOME/lib): one node, KRaft (broker and controller), in the test's
folder, on free loopback ports, and stop it by pid.

  KraftBroker  what every such broker shares: server.properties, storage
               format, start with a bounded readiness probe, stop by pid, kcat
  SaslBroker   SASL_PLAINTEXT with PLAIN, users in the listener's JAAS config
  TlsBroker    SSL with client certificates (mutual TLS), and SASL_SSL with
               SCRAM-SHA-512, users stored by `kafka-storage format --add-scram`

Client properties are librdkafka's (what kcat -X and our -X / properties
file take); the broker's own are Java's.
"""
import base64
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

from .env import bin_path, need_env
from .procs import free_port
from .tls import Cert, issue, java_keystore, java_truststore, make_ca

USER, PASSWORD = "zl-worker", "s3cret-for-tests"
ADMIN_USER, ADMIN_PASSWORD = "admin", "admin-secret-for-tests"
BROKER_START_TIMEOUT_S = 60
# Storage format runs a JVM of its own.
FORMAT_TIMEOUT_S = 120
KCAT_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20
# Metadata requests of the readiness probe, each bounded in seconds.
PROBE_METADATA_TIMEOUT_S = 2
# zl-topics gives up after ZL_ADMIN_TIMEOUT_MS (8 s below); this is the hang guard.
ZL_TOPICS_TIMEOUT_S = 60


def x_args(props: dict) -> list[str]:
    """props as kcat's / our binaries' -X property=value arguments."""
    out = []
    for k, v in props.items():
        out += ["-X", f"{k}={v}"]
    return out


def write_props_file(path: Path, props: dict, mode: int = 0o600) -> Path:
    """A ZL_KAFKA_PROPERTIES_FILE: property=value lines, mode `mode`."""
    path.write_text("# librdkafka properties for the test broker\n"
                    + "".join(f"{k}={v}\n" for k, v in props.items()))
    os.chmod(path, mode)
    return path


def tool_env(bootstrap: str, prefix: str) -> dict:
    """The whole environment of zl-topics and the passthrough stage against
    a test broker: the shared dev database, topics under prefix, short
    retries, an 8 s admin timeout (nothing inherited but PATH)."""
    return {
        "PATH": os.environ["PATH"],
        "ZL_KAFKA_BROKERS": bootstrap,
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
    """zl-topics with env and args, run to its end (never raises on failure).
    A test broker is one node: its topics have one replica, which zl-topics
    makes only when told the setup is local."""
    env = dict(env, ZL_TOPIC_REPLICATION="1", ZL_TOPICS_LOCAL="true")
    return subprocess.run([bin_path("zl-topics"), *args], env=env, capture_output=True, text=True,
                          timeout=ZL_TOPICS_TIMEOUT_S)


def sasl_props(user: str = USER, password: str = PASSWORD) -> dict:
    """A client of SaslBroker's listener."""
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN", "sasl.username": user,
            "sasl.password": password}


class KraftBroker:
    """A one-node KRaft broker. A subclass names its client listeners
    (LISTENERS: listener names, each also its security protocol), the
    inter-broker one, their server.properties lines, the storage-format
    arguments, and the client properties of the readiness probe."""

    LISTENERS: tuple[str, ...] = ()
    INTER_BROKER_LISTENER = ""

    def __init__(self, workdir: Path, extra_properties: str = "", kafka_home: Path | None = None):
        """extra_properties: more server.properties lines (an authorizer);
        kafka_home: where the broker's jars are (lib/), default
        $ZL_KAFKA_HOME (another version's, for a compatibility test)."""
        self.dir = workdir
        self.extra_properties = extra_properties
        self.kafka_home = kafka_home
        self.ports = {name: free_port() for name in self.LISTENERS}
        self.controller_port = free_port()
        self.proc = None

    # ----------------------------------------------------- for subclasses
    def security_properties(self) -> str:
        """server.properties lines of the client listeners' security."""
        raise NotImplementedError

    def format_args(self) -> list[str]:
        """More arguments of `kafka-storage format` (SCRAM users)."""
        return []

    def client_props(self) -> dict:
        """librdkafka properties of a client the broker accepts on its
        first listener (the readiness probe, kcat by default)."""
        raise NotImplementedError

    # ----------------------------------------------------------- shared
    @property
    def port(self) -> int:
        return self.ports[self.LISTENERS[0]]

    @property
    def bootstrap(self) -> str:
        """The first listener's address."""
        return f"127.0.0.1:{self.port}"

    def bootstrap_of(self, listener: str) -> str:
        return f"127.0.0.1:{self.ports[listener]}"

    def _server_properties(self, data: Path) -> str:
        listeners = ",".join(f"{n}://127.0.0.1:{p}" for n, p in self.ports.items())
        protocols = ",".join(f"{n}:{n}" for n in self.LISTENERS)
        return f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{self.controller_port}
listeners={listeners},CONTROLLER://127.0.0.1:{self.controller_port}
advertised.listeners={listeners}
controller.listener.names=CONTROLLER
inter.broker.listener.name={self.INTER_BROKER_LISTENER}
listener.security.protocol.map={protocols},CONTROLLER:PLAINTEXT
{self.security_properties()}
log.dirs={data}
num.partitions=2
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=2
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
{self.extra_properties}"""

    def start(self) -> None:
        lib = Path(self.kafka_home or need_env("ZL_KAFKA_HOME")) / "lib"
        if not list(lib.glob("kafka_2.13-*.jar")):
            raise RuntimeError(f"Kafka jars missing in {lib}: run deploy/local/deps")
        data = self.dir / "data"
        data.mkdir(parents=True)
        (self.dir / "server.properties").write_text(self._server_properties(data))
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
        # "--cluster-id=": one id in 64 starts with "-", which the tool's
        # parser took for an option after "-t" (make check, stop 29).
        fmt = subprocess.run(jvm + ["kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                                    "-c", str(self.dir / "server.properties"), *self.format_args()],
                             capture_output=True, text=True, timeout=FORMAT_TIMEOUT_S)
        assert fmt.returncode == 0, f"kafka storage format failed: {fmt.stdout}{fmt.stderr}"
        log = open(self.dir / "kafka.log", "ab")
        self.proc = subprocess.Popen(jvm + ["kafka.Kafka", str(self.dir / "server.properties")], stdout=log,
                                     stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        name = type(self).__name__
        deadline = time.monotonic() + BROKER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{name} exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
            probe = self.kcat("-L", "-m", str(PROBE_METADATA_TIMEOUT_S))
            if probe.returncode == 0 and "1 brokers" in probe.stdout:
                return
            time.sleep(0.5)
        raise AssertionError(f"{name} not ready after {BROKER_START_TIMEOUT_S}s:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def log(self) -> str:
        p = self.dir / "kafka.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def kcat(self, *args: str, props: dict | None = None, data: str | None = None,
             listener: str | None = None) -> subprocess.CompletedProcess:
        """kcat against `listener` (default the first) as a client with
        props (default client_props())."""
        where = self.bootstrap_of(listener) if listener else self.bootstrap
        return subprocess.run(["kcat", "-b", where, *x_args(props or self.client_props()), *args], input=data,
                              capture_output=True, text=True, timeout=KCAT_TIMEOUT_S)


class PlainBroker(KraftBroker):
    """A one-node KRaft broker with a PLAINTEXT client listener (for a
    broker of another Kafka version than the dev broker's)."""

    LISTENERS = ("PLAINTEXT",)
    INTER_BROKER_LISTENER = "PLAINTEXT"

    def security_properties(self) -> str:
        return ""

    def client_props(self) -> dict:
        return {}


class SaslBroker(KraftBroker):
    """A one-node KRaft broker with a SASL_PLAINTEXT (PLAIN) client listener."""

    LISTENERS = ("SASL_PLAINTEXT",)
    INTER_BROKER_LISTENER = "SASL_PLAINTEXT"

    def __init__(self, workdir: Path, users: dict | None = None, extra_properties: str = ""):
        """users: more SASL users (name: password); extra_properties: more
        server.properties lines (an authorizer, for the ACL tests)."""
        super().__init__(workdir, extra_properties)
        self.users = users or {}

    def security_properties(self) -> str:
        jaas = ("org.apache.kafka.common.security.plain.PlainLoginModule required"
                f' username="{ADMIN_USER}" password="{ADMIN_PASSWORD}"'
                f' user_{ADMIN_USER}="{ADMIN_PASSWORD}" user_{USER}="{PASSWORD}"'
                + "".join(f' user_{u}="{pw}"' for u, pw in self.users.items()) + ";")
        return f"""\
sasl.enabled.mechanisms=PLAIN
sasl.mechanism.inter.broker.protocol=PLAIN
listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config={jaas}"""

    def client_props(self) -> dict:
        return sasl_props()


class TlsBroker(KraftBroker):
    """A one-node KRaft broker whose clients all speak TLS, with certificates
    made by the test (zlharness.tls) under workdir/certs:

      SSL       mutual TLS: the client checks the broker's certificate and
                name, the broker requires a client certificate from the CA
      SASL_SSL  TLS plus SCRAM-SHA-512 (users: USER, ADMIN_USER, and
                `users`), no client certificate

    The broker talks to itself over SSL with its own certificate. The CA,
    the server certificate and a client certificate are attributes, so a
    test can build both good and bad clients."""

    LISTENERS = ("SSL", "SASL_SSL")
    INTER_BROKER_LISTENER = "SSL"
    MECHANISM = "SCRAM-SHA-512"
    # Protects only the stores of a throwaway CA, in the test's own folder.
    STORE_PASSWORD = "store-pass-for-tests"

    def __init__(self, workdir: Path, users: dict | None = None, extra_properties: str = ""):
        super().__init__(workdir, extra_properties)
        self.users = {USER: PASSWORD, ADMIN_USER: ADMIN_PASSWORD, **(users or {})}
        certs = workdir / "certs"
        self.ca: Cert = make_ca(certs)
        self.server: Cert = issue(self.ca, certs, "broker")
        self.client: Cert = issue(self.ca, certs, "client", sans=("DNS:zl-worker",), usage="clientAuth")
        self.keystore = java_keystore(self.server, self.ca, certs / "broker.p12", self.STORE_PASSWORD)
        self.truststore = java_truststore(self.ca, certs / "truststore.p12", self.STORE_PASSWORD)

    def security_properties(self) -> str:
        return f"""\
ssl.keystore.type=PKCS12
ssl.keystore.location={self.keystore}
ssl.keystore.password={self.STORE_PASSWORD}
ssl.key.password={self.STORE_PASSWORD}
ssl.truststore.type=PKCS12
ssl.truststore.location={self.truststore}
ssl.truststore.password={self.STORE_PASSWORD}
listener.name.ssl.ssl.client.auth=required
listener.name.sasl_ssl.ssl.client.auth=none
sasl.enabled.mechanisms={self.MECHANISM}
listener.name.sasl_ssl.sasl.enabled.mechanisms={self.MECHANISM}
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"""

    def format_args(self) -> list[str]:
        # KRaft keeps SCRAM credentials in the metadata log; format writes
        # them before the first start, so no JAAS file holds a password.
        out = []
        for user, password in self.users.items():
            out += ["--add-scram", f"{self.MECHANISM}=[name={user},password={password}]"]
        return out

    def ssl_props(self, ca: Path | None = None, cert: Cert | None = None) -> dict:
        """A client of the SSL listener: trusts ca (default the broker's CA)
        and presents cert (default the test's client certificate)."""
        cert = cert or self.client
        return {"security.protocol": "SSL", "ssl.ca.location": str(ca or self.ca.crt),
                "ssl.certificate.location": str(cert.crt), "ssl.key.location": str(cert.key),
                "ssl.endpoint.identification.algorithm": "https"}

    def scram_props(self, user: str = USER, password: str | None = None, ca: Path | None = None) -> dict:
        """A client of the SASL_SSL listener as user (password: the user's)."""
        return {"security.protocol": "SASL_SSL", "sasl.mechanisms": self.MECHANISM, "sasl.username": user,
                "sasl.password": self.users[user] if password is None else password,
                "ssl.ca.location": str(ca or self.ca.crt), "ssl.endpoint.identification.algorithm": "https"}

    def client_props(self) -> dict:
        return self.ssl_props()

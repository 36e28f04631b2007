"""A SECOND real PostgreSQL that accepts TLS connections only, for the tests
of sslmode=verify-full.

The dev database (deploy/local/services) listens in plaintext, as the local
stack should. This one is made the same way (Debian's binaries, initdb and
pg_ctl run as the postgres user when we are root, since both refuse root; the
pid read from postmaster.pid and signalled directly to stop), with:
  - ssl=on and a server certificate from a CA of the test's own
    (zlharness.tls), naming 127.0.0.1 and localhost;
  - pg_hba.conf accepting `hostssl` and rejecting `hostnossl`, so whatever
    reaches it spoke TLS: a client that fell back to plaintext is refused.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from .env import REPO, need_env
from .procs import free_port, run
from .tls import Cert, issue, make_ca

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
INITDB_TIMEOUT_S = 120


def _as_pg(cmd: list) -> list:
    """cmd run as the postgres user when we are root (as deploy/local/services does)."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _reachable_by_postgres(folder: Path) -> bool:
    if os.geteuid() != 0:
        return True
    return subprocess.run(_as_pg(["test", "-x", str(folder)]), capture_output=True).returncode == 0


def _new_home() -> Path:
    """An empty folder under ZL_LOCAL_DIR (default <repo>/.local), or under
    the system's temporary folder when the postgres user cannot reach that
    one (a clone in a private home directory)."""
    local = Path(os.environ.get("ZL_LOCAL_DIR") or REPO / ".local")
    local.mkdir(parents=True, exist_ok=True)
    if _reachable_by_postgres(local):
        home = local / f"pg-tls-{uuid.uuid4().hex[:8]}"
        home.mkdir()
    else:
        home = Path(tempfile.mkdtemp(prefix="zl-pg-tls-"))
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
    return home


class TlsPostgres:
    """A throwaway TLS-only PostgreSQL on a free loopback port, database
    `zeroloss`, user `zeroloss` (trust auth: the subject is the channel, not
    the password). start(), then dsn(); stop() removes everything."""

    def __init__(self):
        self.home: Path | None = None
        self.port = free_port()
        self.pid: int | None = None
        self.ca: Cert | None = None

    @property
    def data(self) -> Path:
        return self.home / "data"

    def _bin(self, name: str) -> str:
        return str(Path(need_env("ZL_PG_BIN")) / name)

    def dsn(self, ca: Path | None = None, host: str = "127.0.0.1", sslmode: str = "verify-full", **extra: str) -> str:
        """A libpq URI for this server: sslmode, trusting ca (default the
        server's CA), connecting to host (extra: more parameters, such as
        hostaddr to reach 127.0.0.1 while checking another name)."""
        params = {"sslmode": sslmode, "sslrootcert": str(ca or self.ca.crt), **extra}
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"postgresql://zeroloss@{host}:{self.port}/zeroloss?{query}"

    def start(self) -> None:
        self.home = _new_home()
        run(_as_pg([self._bin("initdb"), "-D", self.data, "-U", "zeroloss", "--auth=trust", "-E", "UTF8",
                    "--locale=C.UTF-8"]), timeout=INITDB_TIMEOUT_S)
        self.ca = make_ca(self.home / "ca")
        server = issue(self.ca, self.home / "ca", "server", usage="serverAuth")
        # The server reads its key only if it owns it and nobody else may read it.
        for src, name in ((server.crt, "server.crt"), (server.key, "server.key")):
            shutil.copy(src, self.data / name)
            os.chmod(self.data / name, 0o600)
            if os.geteuid() == 0:
                shutil.chown(self.data / name, "postgres", "postgres")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                       f"unix_socket_directories = '{self.home}'\nssl = on\n"
                       "ssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                       "ssl_min_protocol_version = 'TLSv1.2'\nlog_connections = on\n")
        (self.data / "pg_hba.conf").write_text(
            "# TLS only over TCP: a plaintext connection is rejected, never served\n"
            "local     all all                trust\n"
            "hostssl   all all 127.0.0.1/32   trust\n"
            "hostnossl all all 127.0.0.1/32   reject\n")
        run(_as_pg([self._bin("pg_ctl"), "-D", self.data, "-l", self.home / "postgres.log", "-W", "start"]),
            timeout=START_TIMEOUT_S)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (self.data / "postmaster.pid").exists():
            if time.monotonic() > deadline:
                raise AssertionError(f"postgres wrote no pid file:\n{self.log()[-3000:]}")
            time.sleep(0.1)
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        while subprocess.run([self._bin("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]).returncode:
            if time.monotonic() > deadline:
                raise AssertionError(f"postgres not ready after {START_TIMEOUT_S}s:\n{self.log()[-3000:]}")
            time.sleep(0.2)
        run([self._bin("createdb"), "-h", self.home, "-p", str(self.port), "-U", "zeroloss", "zeroloss"],
            timeout=START_TIMEOUT_S)

    def log(self) -> str:
        p = self.home / "postgres.log" if self.home else None
        return p.read_text(errors="replace") if p and p.exists() else ""

    def stop(self) -> None:
        """Fast shutdown (SIGINT) by pid, SIGKILL after STOP_TIMEOUT_S; then
        the folder is removed."""
        if self.pid is None and self.home is not None and (self.data / "postmaster.pid").exists():
            # start() failed after the server came up: stop it all the same.
            self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGINT)
                deadline = time.monotonic() + STOP_TIMEOUT_S
                # A clean shutdown removes postmaster.pid; the process may
                # linger as a zombie where no init reaps it.
                while (self.data / "postmaster.pid").exists() and time.monotonic() < deadline:
                    os.kill(self.pid, 0)
                    time.sleep(0.1)
                if (self.data / "postmaster.pid").exists():
                    os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.pid = None
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None

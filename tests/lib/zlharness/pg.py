"""PostgreSQL through psql and zl-migrate."""
import os
import subprocess
import urllib.parse
from pathlib import Path

from .env import SCHEMA_DIR, HarnessError, bin_path, need_env
from .procs import run

PSQL_TIMEOUT_S = 60


def psql(sql: str, *params: str, dsn: str | None = None, env: dict | None = None, check: bool = True,
         timeout: float = PSQL_TIMEOUT_S) -> list[list[str]]:
    """Runs sql (one statement or a script, e.g. a COPY with its data)
    through psql; rows as lists of text. Parameters are psql variables,
    quoted by psql itself (:'v1', :'v2', ...), never pasted into the SQL.
    dsn: default ZL_PG_DSN of env (default os.environ). check=False: a
    failure returns [["ERROR", stderr]] instead of raising."""
    cmd = [os.path.join(need_env("ZL_PG_BIN", env), "psql"), dsn or need_env("ZL_PG_DSN", env),
           "-v", "ON_ERROR_STOP=1", "-X", "-q", "-tA", "-F", "\t"]
    for i, p in enumerate(params, 1):
        cmd += ["-v", f"v{i}={p}"]
    out = subprocess.run(cmd, input=sql, env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        if check:
            raise HarnessError(f"psql failed: {out.stderr}")
        return [["ERROR", out.stderr]]
    return [line.split("\t") for line in out.stdout.splitlines() if line]


def migrate(dsn: str | None = None, env: dict | None = None) -> None:
    """zl-migrate: every schema migration applied to dsn (default ZL_PG_DSN)."""
    env = dict(os.environ if env is None else env, ZL_SCHEMA_DIR=str(SCHEMA_DIR))
    if dsn:
        env["ZL_PG_DSN"] = dsn
    run([bin_path("zl-migrate", env)], env=env, timeout=120)


def ensure_pt_effects(env: dict | None = None) -> None:
    """The passthrough test stage's effect table (tests/c/zl-passthrough.c)."""
    psql("CREATE TABLE IF NOT EXISTS pt_effects (deposit_id text PRIMARY KEY, n integer NOT NULL)", env=env)


def dsn_for(dbname: str, dsn: str | None = None) -> str:
    """dsn (default ZL_PG_DSN) with another database name."""
    u = urllib.parse.urlsplit(dsn or need_env("ZL_PG_DSN"))
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + dbname, u.query, u.fragment))


def create_database(name: str, env: dict | None = None) -> str:
    """A fresh database `name` (our own hex, never input) on the server of
    ZL_PG_DSN with every migration applied; its DSN."""
    psql(f"CREATE DATABASE {name}", env=env)
    dsn = dsn_for(name, need_env("ZL_PG_DSN", env))
    migrate(dsn, env)
    return dsn


def drop_database(name: str, env: dict | None = None) -> None:
    psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", env=env)


def local_dsn(local: Path) -> str:
    """The DSN of the PostgreSQL deploy/local/services started in `local`."""
    ports = dict(line.split("=", 1) for line in (local / "ports.env").read_text().split())
    return f"postgresql://zeroloss@127.0.0.1:{ports['PG_PORT']}/zeroloss"

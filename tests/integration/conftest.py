"""Shared fixtures for the integration tests.

tests/run-all starts the real local services and exports the ZL_* variables
from `deploy/local/services env` before pytest runs; these tests never start
their own broker or database, and a missing variable is a clear error.
"""
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "deploy" / "local" / "services"


def need_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run the tests through `make test` (tests/run-all)")
    return value


def services(*args: str, timeout: float = 180) -> str:
    """Runs deploy/local/services with the test run's ZL_LOCAL_DIR."""
    out = subprocess.run([str(SERVICES), *args], capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"services {' '.join(args)} failed ({out.returncode}): {out.stderr}")
    return out.stdout


@pytest.fixture(scope="session")
def brokers() -> str:
    return need_env("ZL_KAFKA_BROKERS")


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    return need_env("ZL_PG_DSN")


@pytest.fixture(scope="session")
def bin_dir() -> Path:
    return Path(need_env("ZL_BIN_DIR"))


@pytest.fixture(scope="session", autouse=True)
def migrated_database():
    """Every test file may assume the schema is current and the passthrough
    test stage's effect table exists, whatever order files run in."""
    bin_dir = os.environ.get("ZL_BIN_DIR")
    if not bin_dir or not os.environ.get("ZL_PG_DSN"):
        return  # tests that need no services (schemas, artifacts) still run
    env = dict(os.environ, ZL_SCHEMA_DIR=str(REPO / "schemas" / "sql"))
    out = subprocess.run([os.path.join(bin_dir, "zl-migrate")], env=env, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"zl-migrate failed: {out.stderr}")
    psql = os.path.join(need_env("ZL_PG_BIN"), "psql")
    out = subprocess.run([psql, os.environ["ZL_PG_DSN"], "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                          "CREATE TABLE IF NOT EXISTS pt_effects (deposit_id text PRIMARY KEY, n integer NOT NULL)"],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"creating pt_effects failed: {out.stderr}")


# Lines of each worker log shown with a failed test: CI keeps only its
# output, and a timing failure cannot be diagnosed from the assertion alone.
FAILED_LOG_TAIL_LINES = 40


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" or not rep.failed:
        return
    tmp = item.funcargs.get("tmp_path")
    if tmp is None:
        return
    for log in sorted(Path(tmp).rglob("*.log")):
        lines = log.read_text(errors="replace").splitlines()[-FAILED_LOG_TAIL_LINES:]
        rep.sections.append((f"worker log {log.name} (last {len(lines)} lines)", "\n".join(lines)))

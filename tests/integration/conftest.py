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

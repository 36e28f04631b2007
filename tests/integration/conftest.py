"""Shared fixtures for the integration tests.

tests/run-all starts the real local services and exports the ZL_* variables
from `deploy/local/services env` before pytest runs; these tests never start
their own broker or database, and a missing variable is a clear error.

The helpers live in the one harness, tests/lib/zlharness; the line below
makes it importable for every test and helper module.
"""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from zlharness.env import REPO, need_env  # noqa: E402,F401
from zlharness.pg import ensure_pt_effects, migrate  # noqa: E402
from zlharness.services import SERVICES, services  # noqa: E402,F401


@pytest.fixture(scope="session")
def brokers() -> str:
    return need_env("ZL_KAFKA_BROKERS")


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    return need_env("ZL_PG_DSN")


@pytest.fixture(scope="session")
def bin_dir() -> Path:
    return Path(need_env("ZL_BIN_DIR"))


@pytest.fixture(scope="module", autouse=True)
def migrated_database():
    """Every test file may assume the schema is current and the passthrough
    test stage's effect table exists, whatever order files run in (and
    whatever a file before it did to the schema)."""
    if not os.environ.get("ZL_BIN_DIR") or not os.environ.get("ZL_PG_DSN"):
        return  # tests that need no services (schemas, artifacts) still run
    migrate()
    ensure_pt_effects()


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

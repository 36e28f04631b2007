"""`make demo` works, as the README tells a newcomer to run it.

A short run (DEMO_DEPOSITS deposits instead of 300) of the real target: every
service in a folder of its own, the contracts deployed, every stage and the
sweeper running, deposits made with anvil's accounts, then the report. Its
invariant line is what is checked: the deposits zl-audit counts on chain
equal credited + dead-lettered + reorged + below_minimum, none credited twice, and zl-audit
finds the books clean.
"""
import os
import re
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

from conftest import REPO, need_env
from zlharness.procs import sanitizer_report
from zlharness.services import services

DEMO_DEPOSITS = 10
# 10 deposits took 32 s end to end here (services, contracts, workers,
# deposits, report, stop); the demo's own wait for the deposits is bounded
# by DEMO_WAIT_S.
DEMO_WAIT_S = 180
DEMO_TIMEOUT_S = 600
INVARIANT = re.compile(r"^invariant: (\d+) deposits on chain = (\d+) credited \+ (\d+) dead \+ (\d+) reorged \+ "
                       r"(\d+) below_minimum, (\d+) credited twice, zl-audit (\w+): (\w+)$", re.M)


def make_env() -> dict:
    """The caller's environment without the parent make's jobserver (this
    may run inside `make test`) and with the binaries under test."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env["ZL_BIN_DIR"] = need_env("ZL_BIN_DIR")
    return env


def stop_everything(local: Path) -> None:
    """Whatever the demo left running (it stops it all itself, unless it was
    killed by the timeout) is stopped by pid, then the folder goes."""
    if not local.exists():
        return
    for pf in (local / "run").glob("*.pid"):
        try:
            os.kill(int(pf.read_text().split()[0]), signal.SIGKILL)
        except (ValueError, IndexError, ProcessLookupError):
            pass
    services("down", env=dict(os.environ, ZL_LOCAL_DIR=str(local)), timeout=120)
    shutil.rmtree(local, ignore_errors=True)


def test_make_demo_credits_every_deposit_once():
    """Guards against the README's first command being broken (the demo is
    run by no other test): every deposit made on chain must end credited,
    dead-lettered, reorged or below_minimum, once, with the books balanced."""
    build = Path(need_env("ZL_BUILD_DIR"))
    local = REPO / ".local" / f"test-demo-{uuid.uuid4().hex[:8]}"
    # EVM alone here, whether or not the validator is built yet (make test
    # builds it meanwhile); test_solana_demo.py runs both chains.
    args = f"--deposits {DEMO_DEPOSITS} --solana-deposits 0 --timeout-s {DEMO_WAIT_S} --local-dir {local}"
    try:
        out = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "demo", f"MODE={build.name}",
                              f"DEMO_ARGS={args}"], env=make_env(), capture_output=True, text=True,
                             timeout=DEMO_TIMEOUT_S)
        text = out.stdout + out.stderr
        m = INVARIANT.search(out.stdout)
        assert m, f"no invariant line in the report:\n{text[-4000:]}"
        on_chain, credited, dead, reorged, below_minimum, twice = map(int, m.groups()[:6])
        assert on_chain == DEMO_DEPOSITS, m.group(0)
        assert credited + dead + reorged + below_minimum == on_chain and twice == 0, m.group(0)
        assert m.group(7) == "clean" and m.group(8) == "holds", m.group(0)
        assert credited == DEMO_DEPOSITS, f"a deposit was dead-lettered or reorged in a clean run: {m.group(0)}"
        assert out.returncode == 0, text[-4000:]
        assert "demo: everything stopped" in out.stdout
        # Under make check the workers are the sanitizer build: a report in
        # a log is a failure even if the numbers came out right.
        bad = [str(f) for f in (local / "run").glob("*.log") if sanitizer_report(f.read_text(errors="replace"))]
        assert bad == [], f"sanitizer reports in {bad}"
    finally:
        stop_everything(local)

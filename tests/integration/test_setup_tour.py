"""The README's five-minute tour works as written.

The block between <!-- tour:start --> and <!-- tour:end --> is run by bash,
unchanged, with errexit and pipefail (stricter than a reader's shell: a step
that fails stops it): `make up`, one eval, a payment with cast, the deposit
watched with `zlctl deposit` until credited, a worker killed and restarted by
supervisord, a second payment through it, `make down`. The stack runs in a
folder of its own (ZL_STACK_DIR), so a reader's .local/stack is left alone,
and whatever it started is stopped by pid whether the tour passed or not.
"""
import os
import re
import signal
import shutil
import subprocess
import uuid

import pytest

from conftest import REPO, need_env

TOUR = re.compile(r"<!-- tour:start -->\s*```sh\n(.*?)```\s*<!-- tour:end -->", re.S)
# The tour took about 60 s here (20 s up, two deposits credited, a restart,
# 13 s down); slower under the sanitizers.
TOUR_TIMEOUT_S = 300
STACK_CMD = REPO / "deploy" / "local" / "stack"


def tour_env(stack: str) -> dict:
    """A reader's shell: none of the suite's ZL_* settings (the tour's eval
    sets its own), no parent make's jobserver; the binaries under test."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ZL_") and k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env.update(ZL_STACK_DIR=stack, ZL_BIN_DIR=need_env("ZL_BIN_DIR"))
    if "ZL_CACHE_DIR" in os.environ:
        env["ZL_CACHE_DIR"] = os.environ["ZL_CACHE_DIR"]
    return env


def pids_alive(run_dir) -> list[str]:
    left = []
    for pf in run_dir.glob("*.pid"):
        try:
            os.kill(int(pf.read_text().split()[0]), 0)
            left.append(pf.stem)
        except (ValueError, IndexError, ProcessLookupError):
            pass
    return left


def test_the_readme_tour_runs_as_written():
    """Guards against a tour that does not work: a newcomer following it
    must see a payment credited, a killed worker restarted, a second payment
    credited through it, and everything stopped at the end."""
    m = TOUR.search((REPO / "README.md").read_text())
    assert m, "no tour block in the README"
    script = m.group(1)
    stack = REPO / ".local" / f"test-stack-{uuid.uuid4().hex[:8]}"
    env = tour_env(str(stack))
    try:
        try:
            out = subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], cwd=REPO, env=env,
                                 capture_output=True, text=True, timeout=TOUR_TIMEOUT_S)
        except subprocess.TimeoutExpired as e:
            partial = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            pytest.fail(f"the tour did not finish in {TOUR_TIMEOUT_S} s; its output ended:\n{partial[-3000:]}")
        text = out.stdout + out.stderr
        assert out.returncode == 0, text[-6000:]
        # Two deposits credited, the second printed with its id.
        assert re.search(r"^31337:0x[0-9a-f]{64}:\d+ credited$", out.stdout, re.M), text[-4000:]
        # The mint pid make status printed before and after the kill differ.
        mints = re.findall(r"^mint\s+RUNNING\s+pid (\d+)", out.stdout, re.M)
        assert len(mints) == 2 and mints[0] != mints[1], f"mint not restarted: {mints}\n{text[-4000:]}"
        assert '"status": "healthy"' in out.stdout, text[-4000:]
        assert pids_alive(stack / "run") == [], "programs left running after make down"
        assert pids_alive(stack / "postgres") == [] and pids_alive(stack / "kafka") == []
    finally:
        if stack.exists():
            subprocess.run([str(STACK_CMD), "down"], env=env, capture_output=True, timeout=300)
            for pf in list((stack / "run").glob("*.pid")) + list(stack.glob("*/*.pid")):
                try:
                    os.kill(int(pf.read_text().split()[0]), signal.SIGKILL)
                except (ValueError, IndexError, ProcessLookupError):
                    pass
            shutil.rmtree(stack, ignore_errors=True)

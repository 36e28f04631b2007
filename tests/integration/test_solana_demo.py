"""`make demo` on both chains (issue 22): EVM and Solana deposits at once
through the same five stages, against a real solana-test-validator started
as a service of the demo's own folder. Both invariant lines must hold: the
EVM deposits zl-audit counts on chain, and the Solana transfers counted from
the registered accounts' transactions, each equal to credited + dead +
reorged + below_minimum, with every credited Solana deposit's receipt on
chain (a Token-2022 mint of supply 1 held by the wallet that paid).

In make test's Solana tier (the validator is built there).
"""
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from test_demo import INVARIANT, make_env, stop_everything
from zlharness.env import REPO, need_env
from zlharness.procs import sanitizer_report
from zlharness.solana import VALIDATOR

pytestmark = pytest.mark.skipif(not VALIDATOR.exists() and os.environ.get("ZL_SOLANA_REQUIRED") != "1",
                                reason=f"{VALIDATOR} not built (deploy/local/deps solana)")

EVM_DEPOSITS = 10
SOL_DEPOSITS = 12
DEMO_WAIT_S = 300
DEMO_TIMEOUT_S = 900
SOL_INVARIANT = re.compile(r"^invariant \(solana\): (\d+) on chain = (\d+) credited \+ dead \+ reorged \+ "
                           r"below_minimum, .*: (\w+)$", re.M)
SOL_LINE = re.compile(r"^solana: deposits on chain (\d+) .*credited (\d+), dead (\d+); receipts checked on chain "
                      r"(\d+), wrong (\d+)$", re.M)


def test_make_demo_runs_both_chains_and_credits_each_deposit_once():
    build = Path(need_env("ZL_BUILD_DIR"))
    local = REPO / ".local" / f"test-demo-sol-{uuid.uuid4().hex[:8]}"
    args = (f"--deposits {EVM_DEPOSITS} --solana-deposits {SOL_DEPOSITS} --timeout-s {DEMO_WAIT_S} "
            f"--local-dir {local}")
    try:
        out = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "demo", f"MODE={build.name}",
                              f"DEMO_ARGS={args}"], env=make_env(), capture_output=True, text=True,
                             timeout=DEMO_TIMEOUT_S)
        text = out.stdout + out.stderr
        evm = INVARIANT.search(out.stdout)
        sol = SOL_INVARIANT.search(out.stdout)
        line = SOL_LINE.search(out.stdout)
        assert evm and sol and line, f"no invariant lines in the report:\n{text[-4000:]}"
        assert int(evm.group(1)) == EVM_DEPOSITS and int(evm.group(2)) == EVM_DEPOSITS, evm.group(0)
        assert evm.group(8) == "holds", evm.group(0)
        on_chain, settled, verdict = int(sol.group(1)), int(sol.group(2)), sol.group(3)
        assert (on_chain, settled, verdict) == (SOL_DEPOSITS, SOL_DEPOSITS, "holds"), sol.group(0)
        credited, dead, checked, wrong = map(int, line.groups()[1:])
        assert (credited, dead, checked, wrong) == (SOL_DEPOSITS, 0, SOL_DEPOSITS, 0), line.group(0)
        assert out.returncode == 0, text[-4000:]
        bad = [str(f) for f in (local / "run").glob("*.log") if sanitizer_report(f.read_text(errors="replace"))]
        assert bad == [], f"sanitizer reports in {bad}"
    finally:
        stop_everything(local)

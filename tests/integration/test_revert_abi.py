"""The revert decoder's table (common/revert_abi.c) is the contracts' ABIs,
not a copy that drifts: a contract that gains or changes an error, or a
role, without the table regenerated would have its reverts read as hex."""
import subprocess
import sys

from conftest import REPO


def test_committed_revert_table_matches_the_contract_artifacts():
    """Guards against a stale common/revert_abi.c: tools/gen-revert-abi.py
    --check regenerates it from deploy/contracts/artifacts/*.json and fails
    on any difference."""
    out = subprocess.run([sys.executable, str(REPO / "tools" / "gen-revert-abi.py"), "--check"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr

"""The README's configuration tables are the code's, not a copy that drifts."""
import os
import subprocess
import sys

from conftest import REPO


def test_readme_configuration_tables_match_the_binaries():
    """Guards against documenting a setting a binary does not accept, or
    leaving out one it does: the tables are regenerated from every binary's
    --help-markdown and compared."""
    build = os.environ.get("ZL_BUILD_DIR", str(REPO / "build" / "release"))
    out = subprocess.run([sys.executable, str(REPO / "docs" / "gen-config.py"), build, "--check"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr

"""Every binary starts through one path (common/boot): a bad choice is a
configuration error everywhere, found before anything connects."""
import os
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, need_env

LEVELS = ["debug", "info", "warn", "error"]


def every_binary() -> list[str]:
    """The five stages and every tool, named from the sources so a new
    binary cannot be left out."""
    stages = sorted(p.parent.name for p in (REPO / "workers").glob("*/main.c"))
    tools = sorted(p.stem for p in (REPO / "tools").glob("*.c"))
    return stages + tools


def test_every_stage_and_tool_is_checked():
    """Guards against the list below silently shrinking (a glob gone wrong)."""
    names = every_binary()
    assert {"detect", "verify", "ipfs-upload", "mint", "credit"} <= set(names)
    assert {"zl-sweep", "zl-admin", "zl-replay", "zl-audit", "zl-address", "zl-topics", "zl-migrate",
            "zlctl"} <= set(names)


@pytest.mark.parametrize("name", every_binary())
def test_bad_log_level_is_a_configuration_error_naming_the_setting(name):
    """Guards against a binary that ignores a bad ZL_LOG_LEVEL (detect and
    three tools once ran on silently at the default level): exit 2, and
    stderr names the setting and every valid choice. No service runs for
    this test and nothing may be needed: config is checked first."""
    binary = Path(need_env("ZL_BIN_DIR")) / name
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ZL_LOG_LEVEL": "bogus"}
    out = subprocess.run([str(binary)], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2, f"{name}: expected exit 2, got {out.returncode}; stderr: {out.stderr}"
    assert "ZL_LOG_LEVEL" in out.stderr, f"{name}: stderr does not name ZL_LOG_LEVEL: {out.stderr}"
    assert "bogus" in out.stderr, f"{name}: stderr does not quote the bad value: {out.stderr}"
    for level in LEVELS:
        assert level in out.stderr, f"{name}: stderr does not list the choice {level!r}: {out.stderr}"


def test_a_stage_choice_setting_is_checked_the_same_way(tmp_path):
    """Guards against a stage's own choice setting checked by hand (mint's
    ZL_TX_TYPE was a string compared in mint_init, with its own message):
    mint refuses a bad ZL_TX_TYPE through the config table, exit 2, naming
    the setting, the value and every choice."""
    binary = Path(need_env("ZL_BIN_DIR")) / "mint"
    key = tmp_path / "key"
    key.write_text("%064x\n" % 1)
    key.chmod(0o600)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ZL_RPC_URLS": "http://127.0.0.1:1",
           "ZL_NFT_ADDRESS": "0x" + "0" * 39 + "1", "ZL_SIGNER_KEY_FILE": str(key), "ZL_TX_TYPE": "bogus"}
    out = subprocess.run([str(binary)], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2, f"expected exit 2, got {out.returncode}; stderr: {out.stderr}"
    assert "ZL_TX_TYPE" in out.stderr and "bogus" in out.stderr, out.stderr
    for choice in ("auto", "eip1559", "legacy"):
        assert choice in out.stderr, f"stderr does not list the choice {choice!r}: {out.stderr}"

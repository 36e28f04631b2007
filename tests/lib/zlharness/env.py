"""Where things are and what the caller's environment must hold."""
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SCHEMA_DIR = REPO / "schemas" / "sql"


class HarnessError(RuntimeError):
    """A helper's command failed; the message names it and its stderr."""


def need_env(name: str, env: dict | None = None) -> str:
    """env[name] (default os.environ), or a clear error when it is unset."""
    value = (os.environ if env is None else env).get(name)
    if not value:
        raise HarnessError(f"{name} is not set: start the services and eval \"$(deploy/local/services env)\""
                           " (make test / tests/run-all do both)")
    return value


def bin_path(name: str, env: dict | None = None) -> str:
    """A zeroloss binary in ZL_BIN_DIR."""
    return str(Path(need_env("ZL_BIN_DIR", env)) / name)


def write_secret(path: Path, text: str) -> Path:
    """A key or token file, mode 0600 (the binaries refuse looser ones)."""
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path

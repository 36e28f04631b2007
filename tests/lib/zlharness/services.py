"""deploy/local/services (PostgreSQL, Kafka, anvil, Kubo in ZL_LOCAL_DIR)."""
import os
from pathlib import Path

from .env import REPO
from .procs import run

SERVICES = REPO / "deploy" / "local" / "services"


def services(*args: str, env: dict | None = None, timeout: float = 180) -> str:
    """Runs the services script (its ZL_LOCAL_DIR from env, default ours)."""
    return run([SERVICES, *args], env=env, timeout=timeout)


def services_env(env: dict | None = None) -> dict[str, str]:
    """The ZL_* variables `services env` exports, as a dict."""
    out = {}
    for line in services("env", env=env).splitlines():
        k, _, v = line.removeprefix("export ").partition("=")
        out[k] = v.strip("'")
    return out


def ports(local: Path) -> dict[str, str]:
    """The ports the script chose for the services in `local`."""
    return dict(line.split("=", 1) for line in (local / "ports.env").read_text().split())


def local_env(local: Path) -> dict:
    """os.environ with ZL_LOCAL_DIR=local: services of a folder of one's own."""
    return dict(os.environ, ZL_LOCAL_DIR=str(local))

"""deploy/local/services works wherever the repository is cloned.

As root, initdb and the server run as the `postgres` user, who cannot enter a
clone whose parents are private (a home folder such as /root/zeroloss, mode
0700: the usual case in a container). initdb then failed with a bare
"Permission denied" and `make demo` and `make test` failed at once. These
tests copy the repository's tracked files (as they are in the work tree, so
uncommitted changes are what is tested) into such a folder and drive the
script from there, as a newcomer would.

They start services of their own (their own folder, their own free ports),
beside the ones the suite runs on, and stop them by pid whether they pass or
not.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import REPO

# Startup of all four services from a cold folder took 15 s here (Kafka's JVM
# the slow one); the script's own readiness waits are 120 s each.
SERVICES_TIMEOUT_S = 600
PSQL_TIMEOUT_S = 30
UNPRIVILEGED_USER = "nobody"
RUNUSER = shutil.which("runuser") or "/usr/sbin/runuser"


def copy_tracked_files(dest: Path) -> Path:
    """The repository's tracked files, from the work tree, under dest/zeroloss."""
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True,
                           timeout=60).stdout.decode().split("\0")
    clone = dest / "zeroloss"
    for f in filter(None, files):
        src = REPO / f
        if src.is_file():
            (clone / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, clone / f)
    return clone


def clean_env(**extra: str) -> dict:
    """The caller's environment without the suite's ZL_* settings: the copy
    must find its own folder (<clone>/.local) as a fresh clone would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZL_")}
    env.update(extra)
    return env


def services(clone: Path, *args: str, env: dict, user: str | None = None) -> subprocess.CompletedProcess:
    cmd = [str(clone / "deploy" / "local" / "services"), *args]
    if user:
        cmd = [RUNUSER, "-u", user, "--", *cmd]
    return subprocess.run(cmd, env=env, cwd=clone, capture_output=True, text=True, timeout=SERVICES_TIMEOUT_S)


def kill_recorded_pids(local: Path) -> None:
    """Every service the copy recorded is gone, even when `down` failed or
    never ran (a failed assertion)."""
    for pf in local.glob("*/*.pid"):
        try:
            pid = int(pf.read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
        except (ValueError, IndexError, ProcessLookupError, PermissionError, FileNotFoundError):
            pass


def pg_answers(env: dict, clone: Path, user: str | None = None) -> str:
    ports = dict(line.split("=", 1) for line in (clone / ".local" / "ports.env").read_text().split())
    pg_bin = Path(sorted(Path("/usr/lib/postgresql").iterdir(), key=lambda p: int(p.name))[-1]) / "bin"
    cmd = [str(pg_bin / "psql"), "-h", "127.0.0.1", "-p", ports["PG_PORT"], "-U", "zeroloss", "-d", "zeroloss",
           "-tAc", "select 6 * 7"]
    if user:
        cmd = [RUNUSER, "-u", user, "--", *cmd]
    out = subprocess.run(cmd, env=env, cwd="/", capture_output=True, text=True, timeout=PSQL_TIMEOUT_S)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def pids_of(local: Path) -> dict[str, int]:
    return {pf.parent.name: int(pf.read_text().split()[0]) for pf in local.glob("*/*.pid")}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.mark.skipif(os.geteuid() != 0, reason="the postgres user is only involved when the script runs as root")
def test_root_runs_every_service_from_a_clone_in_a_private_folder(tmp_path):
    """Guards against `services up` failing with initdb's "Permission denied"
    when root clones into a folder the postgres user cannot enter, and
    against the cluster kept elsewhere for it outliving its clone."""
    private = tmp_path / "home"
    private.mkdir()
    private.chmod(0o700)
    clone = copy_tracked_files(private)
    local = clone / ".local"
    env = clean_env()
    try:
        up = services(clone, "up", env=env)
        assert up.returncode == 0, up.stderr
        status = services(clone, "status", env=env)
        assert status.returncode == 0, status.stdout + status.stderr
        for name in ("postgres", "kafka", "anvil", "ipfs"):
            assert f"{name} running" in status.stdout, status.stdout
        assert pg_answers(env, clone) == "42"
        # The cluster lives where the postgres user can reach it, linked from
        # the clone's folder; nothing about it is world-readable.
        kept = Path(os.readlink(local / "postgres"))
        assert kept.is_dir() and (kept / "data" / "PG_VERSION").exists()
        assert kept.stat().st_mode & 0o777 == 0o700

        pids = pids_of(local)
        assert set(pids) == {"postgres", "kafka", "anvil", "ipfs"}, pids
        down = services(clone, "down", env=env)
        assert down.returncode == 0, down.stderr
        left = [n for n, pid in pids.items() if alive(pid)]
        assert left == [], f"still running after down: {left}"

        # The clone's folder deleted (tests delete theirs): the next `up`
        # anywhere in that mode deletes the cluster it left behind.
        shutil.rmtree(local)
        again = services(clone, "up", "postgres", env=env)
        assert again.returncode == 0, again.stderr
        assert not kept.exists(), f"{kept} outlived its clone's folder"
        assert pg_answers(env, clone) == "42"
        now_kept = Path(os.readlink(local / "postgres"))
        reset = services(clone, "reset", "postgres", env=env)
        assert reset.returncode == 0, reset.stderr
        assert not now_kept.exists() and not (local / "postgres").exists(), "reset left the cluster behind"
    finally:
        if local.exists():
            services(clone, "down", env=env)
            kill_recorded_pids(local)
            link = local / "postgres"
            if link.is_symlink():
                shutil.rmtree(os.readlink(link), ignore_errors=True)


def test_a_normal_user_runs_postgres_in_its_own_folder():
    """Guards against the root fix breaking the ordinary case: a normal user
    runs the cluster itself, its data in the clone's own folder."""
    user = UNPRIVILEGED_USER if os.geteuid() == 0 else None
    # A folder that user owns and may enter (pytest's own tmp folder is
    # private to root).
    top = Path(tempfile.mkdtemp(prefix="zl-setup-", dir="/tmp"))
    top.chmod(0o755)
    clone = copy_tracked_files(top)
    local = clone / ".local"
    env = clean_env(PATH="/usr/local/bin:/usr/bin:/bin", HOME=str(top)) if user else clean_env()
    try:
        if user:
            shutil.chown(top, user)
            for p in top.rglob("*"):
                shutil.chown(p, user)
        up = services(clone, "up", "postgres", env=env, user=user)
        assert up.returncode == 0, up.stderr
        assert (local / "postgres").is_dir() and not (local / "postgres").is_symlink()
        assert (local / "postgres" / "data" / "PG_VERSION").exists()
        assert pg_answers(env, clone, user) == "42"
        pid = pids_of(local)["postgres"]
        down = services(clone, "down", "postgres", env=env, user=user)
        assert down.returncode == 0, down.stderr
        deadline = time.monotonic() + 5
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(pid), "postgres still running after down"
    finally:
        if local.exists():
            services(clone, "down", env=env, user=user)
            kill_recorded_pids(local)
        shutil.rmtree(top, ignore_errors=True)

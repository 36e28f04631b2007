"""The local harness's copies are static group members, as in deploy/k8s.

No services needed: the workers here are small shell scripts standing in for
the stage binaries, started by LocalPipeline exactly as it starts real ones.
"""
import time
from pathlib import Path

from zlharness.pipeline import SUPERVISE_RESTARTS_MAX, LocalPipeline

# How long a supervised restart may take to show (the poll is 0.5 s).
RESTART_WAIT_S = 10


def fake_pipeline(tmp_path: Path) -> LocalPipeline:
    """A LocalPipeline whose bin folder holds `stay` (prints its
    ZL_GROUP_INSTANCE_ID, then sleeps), `fenced` (exits 1 on its first run,
    as a fenced static member does, then stays) and `broken` (always exits 1)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {
        "stay": 'echo "member=$ZL_GROUP_INSTANCE_ID"; exec sleep 60',
        "fenced": f'if [ ! -e {tmp_path}/fenced.once ]; then : > {tmp_path}/fenced.once; exit 1; fi; exec sleep 60',
        "broken": "exit 1",
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    p = LocalPipeline(tmp_path / "local", bin_dir=bin_dir, log=lambda _m: None)
    # What setup() would have made: worker_env() reads them.
    p.token, p.nft, p.nft_from_block = "0x" + "11" * 20, "0x" + "22" * 20, "1"
    p.env.update(ZL_CHAIN_ID="31337", ZL_RPC_URLS="http://127.0.0.1:1")
    p.deployer_key = tmp_path / "deployer.key"
    return p


def wait_for(cond, what: str) -> None:
    deadline = time.monotonic() + RESTART_WAIT_S
    while not cond():
        assert time.monotonic() < deadline, f"expected {what} within {RESTART_WAIT_S} s"
        time.sleep(0.1)


def test_each_copy_is_a_static_member_named_once_among_live_copies(tmp_path):
    """Guards against a SIGKILLed local copy waiting out the session timeout
    (no group.instance.id) and against two live copies under one name, which
    the broker would fence: a second start_workers() of a stage while its
    first copy lives names the new copy stay-1, not stay-0 again."""
    p = fake_pipeline(tmp_path)
    try:
        assert p.worker_env("mint-2")["ZL_GROUP_INSTANCE_ID"] == "mint-2"
        p.start_workers([("stay", 1)])
        p.start_workers([("stay", 2)])
        names = [n for n, _ in p.procs]
        assert names == ["stay-0", "stay-1", "stay-2"], names
        for n in names:
            log = p.local / "run" / f"{n}.log"
            wait_for(lambda: log.exists() and log.read_text().strip(), f"{n} to print its member id")
            assert log.read_text().strip() == f"member={n}"
        p.kill("stay-1")
        p.start_workers([("stay", 1)])
        assert [n for n, _ in p.procs][-1] == "stay-1", "a dead copy's name is free again (its partitions)"
    finally:
        p.stop_workers()


def test_supervise_restarts_a_fenced_copy_under_its_name_but_not_a_killed_one(tmp_path):
    """Guards against a fenced static member (which exits 1 for its
    supervisor) staying down in the local harness, a SIGKILLed copy being
    restarted behind the caller's back (chaos restarts it itself, later), and
    a copy that always exits 1 being restarted forever."""
    p = fake_pipeline(tmp_path)
    try:
        p.supervise()
        p.start_workers([("fenced", 1), ("stay", 1), ("broken", 1)])
        wait_for(lambda: ("fenced-0", 1) in p.restarts and p.alive("fenced-0"), "fenced-0 restarted")
        p.kill("stay-0")
        wait_for(lambda: sum(n == "broken-0" for n, _ in p.restarts) == SUPERVISE_RESTARTS_MAX,
                 f"broken-0 restarted {SUPERVISE_RESTARTS_MAX} times")
        time.sleep(1.5)
        assert sum(n == "broken-0" for n, _ in p.restarts) == SUPERVISE_RESTARTS_MAX, p.restarts
        assert not p.alive("stay-0") and all(n != "stay-0" for n, _ in p.restarts), p.restarts
        assert sum(n == "fenced-0" for n, _ in p.restarts) == 1, p.restarts
    finally:
        p.stop_workers()

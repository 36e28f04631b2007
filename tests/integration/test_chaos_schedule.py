"""The chaos suite's schedules (tests/chaos/chaos.py): a seed must replay the
same schedule, and every schedule must exercise every fault the suite
promises. The schedules themselves run in the chaos tier of tests/run-all
and in `make chaos`."""
import json
import subprocess
import sys

from conftest import REPO

CHAOS = REPO / "tests" / "chaos" / "chaos.py"


def schedule(seed: int, *extra: str) -> list[dict]:
    out = subprocess.run([sys.executable, str(CHAOS), "--seed", str(seed), "--print-schedule", *extra],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_same_seed_same_schedule_and_another_seed_another():
    """Guards against a chaos failure that cannot be reproduced: the seed a
    run prints must give back the same schedule, event for event."""
    a, b = schedule(1234), schedule(1234)
    assert a == b and len(a) > 10
    assert schedule(1235) != a


def test_every_schedule_has_every_fault_kind_and_kills_every_stage():
    """Guards against a schedule that silently skips a fault (then the run
    proves less than it claims)."""
    for seed in range(1, 16):
        ev = schedule(seed, "--deposits", "100", "--duration-s", "45")
        kinds = {e["kind"] for e in ev}
        assert {"kill", "restart", "rpc", "rpc_all", "ipfs_down", "poison", "forged", "deposits",
                "lie", "reorg"} <= kinds, (seed, kinds)
        assert sorted(e["detail"] for e in ev if e["kind"] == "lie") == ["drop_logs", "head_ahead"], seed
        assert all(e["target"] == "secondary" for e in ev if e["kind"] == "lie"), seed
        assert {e["target"] for e in ev if e["kind"] == "restart"} == {"kafka", "postgres"}
        killed = {e["target"].rsplit("-", 1)[0] for e in ev if e["kind"] == "kill"}
        assert killed == {"detect", "verify", "ipfs-upload", "mint", "credit", "notify"}, (seed, killed)
        assert sum(int(e["detail"]) for e in ev if e["kind"] == "deposits") == 100
        assert all(0 <= e["t"] <= 45 for e in ev)
        lies = sorted((e["t"], e["t"] + e["duration"]) for e in ev if e["kind"] == "lie")
        assert lies[0][1] <= lies[1][0], (seed, lies)  # one lie at a time


def test_reorgs_come_last_and_leave_every_other_event_as_it_was():
    """Guards against a new fault kind reshuffling old seeds: the reorgs are
    shallower than the chaos pipeline's 2 confirmations, at a wave of
    deposits, and the rest of the schedule is the one the seed gives
    without them (--no-reorgs)."""
    for seed in range(1, 6):
        plain = schedule(seed, "--deposits", "100", "--duration-s", "45", "--no-reorgs")
        with_reorgs = schedule(seed, "--deposits", "100", "--duration-s", "45")
        reorgs = [e for e in with_reorgs if e["kind"] == "reorg"]
        assert reorgs and all(int(e["detail"]) < 2 for e in reorgs), (seed, reorgs)
        waves = {e["t"] for e in plain if e["kind"] == "deposits"}
        assert all(e["t"] in waves for e in reorgs), (seed, reorgs)
        assert [e for e in with_reorgs if e["kind"] != "reorg"] == plain, seed
        assert "reorg" not in {e["kind"] for e in plain}

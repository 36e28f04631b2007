"""docs/operations.md walked through as a test: poison a deposit, find it,
fix the cause, replay it, and see it reach the pipeline's final state. Uses
the passthrough test stage, whose final state is 'verified'."""
import json
import os
import random
import re
import subprocess


from conftest import REPO
from ops_helpers import bin_path, chain_deposit, pipeline, run_replay, start_tool, stop, summary, \
    token_file  # noqa: F401
from runtime_helpers import effects, insert_rows, states, wait_until

RUNBOOK = REPO / "docs" / "operations.md"


def runbook_command(pattern: str) -> str:
    """The first command line of the runbook matching pattern, so the test
    runs what operators read."""
    for line in RUNBOOK.read_text().splitlines():
        if re.search(pattern, line):
            return line.split("#")[0].strip() if not line.strip().startswith("kcat") else line.strip()
    raise AssertionError(f"runbook has no command matching {pattern!r}")


def zlctl(env: dict, *args: str) -> tuple[int, dict | str]:
    out = subprocess.run([bin_path("zlctl"), *args], env=env, capture_output=True, text=True, timeout=30)
    try:
        return out.returncode, json.loads(out.stdout)
    except ValueError:
        return out.returncode, out.stdout + out.stderr


def test_poisoned_deposit_is_found_fixed_replayed_and_finished(pipeline):
    """Guards against a runbook that does not work: an operator following
    docs/operations.md must get a permanently failed deposit to its final
    state, exactly once, without touching the database by hand."""
    chain = random.randrange(4 * 10**9, 5 * 10**9)
    victim = chain_deposit(chain, user="vip")
    others = [chain_deposit(chain) for _ in range(5)]
    insert_rows([victim] + others)
    vid = victim["deposit_id"]
    ids = [d["deposit_id"] for d in others]

    # The cause: the stage is misconfigured for this user (a permanent failure).
    broken = pipeline.start("verify-broken", ZL_PT_PERMANENT_USER="vip")
    pipeline.produce([victim] + others)
    wait_until(lambda: states([vid])[vid] == "dead", 60, "the victim dead-lettered")
    wait_until(lambda: set(states(ids).values()) == {"verified"}, 60, "the others unaffected")

    start_tool(pipeline, "admin", "zl-admin", ZL_ADMIN_TOKEN_FILE=str(token_file(pipeline.workdir)))
    env = dict(os.environ, ZL_ADMIN_URL=f"http://127.0.0.1:{pipeline.http_port('admin')}",
               ZL_ADMIN_TOKEN_FILE=str(pipeline.workdir / "admin_token"))
    wait_until(lambda: zlctl(env, "dead", "--limit", "1000")[0] == 0, 20, "zl-admin answering")

    # Runbook 2: find it.
    rc, dead = zlctl(env, "dead", "--stage", "passthrough", "--limit", "1000")
    assert rc == 0, dead
    mine = [d for d in dead["dead"] if d["deposit_id"] == vid]
    assert len(mine) == 1 and mine[0]["last_error_class"] == "permanent", dead
    assert "injected permanent failure" in mine[0]["last_error"]
    rc, dep = zlctl(env, "deposit", vid)
    assert dep["deposit"]["state"] == "dead" and dep["deposit"]["dead_from_state"] == "detected"

    # Runbook 2: inspect the DLQ with the documented kcat command.
    cmd = runbook_command(r"^kcat .*-f '%k %h")
    cmd = cmd.replace("${P}mint.dlq", pipeline.dlq_topic)
    out = subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert vid in out.stdout and "zl-dlq-error-class=permanent" in out.stdout, out.stdout[:2000]
    assert f"zl-dlq-original-topic={pipeline.in_topic}" in out.stdout

    # Runbook 3: fix the cause (restart without the misconfiguration).
    stop(broken)
    pipeline.start("verify-fixed")

    # Look first: a dry run sends nothing.
    out = run_replay(pipeline, "--deposit", vid, "--dry-run")
    assert out.returncode == 0 and summary(out)["dry-run"] == 1, out.stdout + out.stderr
    assert states([vid])[vid] == "dead"

    # Replay it.
    out = run_replay(pipeline, "--deposit", vid)
    assert out.returncode == 0 and summary(out)["sent"] == 1, out.stdout + out.stderr

    # Watch it reach the final state.
    wait_until(lambda: states([vid])[vid] == "verified", 60, "the replayed deposit to finish")
    eff = effects([vid] + ids)
    assert eff == {i: 1 for i in [vid] + ids}, f"not applied exactly once: {eff}"
    rc, dep = zlctl(env, "deposit", vid)
    assert [h["to_state"] for h in dep["history"]] == ["detected", "dead", "detected", "verified"], dep["history"]
    assert dep["replays"][0]["status"] == "sent"
    rc, dead = zlctl(env, "dead", "--limit", "1000")
    assert vid not in {d["deposit_id"] for d in dead["dead"]}

    # Running the same replay again does nothing.
    out = run_replay(pipeline, "--deposit", vid)
    assert summary(out)["sent"] == 0, out.stdout

"""docs/operations.md walked through on the real pipeline with a real cause
(issue 20): mint's signer loses its minter role, a deposit is
dead-lettered by mint with the reason decoded from the contract's ABI; the
operator finds it (zlctl dead, the runbook's kcat), grants the role back
with the runbook's cast command, replays it with the runbook's zl-replay
command, and sees it credited exactly once. test_runbook.py walks the same
steps on the passthrough test stage, whose rows never reach mint.

Against the harness's own services (LocalPipeline), every stage and zl-admin
running.
"""
import json
import os
import re
import subprocess

from runtime_helpers import wait_until
from test_runbook import runbook_command
from zlharness.env import write_secret

ADMIN_TOKEN = "runbook-mint-role-token-" + "x" * 16
AMOUNT = 3 * 10**18
EGGS = "300"  # 3 USDT at the harness's 100 eggs per USDT


def shell(p, cmd: str, **extra: str) -> subprocess.CompletedProcess:
    """A runbook line run as an operator would, in bash, with the pipeline's
    settings, its binaries and cast on PATH."""
    env = p.worker_env("operator")
    env["PATH"] = os.pathsep.join([str(p.bin), os.path.dirname(env["ZL_CAST"]), env["PATH"]])
    env.update(extra)
    return subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, text=True, timeout=120)


def zlctl(p, base: str, *args: str) -> dict:
    out = shell(p, " ".join(["zlctl", *args]), ZL_ADMIN_URL=base)
    assert out.returncode == 0, f"zlctl {args}: {out.stdout} {out.stderr}"
    return json.loads(out.stdout)


def replay_summary(out: subprocess.CompletedProcess) -> dict[str, int]:
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("zl-replay ")]
    assert out.returncode == 0 and line, f"zl-replay: exit {out.returncode}: {out.stdout} {out.stderr}"
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"([\w-]+) (\d+)", line[-1].split(":", 1)[1])}


def test_a_deposit_dead_for_a_revoked_minter_role_is_fixed_with_cast_replayed_and_credited_once():
    """Guards against a runbook that only works on the test stage: with the
    minter role revoked on the real contract, the operator must read the
    cause (not hex) from zlctl and the DLQ, fix it with the documented cast
    command, and replay the deposit to credited, exactly once."""
    from zlharness.pipeline import STAGES, assert_credited_once, scratch_pipeline
    with scratch_pipeline("runbookmint") as p:
        p.setup(accounts=1, users=1)
        tok = write_secret(p.local / "keys" / "admin.token", ADMIN_TOKEN)
        p.worker_overrides["ZL_ADMIN_TOKEN_FILE"] = str(tok)
        p.start_workers([(s, 1) for s in STAGES] + [("zl-admin", 1)])
        port_file = p.local / "run" / "zl-admin-0.port"
        wait_until(lambda: port_file.exists() and port_file.read_text().strip() != "", 30, "zl-admin port")
        base = f"http://127.0.0.1:{port_file.read_text().strip()}"
        wait_until(lambda: shell(p, "zlctl dead", ZL_ADMIN_URL=base).returncode == 0, 30, "zl-admin answering")
        addr = p.deposit_addrs[0]
        signer = p.cast("wallet", "address", "--private-key", p.keys[0]).lower()
        role = p.cast("keccak", "MINTER_ROLE")
        cast_env = {"ETH_RPC_URL": p.env["ZL_RPC_URLS"], "ROLE_ADMIN_KEY_FILE": str(p.deployer_key),
                    "ZL_NFT_ADDRESS": p.nft, "SIGNER": signer}

        # The cause: someone revokes the signer's minter role.
        p.cast("send", "--rpc-url", p.env["ZL_RPC_URLS"], "--private-key", p.keys[0], p.nft,
               "revokeRole(bytes32,address)", role, signer)
        assert p.make_deposits(1, [addr], amount_of=lambda _j: AMOUNT) == 1
        wait_until(lambda: p.counts([addr])["dead"] == 1, 180, "the deposit dead-lettered by mint")

        # Runbook 2: find it, and read why.
        dead = zlctl(p, base, "dead", "--stage", "mint")["dead"]
        assert len(dead) == 1, dead
        vid = dead[0]["deposit_id"]
        reason = f"mint would revert: AccessControlUnauthorizedAccount({signer}, MINTER_ROLE)"
        assert dead[0]["last_error"] == reason and dead[0]["last_error_class"] == "permanent", dead
        dep = zlctl(p, base, "deposit", vid)
        assert dep["deposit"]["dead_from_state"] == "pinned" and dep["deposit"]["amount"] == str(AMOUNT), dep

        # Runbook 2: the DLQ with the documented kcat command.
        kcat = runbook_command(r"^kcat .*-f '%k %h").replace("${P}", "zl.")
        out = shell(p, kcat)
        assert out.returncode == 0, out.stderr
        assert vid in out.stdout and f"zl-dlq-error={reason}" in out.stdout, out.stdout[:2000]

        # Runbook 3, step 1: grant the role back with the documented cast command, and check it.
        out = shell(p, runbook_command(r"^\s*cast send .*grantRole"), **cast_env)
        assert out.returncode == 0, out.stdout + out.stderr
        out = shell(p, runbook_command(r"^\s*cast call .*hasRole"), **cast_env)
        assert out.stdout.strip() == "true", out.stdout + out.stderr

        # Runbook 3: a dry run sends nothing; then the replay.
        replay = runbook_command(r"^\s*zl-replay --from-stage mint --deposit \S+$").replace("31337:0xabc...:0", vid)
        dry = replay_summary(shell(p, replay + " --dry-run"))
        assert dry["dry-run"] == 1, dry
        assert p.counts([addr])["dead"] == 1
        sent = replay_summary(shell(p, replay))
        assert sent["sent"] == 1, sent

        # Runbook 3, step 4: watch it reach credited, exactly once.
        wait_until(lambda: p.counts([addr])["credited"] == 1, 180, "the replayed deposit credited")
        assert_credited_once(p, addr, EGGS)
        dep = zlctl(p, base, "deposit", vid)
        assert [h["to_state"] for h in dep["history"]] == \
            ["detected", "verified", "pinned", "dead", "pinned", "mint_submitted", "minted", "credited"], \
            dep["history"]
        assert [r["status"] for r in dep["replays"]] == ["sent"], dep["replays"]
        assert dep["deposit"]["credit_eggs"] == EGGS and dep["deposit"]["token_id"], dep["deposit"]
        assert zlctl(p, base, "dead", "--stage", "mint")["dead"] == []

        # The same replay again sends nothing.
        again = replay_summary(shell(p, replay))
        assert again["sent"] == 0, again

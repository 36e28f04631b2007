"""Dust and unwanted deposits (issue 21): a transfer under its token's
minimum is settled `below_minimum`, counted and listed by zlctl, never
dead-lettered and never lost; an operator credits one with one command
(zlctl credit-below-minimum), exactly once, and the ledger and zl-audit
agree.

Against the harness's own services (LocalPipeline, as the demo and chaos
run), every stage, the sweeper and zl-admin running; USDT's minimum is 1
USDT (ZL_TOKENS), and the dust is 0.5 USDT: 50 eggs at the harness's 100
eggs per USDT once credited. zl-admin and zl-audit run under their own
database roles (schemas/sql/009, 013), as deployed.
"""
import json
import re
import subprocess

from runtime_helpers import wait_until
from test_reconcile import login_role
from zlharness.env import write_secret
from zlharness.jsonrpc import Rpc
from zlharness.kafka import consume
from zlharness.web import http_json

ADMIN_TOKEN = "below-minimum-test-token-" + "x" * 16
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
ZERO_TOPIC = "0x" + "0" * 64
USDT_MIN = 10**18          # 1 USDT
DUST = 5 * 10**17          # 0.5 USDT: under the minimum
DUST_EGGS = "50"           # 0.5 USDT at 100 eggs per USDT
FULL = 2 * 10**18          # 2 USDT: over it
STATE_WAIT_S = 180


def zlctl(p, base: str, *args: str) -> subprocess.CompletedProcess:
    env = p.worker_env("zlctl")
    env["ZL_ADMIN_URL"] = base
    return subprocess.run([str(p.bin / "zlctl"), *args], env=env, capture_output=True, text=True, timeout=60)


def zlctl_ok(p, base: str, *args: str) -> dict:
    out = zlctl(p, base, *args)
    assert out.returncode == 0, f"zlctl {' '.join(args)}: exit {out.returncode}: {out.stdout} {out.stderr}"
    return json.loads(out.stdout)


def audit(p, dsn: str) -> dict:
    env = p.worker_env("audit")
    env["ZL_PG_DSN"] = dsn
    out = subprocess.run([str(p.bin / "zl-audit")], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"zl-audit: expected clean (0), got {out.returncode}: {out.stdout} {out.stderr}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def deposit_id_to(p, addr: str) -> str:
    """The id of the one deposit to addr, once detect recorded it."""
    ids = wait_until(lambda: p.psql("SELECT deposit_id FROM deposits WHERE to_addr = :'v1'", addr.lower()), 60,
                     f"a deposit to {addr} detected")
    assert len(ids) == 1, ids
    return ids[0][0]


def row(p, did: str) -> dict:
    r = p.psql("SELECT row_to_json(d)::text FROM deposits d WHERE deposit_id = :'v1'", did)
    return json.loads(r[0][0]) if r else {}


def history(p, did: str) -> list[str]:
    return [r[0] for r in p.psql("SELECT to_state FROM deposit_history WHERE deposit_id = :'v1' ORDER BY id", did)]


def metric(text: str, name: str, labels: str = "") -> float | None:
    m = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def port_of(p, name: str) -> int:
    f = p.local / "run" / f"{name}.port"
    wait_until(lambda: f.exists() and f.read_text().strip() != "", 30, f"{name} port")
    return int(f.read_text().strip())


def test_a_below_minimum_deposit_is_listed_never_dead_lettered_and_credited_once_by_one_command():
    """Guards against dust being dead-lettered (an operator paged for an
    expected, frequent event), lost (no state, no listing), or credited
    twice when the operator's command is repeated: the dust ends
    below_minimum with nothing in zl.verify.dlq, zlctl lists it with its
    amount, credit-below-minimum takes it to credited once (50 eggs, one
    mint), a retry with the same Idempotency-Key replays the answer, any
    other second call answers 409, and zl-audit is clean before and after."""
    from zlharness.pipeline import STAGES, assert_credited_once, scratch_pipeline
    with scratch_pipeline("dust") as p:
        p.setup(accounts=1, users=2)
        tok = write_secret(p.local / "keys" / "admin.token", ADMIN_TOKEN)
        p.worker_overrides.update({
            "ZL_TOKENS": f"USDT:{p.token}:18:{USDT_MIN}", "ZL_TOKEN_ADDRESS": "",
            "ZL_ADMIN_TOKEN_FILE": str(tok),
            "ZL_SWEEP_STALE_MS": "60000",  # only the credit's own sweep request re-publishes the row
            "ZL_SWEEP_INTERVAL_MS": "500",
        })
        p.start_workers([(s, 1) for s in STAGES] + [("zl-sweep", 1)])
        p.worker_overrides["ZL_PG_DSN"] = login_role(p, "zl_admin")
        p.start_workers([("zl-admin", 1)])
        del p.worker_overrides["ZL_PG_DSN"]
        audit_dsn = login_role(p, "zl_audit")
        base = f"http://127.0.0.1:{port_of(p, 'zl-admin-0')}"
        wait_until(lambda: http_json("GET", base + "/health/live")[0] == 200, 30, "zl-admin up")

        rpc = Rpc(p.env["ZL_RPC_URLS"])
        dust_addr, full_addr = p.deposit_addrs
        assert p.make_deposits(1, [dust_addr], amount_of=lambda _j: DUST) == 1
        assert p.make_deposits(1, [full_addr], amount_of=lambda _j: FULL) == 1
        p.pool_drained(60)
        did = deposit_id_to(p, dust_addr)
        wait_until(lambda: row(p, did).get("state") == "below_minimum" and p.counts([full_addr])["credited"] == 1,
                   STATE_WAIT_S, "the dust below_minimum and the full deposit credited")

        # Settled, not dead: no dead letter, no verified event, its reason kept.
        r = row(p, did)
        assert f"below USDT's minimum {USDT_MIN}" in r["last_error"] and r["last_error_class"] is None, r
        assert r["min_waived_at"] is None and r["dlq_topic"] is None, r
        assert history(p, did) == ["detected", "below_minimum"]
        dlq = consume("zl.verify.dlq", "%k\n", p.env["ZL_KAFKA_BROKERS"]).split()
        assert did not in dlq, f"the dust was dead-lettered: {dlq}"
        verified = consume("zl.deposits.verified", "%k\n", p.env["ZL_KAFKA_BROKERS"]).split()
        assert did not in verified, "the dust was passed on"
        assert zlctl_ok(p, base, "dead", "--all")["count"] == 0
        vmetrics = http_json("GET", f"http://127.0.0.1:{port_of(p, 'verify-0')}/metrics")[1]
        assert metric(vmetrics, "zl_verify_below_minimum_total", '{token="USDT"}') == 1, vmetrics[-3000:]

        # Listed, with the amount as a string and the total per token.
        listing = zlctl_ok(p, base, "below-minimum")
        assert listing["count"] == 1, listing
        (e,) = listing["below_minimum"]
        assert (e["deposit_id"], e["user_id"], e["amount"], e["symbol"], e["token"]) == \
            (did, p.user_of[dust_addr], str(DUST), "USDT", p.token), e
        assert listing["by_token"] == [{"token": p.token, "symbol": "USDT", "count": 1, "amount": str(DUST)}], listing
        view = zlctl_ok(p, base, "deposit", did)
        assert view["deposit"]["state"] == "below_minimum" and view["deposit"]["amount"] == str(DUST), view
        assert [h["to_state"] for h in view["history"]] == ["detected", "below_minimum"], view["history"]
        assert zlctl_ok(p, base, "below-minimum", "--token", "USDT")["count"] == 1
        assert zlctl_ok(p, base, "below-minimum", "--token", "0x" + "11" * 20)["count"] == 0
        wait_until(lambda: metric(http_json("GET", base + "/metrics")[1], "zl_below_minimum_deposits") == 1, 30,
                   "zl-admin's below-minimum gauge")
        s = audit(p, audit_dsn)
        assert s["states"].get("below_minimum") == 1 and s["states"].get("credited") == 1, s

        # Credited by one command; a retry with its key replays the answer.
        key = "dust-credit-key-1"
        reason = "support ticket OPS-21: customer asked for the 0.5 USDT"
        answer = zlctl_ok(p, base, "credit-below-minimum", did, "--reason", reason, "--key", key)
        assert (answer["from_state"], answer["to_state"]) == ("below_minimum", "detected"), answer
        assert zlctl_ok(p, base, "credit-below-minimum", did, "--reason", reason, "--key", key) == answer
        again = zlctl(p, base, "credit-below-minimum", did, "--reason", reason)
        assert again.returncode == 1 and "answered 409" in again.stderr, again.stdout + again.stderr
        wait_until(lambda: row(p, did).get("state") == "credited", STATE_WAIT_S, "the waived dust credited")
        assert_credited_once(p, dust_addr, DUST_EGGS)
        r = row(p, did)
        assert r["min_waived_by"].startswith("operator (token ") and r["min_waived_at"], r
        assert history(p, did) == ["detected", "below_minimum", "detected", "verified", "pinned", "mint_submitted",
                                   "minted", "credited"], history(p, did)
        audits = p.psql("SELECT action, reason, from_state, to_state FROM admin_audit WHERE deposit_id = :'v1'", did)
        assert audits == [["credit_below_minimum", reason, "below_minimum", "detected"]], audits
        # One mint of its token on chain.
        mints = rpc.call("eth_getLogs", {"fromBlock": hex(int(p.nft_from_block)), "toBlock": "latest",
                                         "address": p.nft, "topics": [TRANSFER_TOPIC, ZERO_TOPIC]})
        assert [int(m["topics"][3], 16) for m in mints].count(int(r["token_id"])) == 1, mints

        # Credited now: a later call is refused, and nothing is listed.
        late = zlctl(p, base, "credit-below-minimum", did, "--reason", "again")
        assert late.returncode == 1 and "answered 409" in late.stderr, late.stdout + late.stderr
        assert zlctl_ok(p, base, "below-minimum")["count"] == 0
        s = audit(p, audit_dsn)
        assert s["states"].get("credited") == 2 and "below_minimum" not in s["states"], s
        assert s["credited_eggs"] == str(int(DUST_EGGS) + 200), s
        rpc.close()

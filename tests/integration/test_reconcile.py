"""The backstops behind detect (issue 18): zl-audit --chain rescans the
token's Transfers in a block range and names every deposit the state table
lacks (or invents); zlctl claim TX_HASH records a deposit detect missed,
through detect's own insert-if-absent statement, and says where it is.

Against the harness's own services (LocalPipeline, as the demo and chaos
run), with every stage but detect running: a deposit made then is exactly
one "detect was pointed elsewhere" never saw.
"""
import json
import re
import subprocess
import time
import urllib.parse
import uuid

from runtime_helpers import wait_until
from zlharness.env import write_secret
from zlharness.jsonrpc import Rpc, word
from zlharness.web import http_json

ADMIN_TOKEN = "reconcile-test-token-" + "x" * 16
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


def run(p, binary: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    e = p.worker_env(binary)
    e.update(env)
    return subprocess.run([str(p.bin / binary), *args], env=e, capture_output=True, text=True, timeout=300)


def summary(out: subprocess.CompletedProcess) -> dict:
    return json.loads(out.stdout.strip().splitlines()[-1])


def claim(p, base: str, tx: str) -> dict:
    r = run(p, "zlctl", "claim", tx, "--reason", "customer: I paid, where are my eggs?", ZL_ADMIN_URL=base)
    assert r.returncode == 0, f"zlctl claim: exit {r.returncode}: {r.stdout} {r.stderr}"
    return json.loads(r.stdout)


def login_role(p, group: str) -> str:
    """A DSN of a new LOGIN role that is a member of group alone, so the
    tool runs with exactly its grants (schemas/sql/009, 010)."""
    name = f"zlt_{group}_{uuid.uuid4().hex[:8]}"
    p.psql(f'CREATE ROLE "{name}" LOGIN IN ROLE {group}')
    u = urllib.parse.urlsplit(p.env["ZL_PG_DSN"])
    return urllib.parse.urlunsplit((u.scheme, f"{name}@{u.netloc.rsplit('@', 1)[-1]}", u.path, u.query, u.fragment))


def test_a_deposit_detect_missed_is_named_by_audit_chain_and_claim_brings_it_to_credited_once():
    """Guards against a deposit detect never saw being invisible (zl-audit
    only compared state, ledger and NFTs) and support having no way to
    record it from a transaction hash: --chain must name it and exit 1, a
    claim must record it so it is credited, a second claim must change
    nothing, and the range is then clean (exit 0, textfile updated)."""
    from zlharness.pipeline import STAGES, assert_credited_once, scratch_pipeline
    with scratch_pipeline("reconcile") as p:
        local = p.local
        p.setup(accounts=1, users=2)
        token_file = write_secret(local / "keys" / "admin.token", ADMIN_TOKEN)
        textfile = local / "zl_audit.prom"
        p.worker_overrides.update({
            "ZL_ADMIN_TOKEN_FILE": str(token_file),
            "ZL_AUDIT_TEXTFILE": str(textfile),
            "ZL_AUDIT_CHAIN_CHUNK_BLOCKS": "3",  # several chunks over a short range
            "ZL_SWEEP_STALE_MS": "60000",  # only the claim's own sweep request publishes the row
            "ZL_SWEEP_INTERVAL_MS": "500",
        })
        # Detect is pointed elsewhere: it does not run at all. zl-admin and
        # zl-audit run under their own database roles: the claim and the
        # rescan need nothing more than those grants.
        p.start_workers([(s, 1) for s in STAGES if s != "detect"] + [("zl-sweep", 1)])
        p.worker_overrides["ZL_PG_DSN"] = login_role(p, "zl_admin")
        p.start_workers([("zl-admin", 1)])
        p.worker_overrides["ZL_PG_DSN"] = login_role(p, "zl_audit")
        port_file = local / "run" / "zl-admin-0.port"
        wait_until(lambda: port_file.exists() and port_file.read_text().strip() != "", 30, "zl-admin port")
        base = f"http://127.0.0.1:{port_file.read_text().strip()}"
        wait_until(lambda: http_json("GET", base + "/health/live")[0] == 200, 30, "zl-admin up")

        rpc = Rpc(p.env["ZL_RPC_URLS"])
        first = int(rpc.call("eth_blockNumber"), 16) + 1
        # A clean range first (the depositor's funding mints only): exit 0.
        clean = run(p, "zl-audit", "--chain", f"{p.nft_from_block}-{first - 1}")
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert summary(clean)["chain_range"]["clean"] is True
        assert f"zl_audit_chain_last_clean_block {first - 1}" in textfile.read_text()

        addr = p.deposit_addrs[0]
        assert p.make_deposits(1, [addr], amount_of=lambda _j: 3 * 10**18) == 1
        p.pool_drained(60)
        logs = rpc.call("eth_getLogs", {"fromBlock": hex(first), "toBlock": "latest", "address": p.token,
                                        "topics": [TRANSFER_TOPIC, None, "0x" + word(int(addr, 16))]})
        assert len(logs) == 1, logs
        tx, last = logs[0]["transactionHash"].lower(), int(rpc.call("eth_blockNumber"), 16)
        did = f"{p.env['ZL_CHAIN_ID']}:{tx}:{int(logs[0]['logIndex'], 16)}"
        assert p.counts([addr])["detected"] == 0

        missed = run(p, "zl-audit", "--chain", f"{first}-{last}")
        assert missed.returncode == 1, missed.stdout + missed.stderr
        assert re.search(rf"^DISCREPANCY chain_missing_row {re.escape(did)}: .*zlctl claim {tx}", missed.stdout,
                         re.M), missed.stdout
        s = summary(missed)
        assert s["checks"] == {"chain_missing_row": 1} and s["chain_range"]["clean"] is False, s
        prom = textfile.read_text()
        assert "zl_audit_last_run_ok 0" in prom and f"zl_audit_chain_last_clean_block {first - 1}" in prom, prom

        answer = claim(p, base, tx)
        assert [(d["deposit_id"], d["recorded"], d["user_id"]) for d in answer["deposits"]] == \
            [(did, "now", p.user_of[addr])], answer
        wait_until(lambda: p.counts([addr])["credited"] == 1, 180, "the claimed deposit credited")

        again = claim(p, base, tx)
        assert [(d["deposit_id"], d["recorded"], d["state"]) for d in again["deposits"]] == \
            [(did, "already", "credited")], again
        assert_credited_once(p, addr, "300")  # 3 USDT at 100 eggs
        audits = p.psql("SELECT coalesce(deposit_id, '-') FROM admin_audit WHERE action = 'claim' ORDER BY id")
        assert audits == [[did], ["-"]], f"one audit entry per claim (the first on the deposit): {audits}"

        ok = run(p, "zl-audit", "--chain", f"{first}-{last}")
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert summary(ok)["chain_range"]["registered"] == 1
        prom = textfile.read_text()
        assert "zl_audit_last_run_ok 1" in prom and f"zl_audit_chain_last_clean_block {last}" in prom, prom

        # A hash the node does not know is refused, not recorded; a range
        # past the bound is refused (exit 2), never cut.
        unknown = run(p, "zlctl", "claim", "0x" + "cd" * 32, "--reason", "typo", ZL_ADMIN_URL=base)
        assert unknown.returncode == 1 and "no receipt" in unknown.stdout, unknown.stdout + unknown.stderr
        too_long = run(p, "zl-audit", "--chain", "0-1000000")
        assert too_long.returncode == 2 and "longer than 1000000 blocks" in too_long.stderr, too_long.stderr

        # A row no Transfer backs (a lying endpoint's, or one written by
        # hand) in the same range is named too.
        fake = "0x" + "ab" * 32
        fake_id = f"{p.env['ZL_CHAIN_ID']}:{fake}:0"
        p.psql("INSERT INTO deposits (deposit_id, chain_id, tx_hash, log_index, block_number, block_hash, token,"
               " from_addr, to_addr, user_id, amount, occurred_at) VALUES (:'v1', :'v2'::bigint, :'v3', 0,"
               " :'v4'::bigint, :'v3', :'v5', :'v6', :'v6', 'nobody', 5, now())",
               fake_id, p.env["ZL_CHAIN_ID"], fake, str(last), p.token, addr)
        invented = run(p, "zl-audit", "--chain", f"{first}-{last}")
        assert invented.returncode == 1, invented.stdout + invented.stderr
        assert re.search(rf"^DISCREPANCY chain_no_transfer {re.escape(fake_id)}: ", invented.stdout, re.M), \
            invented.stdout
        rpc.close()


"""The operator's first query (issue 20): `zlctl deposit ID`, `zlctl dead`
and GET /admin/deposits/{id} answer for a deposit in every state the real
pipeline takes it through (detected, verified, pinned, mint_submitted,
minted, credited, dead, reorged), and every numeric(78,0) value (amounts,
token ids, eggs: uint256s that no JSON parser's integers hold) travels as
a string.

Against the harness's own services (LocalPipeline, as the demo and chaos
run). The stages are started one at a time, so one deposit rests in each
state long enough to be read there; mining is paused to hold it at
mint_submitted; the minter's role is revoked with cast for a deposit that
mint dead-letters (its reason decoded from the contract's ABI, revert.h); an anvil snapshot reverted under a detected deposit
makes a reorged one. zl-admin runs as a member of the zl_admin role alone.
"""
import json
import subprocess

from runtime_helpers import wait_until
from test_reconcile import login_role
from zlharness.env import write_secret
from zlharness.jsonrpc import Rpc
from zlharness.kafka import consume
from zlharness.web import http_json

ADMIN_TOKEN = "admin-states-test-token-" + "x" * 16
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
# 20 USDT (18 decimals): 2e19, past int64 and past 2^53, so an amount sent
# as a JSON number would be wrong or refused by most parsers.
AMOUNT = 20 * 10**18
EGGS = "2000"  # 20 USDT at the harness's 100 eggs per USDT
# Largest integer every JSON parser holds exactly (IEEE double's mantissa).
JSON_SAFE_INT_MAX = 2**53
STATE_WAIT_S = 120


class Admin:
    """The admin API of one pipeline, through zlctl and over HTTP."""

    def __init__(self, p):
        self.p = p
        port_file = p.local / "run" / "zl-admin-0.port"
        wait_until(lambda: port_file.exists() and port_file.read_text().strip() != "", 30, "zl-admin port")
        self.base = f"http://127.0.0.1:{port_file.read_text().strip()}"
        wait_until(lambda: http_json("GET", self.base + "/health/live")[0] == 200, 30, "zl-admin up")

    def zlctl(self, *args: str) -> dict:
        env = self.p.worker_env("zlctl")
        env["ZL_ADMIN_URL"] = self.base
        out = subprocess.run([str(self.p.bin / "zlctl"), *args], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"zlctl {' '.join(args)}: exit {out.returncode}: {out.stdout} {out.stderr}"
        return json.loads(out.stdout)

    def http(self, path: str) -> dict:
        status, body = http_json("GET", self.base + path, token=ADMIN_TOKEN)
        assert status == 200, f"GET {path}: expected 200, got {status}: {body}"
        return body


def json_unsafe_ints(v, where="$") -> list[str]:
    """Paths of integers in v that a JSON parser with doubles cannot hold."""
    if isinstance(v, bool):
        return []
    if isinstance(v, int):
        return [where] if abs(v) > JSON_SAFE_INT_MAX else []
    if isinstance(v, dict):
        return [w for k, x in v.items() for w in json_unsafe_ints(x, f"{where}.{k}")]
    if isinstance(v, list):
        return [w for i, x in enumerate(v) for w in json_unsafe_ints(x, f"{where}[{i}]")]
    return []


def numeric_columns(p) -> list[str]:
    """The state table's numeric columns: each must travel as a string."""
    rows = p.psql("SELECT column_name FROM information_schema.columns WHERE table_name = 'deposits'"
                  " AND table_schema = current_schema() AND data_type = 'numeric' ORDER BY ordinal_position")
    cols = [r[0] for r in rows]
    assert {"amount", "token_id", "credit_eggs"} <= set(cols), cols
    return cols


def read_everywhere(a: Admin, did: str, state: str) -> dict:
    """The deposit as zlctl deposit and GET /admin/deposits/{id} give it,
    checked alike on both, and listed by zlctl dead (and GET /admin/dead)
    exactly when it is dead; returns zlctl's answer."""
    by_ctl = a.zlctl("deposit", did)
    by_http = a.http(f"/admin/deposits/{did}")
    for answer in (by_ctl, by_http):
        assert json_unsafe_ints(answer) == [], f"{state}: integers past 2^53 in the answer"
        d = answer["deposit"]
        assert d["deposit_id"] == did and d["state"] == state, f"expected {did} {state}, got {d['state']}"
        for col in numeric_columns(a.p):
            assert d[col] is None or isinstance(d[col], str), f"{state}: {col} is {d[col]!r}, not a string"
        assert d["amount"] == str(AMOUNT), d["amount"]
        assert answer["history"] and answer["history"][-1]["to_state"] == state, answer["history"]
        assert isinstance(answer["audit"], list) and isinstance(answer["replays"], list)
    # The same row either way (the history's timestamps included).
    assert by_ctl == by_http
    listed = {e["deposit_id"] for e in dead_listing(a)}
    assert (did in listed) == (state == "dead"), f"{state}: zlctl dead lists {sorted(listed)}"
    return by_ctl


def dead_listing(a: Admin) -> list[dict]:
    """zlctl dead and GET /admin/dead, checked alike; the listing."""
    by_ctl = a.zlctl("dead", "--limit", "1000", "--all")
    by_http = a.http("/admin/dead?limit=1000&include_resolved=1")
    assert by_ctl == by_http
    assert json_unsafe_ints(by_ctl) == [] and by_ctl["count"] == len(by_ctl["dead"])
    for e in by_ctl["dead"]:
        assert isinstance(e["amount"], str), e
    return by_ctl["dead"]


def deposit_to(p, rpc: Rpc, addr: str) -> str:
    """Sends AMOUNT to addr; returns the deposit id once its transfer is mined."""
    first = int(rpc.call("eth_blockNumber"), 16)
    p.nonces = {}  # a reverted snapshot takes nonces back: read them afresh
    assert p.make_deposits(1, [addr], amount_of=lambda _j: AMOUNT) == 1
    p.pool_drained(60)
    logs = rpc.call("eth_getLogs", {"fromBlock": hex(first), "toBlock": "latest", "address": p.token,
                                    "topics": [TRANSFER_TOPIC, None, "0x" + "0" * 24 + addr[2:]]})
    assert len(logs) == 1, logs
    return f"{p.env['ZL_CHAIN_ID']}:{logs[0]['transactionHash'].lower()}:{int(logs[0]['logIndex'], 16)}"


def state_of(p, did: str) -> str:
    rows = p.psql("SELECT state FROM deposits WHERE deposit_id = :'v1'", did)
    return rows[0][0] if rows else "absent"


def wait_state(p, did: str, state: str) -> None:
    wait_until(lambda: state_of(p, did) == state, STATE_WAIT_S, f"{did} {state}")


def test_every_admin_answer_reads_a_deposit_in_every_state():
    """Guards against the admin API failing (HTTP 500 "could not read
    deposit") on a deposit that has a token id or eggs, i.e. nearly every
    deposit after its first minute, and against uint256 values sent as JSON
    numbers that a client cannot hold: each state is read with zlctl
    deposit, zlctl dead and the HTTP API, and the values are checked."""
    from zlharness.pipeline import scratch_pipeline
    with scratch_pipeline("adminstates") as p:
        p.setup(accounts=1, users=3)
        tok = write_secret(p.local / "keys" / "admin.token", ADMIN_TOKEN)
        p.worker_overrides["ZL_ADMIN_TOKEN_FILE"] = str(tok)
        p.start_workers([("detect", 1)])
        # zl-admin with its own grants only (schemas/sql/009, 010), as deployed.
        p.worker_overrides["ZL_PG_DSN"] = login_role(p, "zl_admin")
        p.start_workers([("zl-admin", 1)])
        del p.worker_overrides["ZL_PG_DSN"]
        a = Admin(p)
        rpc = Rpc(p.env["ZL_RPC_URLS"])
        reorg_addr, addr, dead_addr = p.deposit_addrs

        # reorged: detected, then its block taken back by the chain.
        snap = rpc.call("evm_snapshot")
        rid = deposit_to(p, rpc, reorg_addr)
        wait_state(p, rid, "detected")
        assert rpc.call("evm_revert", snap) is True
        rpc.call("evm_mine")
        wait_state(p, rid, "reorged")
        r = read_everywhere(a, rid, "reorged")
        assert "reorg" in r["deposit"]["last_error"], r["deposit"]

        did = deposit_to(p, rpc, addr)
        wait_state(p, did, "detected")
        d = read_everywhere(a, did, "detected")["deposit"]
        assert d["token_id"] is None and d["credit_eggs"] is None

        p.start_workers([("verify", 1)])
        wait_state(p, did, "verified")
        d = read_everywhere(a, did, "verified")["deposit"]
        assert d["confirmations"] >= 2, d

        p.start_workers([("ipfs-upload", 1)])
        wait_state(p, did, "pinned")
        d = read_everywhere(a, did, "pinned")["deposit"]
        assert d["metadata_cid"] and d["token_uri"], d

        # mint_submitted: broadcast, with no block to mine it in.
        rpc.call("evm_setIntervalMining", 0)
        try:
            p.start_workers([("mint", 1)])
            wait_state(p, did, "mint_submitted")
            d = read_everywhere(a, did, "mint_submitted")["deposit"]
        finally:
            rpc.call("evm_setIntervalMining", 1)
        wait_state(p, did, "minted")
        d = read_everywhere(a, did, "minted")["deposit"]
        token_id = p.psql("SELECT token_id::text FROM deposits WHERE deposit_id = :'v1'", did)[0][0]
        assert d["token_id"] == token_id and int(token_id) > JSON_SAFE_INT_MAX, (d["token_id"], token_id)
        assert d["mint_tx_hash"].startswith("0x") and d["nft_contract"] == p.nft, d

        # dead: the signer loses its minter role; mint dead-letters the next deposit.
        role = p.cast("keccak", "MINTER_ROLE")
        signer = p.cast("wallet", "address", "--private-key", p.keys[0]).lower()
        p.cast("send", "--rpc-url", p.env["ZL_RPC_URLS"], "--private-key", p.keys[0], p.nft,
               "revokeRole(bytes32,address)", role, signer)
        xid = deposit_to(p, rpc, dead_addr)
        wait_state(p, xid, "dead")
        x = read_everywhere(a, xid, "dead")["deposit"]
        assert x["dead_from_state"] == "pinned" and x["last_error_class"] == "permanent", x
        assert x["resolved_by_operator"] is False
        # The reason in the contract's words (common/revert.h), not hex:
        # on the row, in the DLQ header and in mint's log.
        reason = f"AccessControlUnauthorizedAccount({signer}, MINTER_ROLE)"
        assert x["last_error"] == f"mint would revert: {reason}", x["last_error"]
        dead = dead_listing(a)
        mine = [e for e in dead if e["deposit_id"] == xid]
        assert len(mine) == 1 and mine[0]["amount"] == str(AMOUNT), dead
        assert mine[0]["dead_from_state"] == "pinned" and mine[0]["last_error"] == x["last_error"], mine
        # Read raw: the reason has a comma, which kcat's %h also puts between headers.
        dlq = [r for r in consume("zl.mint.dlq", "%k|%h\x1e", p.env["ZL_KAFKA_BROKERS"]).split("\x1e")
               if r.strip().startswith(xid + "|")]
        assert len(dlq) == 1 and f"zl-dlq-error={x['last_error']}" in dlq[0], dlq
        mint_log = (p.local / "run" / "mint-0.log").read_text(errors="replace")
        assert reason in mint_log and "custom error 0x" not in mint_log, mint_log[-2000:]
        assert {e["deposit_id"] for e in dead} == {xid}, "only the dead deposit is listed"

        p.start_workers([("credit", 1)])
        wait_state(p, did, "credited")
        d = read_everywhere(a, did, "credited")["deposit"]
        assert d["credit_eggs"] == EGGS and d["credit_id"], d
        assert d["token_id"] == token_id
        ctl = a.zlctl("deposit", did)
        assert [h["to_state"] for h in ctl["history"]] == \
            ["detected", "verified", "pinned", "mint_submitted", "minted", "credited"], ctl["history"]
        rpc.close()

"""Several deposit tokens on one chain (issue 18): an operator takes USDT
(18 decimals on BSC) and a 6-decimals stablecoin on the same chain. Each
token has its own contract, decimals, minimum and rate (ZL_TOKENS); each is
credited with its own decimals, and a configured decimals value that differs
from the chain's refuses to start, naming the token, in detect (which reads
decimals() from the chain) and in credit (which checks what detect
recorded).

Against the harness's own services (LocalPipeline), every stage running,
with the test tokens deploy/contracts/src/ZLTestToken.sol (18) and
ZLTestUSDC.sol (6).
"""
import json
import subprocess
import time

import pytest

from runtime_helpers import wait_until

USDT_RATE = 100  # eggs per USDT (LocalPipeline.setup)
USDC_RATE = 250  # eggs per USDC
USDC_MIN = 10**6  # 1 USDC in its smallest unit


def tokens_setting(p, usdc_decimals: int = 6) -> str:
    return (f"USDT:{p.token}:18:{10**18},"
            f"USDC:{p.usdc}:{usdc_decimals}:{USDC_MIN}")


def pay(p, token: str, to: str, amount: int) -> str:
    """A transfer of `amount` (smallest units) of token from depositor 0."""
    out = p.cast("send", "--rpc-url", p.env["ZL_RPC_URLS"], "--private-key", p.depositors[0], token,
                 "transfer(address,uint256)", to, str(amount), "--json")
    return json.loads(out)["transactionHash"].lower()


@pytest.fixture(scope="module")
def two_tokens():
    from zlharness.chain import deploy_artifact
    from zlharness.pipeline import STAGES, scratch_pipeline
    with scratch_pipeline("tokens") as p:
        p.setup(accounts=1, users=3)
        p.usdc = deploy_artifact(p.env["ZL_RPC_URLS"], p.keys[0], "ZLTestUSDC", p.env)
        p.cast("send", "--rpc-url", p.env["ZL_RPC_URLS"], "--private-key", p.keys[0], p.usdc,
               "mint(address,uint256)", p.depositor_addrs[0], str(10**15))
        p.psql("INSERT INTO credit_rates (token, rate, note) VALUES (:'v1', :'v2', 'test USDC')", p.usdc,
               str(USDC_RATE))
        # The list replaces the single-token setting in every stage.
        p.worker_overrides.update({"ZL_TOKENS": tokens_setting(p), "ZL_TOKEN_ADDRESS": ""})
        p.start_workers([(s, 1) for s in STAGES])
        yield p


def entry_of(p, addr: str) -> list[list[str]]:
    return p.psql("SELECT e.amount, e.token_decimals, e.rate FROM ledger_entries e JOIN deposits d USING (deposit_id)"
                  " WHERE d.to_addr = :'v1' AND e.kind = 'user_credit'", addr)


def test_two_tokens_with_18_and_6_decimals_are_each_credited_at_their_own_rate(two_tokens):
    """Guards against a second token being ignored (one token per chain), or
    credited with the first token's decimals: 7.5 USDC at 6 decimals would be
    0 eggs with 18. A deposit under its own token's minimum is settled
    below_minimum (issue 21: never dead-lettered) naming that token's
    minimum, although it is far above the other's."""
    p = two_tokens
    a_usdt, a_usdc, a_small = p.deposit_addrs[:3]
    pay(p, p.token, a_usdt, 5 * 10**18)             # 5 USDT
    pay(p, p.usdc, a_usdc, 7_500_000)              # 7.5 USDC
    tx_small = pay(p, p.usdc, a_small, 500_000)    # 0.5 USDC: under USDC's minimum
    wait_until(lambda: p.counts([a_usdt])["credited"] == 1 and p.counts([a_usdc])["credited"] == 1, 180,
               "both deposits credited")
    time.sleep(3)  # a second credit, if one were coming
    assert entry_of(p, a_usdt) == [[str(5 * USDT_RATE), "18", str(USDT_RATE)]]
    assert entry_of(p, a_usdc) == [[str(7_500_000 * USDC_RATE // 10**6), "6", str(USDC_RATE)]]  # 1875
    bal = p.psql("SELECT owner, balance FROM ledger_accounts WHERE kind = 'user' AND owner IN (:'v1', :'v2')"
                 " ORDER BY balance", p.user_of[a_usdt], p.user_of[a_usdc])
    assert bal == [[p.user_of[a_usdt], "500"], [p.user_of[a_usdc], "1875"]], bal
    # each token's system account carries its own debit
    sys_rows = dict(p.psql("SELECT owner, balance FROM ledger_accounts WHERE kind = 'system'"))
    assert sys_rows == {p.token: "-500", p.usdc: "-1875"}, sys_rows
    wait_until(lambda: p.counts([a_small])["below_minimum"] == 1, 120, "the small USDC deposit below_minimum")
    err = p.psql("SELECT last_error FROM deposits WHERE tx_hash = :'v1'", tx_small)[0][0]
    assert f"below USDC's minimum {USDC_MIN}" in err, err
    # detect read and recorded each token's decimals from the chain
    rec = dict(p.psql("SELECT token, decimals::text FROM token_decimals"))
    assert rec == {p.token: "18", p.usdc: "6"}, rec
    # the chain rescan compares both tokens' Transfers: the three deposits
    # (two credited, one below_minimum) are each a row, nothing is missing
    head = int(p.cast("block-number", "--rpc-url", p.env["ZL_RPC_URLS"]))
    audit = subprocess.run([str(p.bin / "zl-audit"), "--chain", f"{p.nft_from_block}-{head}"],
                           env=p.worker_env("audit"), capture_output=True, text=True, timeout=300)
    summary = json.loads(audit.stdout.strip().splitlines()[-1])
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert summary["chain_range"]["tokens"] == ["USDT", "USDC"], summary
    assert summary["chain_range"]["registered"] == 3 and summary["chain_range"]["clean"] is True, summary


def run_refused(p, name: str, binary: str, tokens: str) -> str:
    """Starts one more copy of binary with ZL_TOKENS = tokens; it must exit
    2 (configuration) within 60 s. Returns its log."""
    saved = dict(p.worker_overrides)
    p.worker_overrides["ZL_TOKENS"] = tokens
    try:
        proc = p.start(name, binary)
    finally:
        p.worker_overrides.clear()
        p.worker_overrides.update(saved)
    try:
        rc = proc.wait(timeout=60)
    except Exception:
        proc.kill()
        raise
    log = (p.local / "run" / f"{name}.log").read_text(errors="replace")
    assert rc == 2, f"{binary} with a wrong ZL_TOKENS exited {rc}, not 2 (refused): {log[-2000:]}"
    return log


def test_a_configured_decimals_value_that_differs_from_the_chain_refuses_to_start_naming_the_token(two_tokens):
    """Guards against a wrong decimals setting crediting every deposit of a
    token off by a power of ten: detect reads decimals() from the chain and
    refuses, and credit refuses against what detect recorded; each message
    names the token and both values."""
    p = two_tokens
    wrong = tokens_setting(p, usdc_decimals=18)
    log = run_refused(p, "detect-wrong", "detect", wrong)
    assert f"token USDC {p.usdc} has 6 decimals on the chain, ZL_TOKENS says 18" in log, log[-2000:]
    wait_until(lambda: p.psql("SELECT decimals::text FROM token_decimals WHERE token = :'v1'", p.usdc) == [["6"]],
               60, "detect recorded USDC's decimals")
    log = run_refused(p, "credit-wrong", "credit", wrong)
    assert "token USDC" in log and "has 6 decimals on the chain, ZL_TOKENS says 18" in log, log[-2000:]
    # the running pipeline is untouched: both copies refused before doing anything
    assert p.worker("detect-0").poll() is None and p.worker("credit-0").poll() is None

"""detect on Solana, the stage itself (common/solana_detect.c in
workers/detect, ZL_SOLANA_CLUSTER set) against a real solana-test-validator,
Kafka and PostgreSQL (issue 22):

  - a wallet paid before its deposit account was registered (zl-address
    add-solana) is credited that payment: the row and the detected event
    appear once registered, and later payments after it; a payment into an
    unregistered wallet, and another mint's transfer, record nothing;
  - a SIGKILLed detect restarted reads nothing twice (the cursor moves in
    the rows' own transaction);
  - a lying endpoint beside an honest one with ZL_SOLANA_RPC_QUORUM=2
    records nothing: no invented amount reaches the table;
  - verify (workers/verify with ZL_SOLANA_CLUSTER) passes a detected Solana
    deposit on only once its transaction is finalized, with the EVM chain
    left unconfigured; a row whose amount the chain does not show is
    dead-lettered as permanent, naming the difference.

On the code before this stop detect had no Solana mode (and the table no
Solana row), so each test fails there.
"""
import os
import signal
import subprocess

import pytest

from runtime_helpers import psql, wait_until
from test_solana_scan import Chain, LyingProxy
from test_solana_state import Verify
from test_solana_tx import TOKEN
from test_solana_validator import VALIDATOR, validator  # noqa: F401 (fixture)
from zlharness.env import need_env
from zlharness.kafka import consume_json
from zlharness.stage import StagePipeline, new_stage_pipeline

pytestmark = pytest.mark.skipif(not VALIDATOR.exists() and os.environ.get("ZL_SOLANA_REQUIRED") != "1",
                                reason=f"{VALIDATOR} not built (deploy/local/deps solana)")


class Detect(StagePipeline):
    STAGE = "detect"
    IN = "deposits.detected"  # detect's output: where its events are read back
    BINARY = "detect"


def register(ch: Chain, wallet: str, user: str, dsn: str | None = None) -> str:
    env = dict(os.environ, ZL_PG_DSN=dsn) if dsn else None
    out = subprocess.run([os.path.join(need_env("ZL_BIN_DIR"), "zl-address"), "add-solana", wallet, user,
                          "--cluster", "localnet", "--mint", ch.usdt], capture_output=True, text=True, timeout=30,
                         env=env)
    assert out.returncode == 0, out.stderr
    account, owner = out.stdout.split()
    assert owner == user
    return account


def rows(mint: str) -> dict[str, tuple]:
    return {r[0]: tuple(r[1:]) for r in psql(
        "SELECT deposit_id, user_id, amount::text, to_addr, state, chain_id IS NULL FROM deposits"
        " WHERE token = :'v1'", mint)}


def events(p: Detect, mint: str) -> list[dict]:
    return [e for e in consume_json(p.in_topic) if e["token"] == mint]


@pytest.fixture
def detect(tmp_path):
    p = new_stage_pipeline(Detect, tmp_path, "detect,verify", letter="s", partitions=1)
    yield p
    p.stop_all()


def start(p: Detect, ch: Chain, urls: str, name: str = "d1", **env):
    return p.start(name, ZL_SOLANA_CLUSTER="localnet", ZL_SOLANA_MINT=ch.usdt, ZL_SOLANA_COMMITMENT="confirmed",
                   ZL_SOLANA_RPC_URLS=urls, ZL_DETECT_POLL_MS="200", **env)


def test_a_payment_before_registration_is_detected_and_nothing_twice_across_a_sigkill(validator, detect):
    ch = Chain(validator, TOKEN)
    early = ch.pay(ch.tc(ch.b, 12_345_678))          # before the account is registered
    ch.pay(ch.tc(ch.c, 555))                          # c is never registered
    ch.pay(ch.tc(ch.b, 4_000_000, other=True))        # another mint
    account = register(ch, ch.b, "sol_user")
    assert account == ch.atas[ch.b], "zl-address derives the wallet's associated token account"
    w = start(detect, ch, validator.url)
    first = f"localnet:{early}:0"
    wait_until(lambda: first in rows(ch.usdt), 60, "the early payment recorded")
    assert rows(ch.usdt) == {first: ("sol_user", "12345678", account, "detected", "t")}

    later = ch.pay(ch.tc(ch.b, 1), ch.tc(ch.b, 2))
    want = {first, f"localnet:{later}:0", f"localnet:{later}:1"}
    wait_until(lambda: set(rows(ch.usdt)) == want, 60, "the later payment recorded")
    # Killed once its events are out (an event queued and lost in a kill is
    # the sweeper's to publish again: the row is the record).
    wait_until(lambda: {e["deposit_id"] for e in events(detect, ch.usdt)} == want, 30, "the events published")
    w.send_signal(signal.SIGKILL)
    w.wait(timeout=10)
    start(detect, ch, validator.url, name="d2")
    third = ch.pay(ch.tc(ch.b, 3))
    want.add(f"localnet:{third}:0")
    wait_until(lambda: set(rows(ch.usdt)) == want, 60, "a payment after the restart recorded")
    evs = wait_until(lambda: (lambda es: es if len(es) >= 4 else None)(events(detect, ch.usdt)), 30,
                     "the last event published")
    assert sorted(e["deposit_id"] for e in evs) == sorted(want), "each deposit published once, none again"
    e = next(e for e in evs if e["deposit_id"] == first)
    assert (e["chain"], e["tx_hash"], e["instruction"], e["to"], e["user_id"], e["amount"]) == \
        ("localnet", early, "0", account, "sol_user", "12345678")
    assert "chain_id" not in e


def test_a_lying_endpoint_beside_an_honest_one_records_nothing(validator, detect):
    ch = Chain(validator, TOKEN)
    register(ch, ch.b, "sol_user2")
    proxy = LyingProxy(validator.url, "raise")
    try:
        ch.pay(ch.tc(ch.b, 7_000_000))
        start(detect, ch, f"{validator.url},{proxy.url}", ZL_SOLANA_RPC_QUORUM="2")
        # The account is scanned (its scan time moves) but nothing agreed.
        wait_until(lambda: psql("SELECT scanned_at IS NOT NULL FROM sol_deposit_accounts WHERE owner = :'v1'",
                                ch.b) == [["t"]], 60, "the account scanned")
        metrics = detect.metrics("d1")
        wait_until(lambda: 'zl_sol_detect_scans_total{outcome="failed"}' in detect.metrics("d1"), 30,
                   "a failed scan counted")
        assert rows(ch.usdt) == {}, metrics
    finally:
        proxy.close()


def test_verify_passes_a_solana_deposit_only_once_finalized_and_refuses_what_the_chain_disowns(validator, tmp_path):
    ch = Chain(validator, TOKEN)
    account = register(ch, ch.b, "sol_user3")
    p = new_stage_pipeline(Detect, tmp_path / "d", "detect,verify", letter="s", partitions=1)
    v = Verify(prefix=p.prefix, workdir=tmp_path, env=dict(p.env, ZL_GROUP_ID=f"zl-verify-{p.prefix}"))
    (tmp_path / "d").mkdir(exist_ok=True)
    try:
        good = ch.pay(ch.tc(ch.b, 2_500_000))
        forged = ch.pay(ch.tc(ch.b, 1_000_000))
        start(p, ch, validator.url)
        good_id, forged_id = f"localnet:{good}:0", f"localnet:{forged}:0"
        wait_until(lambda: {good_id, forged_id} <= set(rows(ch.usdt)), 60, "both detected")
        # As if detect had recorded more than was paid: the chain must not agree.
        psql("UPDATE deposits SET amount = 1000001 WHERE deposit_id = :'v1'", forged_id)
        v.start("v1", ZL_SOLANA_CLUSTER="localnet", ZL_SOLANA_MINT=ch.usdt, ZL_SOLANA_RPC_URLS=validator.url,
                ZL_SOLANA_COMMITMENT="finalized")
        # (the forged row's event carries the old amount: the runtime refuses it
        # as poison; the sweeper-free way to judge the row is a fresh event)
        (ev,) = wait_until(lambda: [e for e in consume_json(p.in_topic) if e["deposit_id"] == forged_id], 30,
                           "the forged row's event")
        v.produce([dict(ev, amount="1000001")])
        wait_until(lambda: rows(ch.usdt)[good_id][3] == "verified", 120, "the good deposit verified")
        slot = int(psql("SELECT block_number FROM deposits WHERE deposit_id = :'v1'", good_id)[0][0])
        fin = validator.rpc("getSignatureStatuses", [good], {"searchTransactionHistory": True})["value"][0]
        assert fin["confirmationStatus"] == "finalized" and fin["slot"] == slot
        # The row moves before its event is published (the runtime commits,
        # then produces): the event is waited for.
        out = wait_until(lambda: [e for e in v.outputs() if e["deposit_id"] == good_id], 30, "the verified event")
        assert len(out) == 1 and (out[0]["chain"], out[0]["to"], out[0]["amount"]) == ("localnet", account,
                                                                                        "2500000")
        wait_until(lambda: rows(ch.usdt)[forged_id][3] == "dead", 120, "the forged row dead-lettered")
        letters = [m["headers"] for m in v.dlq_messages() if m["key"] == forged_id]
        classes = [h["zl-dlq-error-class"] for h in letters]
        assert classes == ["poison", "permanent"], letters  # the stale event, then the chain's verdict
        assert "disowns" in letters[1]["zl-dlq-error"], letters
    finally:
        v.stop_all()
        p.stop_all()



def test_a_solana_deposit_under_the_minimum_is_settled_below_minimum_never_dead_lettered(validator, tmp_path):
    """ZL_SOLANA_MIN_AMOUNT (1 USDT here): a real 0.5 USDT transfer (dust
    sent to a public deposit address) is settled below_minimum, counted in
    zl_verify_below_minimum_total{token=<the mint>}, never dead-lettered and
    never passed on; a 2.5 USDT one beside it is verified. On the code
    before, Solana deposits had no minimum (ZL_TOKENS' are EVM's): the dust
    went on to be minted a receipt and credited."""
    ch = Chain(validator, TOKEN)
    register(ch, ch.b, "sol_user_min")
    p = new_stage_pipeline(Detect, tmp_path / "d", "detect,verify", letter="s", partitions=1)
    v = Verify(prefix=p.prefix, workdir=tmp_path, env=dict(p.env, ZL_GROUP_ID=f"zl-verify-{p.prefix}"))
    (tmp_path / "d").mkdir(exist_ok=True)
    try:
        dust, good = ch.pay(ch.tc(ch.b, 500_000)), ch.pay(ch.tc(ch.b, 2_500_000))
        dust_id, good_id = f"localnet:{dust}:0", f"localnet:{good}:0"
        start(p, ch, validator.url)
        wait_until(lambda: {dust_id, good_id} <= set(rows(ch.usdt)), 60, "both detected")
        v.start("v1", ZL_SOLANA_CLUSTER="localnet", ZL_SOLANA_MINT=ch.usdt, ZL_SOLANA_RPC_URLS=validator.url,
                ZL_SOLANA_COMMITMENT="confirmed", ZL_SOLANA_MIN_AMOUNT="1000000")
        wait_until(lambda: rows(ch.usdt)[good_id][3] == "verified" and rows(ch.usdt)[dust_id][3] != "detected", 120,
                   "both judged")
        assert rows(ch.usdt)[dust_id][3] == "below_minimum"
        (err,) = psql("SELECT last_error FROM deposits WHERE deposit_id = :'v1'", dust_id)[0]
        assert "below the Solana minimum 1000000" in err, err
        out = wait_until(lambda: [e["deposit_id"] for e in v.outputs()], 30, "the verified event")
        assert out == [good_id], out
        assert v.dlq_messages() == []
        assert f'zl_verify_below_minimum_total{{token="{ch.usdt}"}} 1' in v.metrics("v1")
    finally:
        v.stop_all()
        p.stop_all()

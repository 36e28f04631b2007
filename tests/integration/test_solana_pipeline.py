"""A Solana USDT deposit through the five stages (issue 22), against a real
solana-test-validator, Kafka, PostgreSQL and Kubo:

  - paid before its account was registered, it is detected, verified at
    finalized, pinned, minted as a Token-2022 receipt (supply 1, metadata
    URI = its token_uri) owned by the depositor, and credited once, with
    the eggs its 6 decimals give;
  - the mint stage SIGKILLed after storing the signed receipt and before
    sending it sends the same bytes after its restart: one receipt, one
    signature, never signed twice; SIGKILLed after signing and before
    storing, it signs again after its restart (the first bytes were never
    sent) and still makes one receipt;
  - the chaos of issue 22 on Solana: a dead endpoint first in every stage's
    list, every stage SIGKILLed once mid-flight, and every endpoint gone
    for 8 s, then the validator process restarted, while deposits are on
    their way: every transfer is credited once, each receipt on chain held
    by the payer. (The restart comes after the validator's first snapshot:
    before one, solana-test-validator replays its ledger from genesis and
    then refuses the SPL Token program, "Unsupported program id".)

The EVM side of verify is left unconfigured (ZL_RPC_URLS unset); mint's EVM
side points at nothing (its EVM deposits would wait): neither is asked.
On the code before this stop no stage took a Solana deposit.
"""
import json
import os
import signal
import subprocess
import time

import pytest

from ipfs_helpers import IMAGE_FILE
from runtime_helpers import psql, wait_until
from test_solana_detect import register, rows
from test_solana_receipt import nonce_account
from test_solana_scan import Chain
from test_solana_tx import TOKEN, TOKEN_2022
from test_solana_validator import VALIDATOR, Validator, funded, validator  # noqa: F401 (fixture)
from zlharness.env import need_env
from zlharness.kafka import create_topics
from zlharness.pg import create_database, drop_database
from zlharness.procs import ProcessGroup, free_port
from zlharness.solana import RpcProxy
from zlharness.stage import stage_env
from zlharness.web import http_get

pytestmark = pytest.mark.skipif(not VALIDATOR.exists() and os.environ.get("ZL_SOLANA_REQUIRED") != "1",
                                reason=f"{VALIDATOR} not built (deploy/local/deps solana)")

EGGS_RATE = "2"  # eggs per whole USDT


class Stages(ProcessGroup):
    def __init__(self, workdir, env):
        self.workdir, self.procs, self.env = workdir, [], env

    def start(self, binary: str, name: str, **extra):
        env = dict(self.env, ZL_GROUP_ID=f"zl-{binary}-{self.env['ZL_TOPIC_PREFIX']}")
        env.update({k: str(v) for k, v in extra.items()})
        return self.launch(name, [os.path.join(need_env("ZL_BIN_DIR"), binary)], env)


def secret(path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


def pipeline(validator, tmp_path, ch, urls: str | None = None, dsn: str | None = None):
    payer_seeds, (payer,) = funded(validator, 1)
    nonces = [nonce_account(validator, payer_seeds[0], payer) for _ in range(2)]
    prefix = f"p{os.urandom(5).hex()}."
    env = stage_env(prefix, None, dsn=dsn, ZL_RETRY_TIERS_MS="300,1000,2000", ZL_OUTAGE_BASE_MS="200",
                    ZL_SOLANA_CLUSTER="localnet", ZL_SOLANA_MINT=ch.usdt,
                    ZL_SOLANA_RPC_URLS=urls or validator.url)
    create_topics(env, "detect,verify,ipfs-upload,mint,credit", 1)
    st = Stages(tmp_path, env)
    evm_key = secret(tmp_path / "evm.key", os.urandom(32).hex())
    sol_key = secret(tmp_path / "sol.key", payer_seeds[0])
    mint_env = dict(ZL_RPC_URLS="http://127.0.0.1:9", ZL_MINT_CHAIN_ID="31337", ZL_NFT_ADDRESS="0x" + "42" * 20,
                    ZL_SIGNER_KEY_FILE=evm_key, ZL_SOLANA_PAYER_KEY_FILE=sol_key,
                    ZL_SOLANA_NONCE_ACCOUNTS=",".join(nonces))
    return st, payer, mint_env


def receipt_on_chain(validator, mint: str, owner: str) -> dict:
    acct = validator.rpc("getAccountInfo", mint, {"encoding": "jsonParsed", "commitment": "finalized"})["value"]
    info = acct["data"]["parsed"]["info"]
    meta = next(e["state"] for e in info["extensions"] if e["extension"] == "tokenMetadata")
    held = validator.rpc("getTokenAccountsByOwner", owner, {"mint": mint}, {"encoding": "jsonParsed"})["value"]
    amounts = [h["account"]["data"]["parsed"]["info"]["tokenAmount"]["amount"] for h in held]
    return {"owner_program": acct["owner"], "supply": info["supply"], "uri": meta["uri"], "held": amounts,
            "mint_authority": info.get("mintAuthority")}


def credited(did: str) -> list:
    return psql("SELECT state, credit_eggs::text, mint_tx_hash, nft_contract, token_id::text, token_uri"
                " FROM deposits WHERE deposit_id = :'v1'", did)


def audit(validator) -> tuple[int, dict, str]:
    out = subprocess.run([os.path.join(need_env("ZL_BIN_DIR"), "zl-audit")], capture_output=True, text=True,
                         timeout=300, env=dict(os.environ, ZL_AUDIT_SOLANA_RPC_URLS=validator.url))
    return out.returncode, json.loads(out.stdout.splitlines()[-1]), out.stdout


def audit_solana_receipt(validator, did: str, other_wallet: str) -> None:
    """zl-audit reads the receipt on chain (ZL_AUDIT_SOLANA_RPC_URLS): clean
    as recorded; a row naming another owner, or a mint that is no receipt,
    is a discrepancy naming the deposit. The row is put back after."""
    (owner, mint, token) = psql("SELECT from_addr, nft_contract, token FROM deposits WHERE deposit_id = :'v1'",
                                did)[0]
    rc, summary, text = audit(validator)
    assert summary["solana"]["skipped"] is False and summary["solana"]["checked"] >= 1, summary
    assert f"DISCREPANCY sol_not_owner {did}" not in text and f"DISCREPANCY sol_not_receipt {did}" not in text
    try:
        psql("UPDATE deposits SET from_addr = :'v2' WHERE deposit_id = :'v1'", did, other_wallet)
        rc, summary, text = audit(validator)
        assert rc == 1 and f"DISCREPANCY sol_not_owner {did}" in text, text[-2000:]
        psql("UPDATE deposits SET from_addr = :'v2', nft_contract = :'v3' WHERE deposit_id = :'v1'", did, owner,
             token)
        rc, summary, text = audit(validator)
        assert rc == 1 and f"DISCREPANCY sol_not_receipt {did}" in text, text[-2000:]
    finally:
        psql("UPDATE deposits SET from_addr = :'v2', nft_contract = :'v3' WHERE deposit_id = :'v1'", did, owner,
             mint)


@pytest.mark.parametrize("fault", [None, "sol_mint_after_store", "sol_mint_after_sign"],
                         ids=["straight", "sigkill-after-store", "sigkill-after-sign"])
def test_a_solana_deposit_is_credited_once_with_its_receipt_owned_by_the_depositor(validator, tmp_path, fault):
    ch = Chain(validator, TOKEN)
    paid = ch.pay(ch.tc(ch.b, 25_000_000))  # 25 USDT, before registration
    user = f"sol_{os.urandom(4).hex()}"
    register(ch, ch.b, user)
    did = f"localnet:{paid}:0"
    st, payer, mint_env = pipeline(validator, tmp_path, ch)
    try:
        st.start("detect", "detect", ZL_SOLANA_COMMITMENT="confirmed", ZL_DETECT_POLL_MS="200")
        st.start("verify", "verify")
        st.start("ipfs-upload", "ipfs-upload", ZL_IPFS_PROVIDERS=f"kubo={need_env('ZL_IPFS_API_URL')}",
                 ZL_IPFS_GATEWAY_URLS=need_env("ZL_IPFS_GATEWAY_URLS").split(",")[0], ZL_NFT_IMAGE_FILE=str(IMAGE_FILE))
        # A rate keyed by the Solana mint (base58, in its case: migration 022).
        psql("INSERT INTO credit_rates (token, rate, note) VALUES (:'v1', :'v2', 'test')", ch.usdt, EGGS_RATE)
        st.start("credit", "credit")
        if fault:
            m = st.start("mint", "mint-crash", ZL_FAULT_POINT=fault, **mint_env)
            wait_until(lambda: m.poll() is not None, 120, "mint killed at its fault point")
            assert m.returncode == -signal.SIGKILL
            stored = psql("SELECT signature, state FROM sol_receipt_txs WHERE deposit_id = :'v1'", did)
            if fault == "sol_mint_after_sign":
                assert stored == [], "killed before storing: nothing stored, nothing sent"
            else:
                assert stored and stored[0][1] == "pending", stored
                assert validator.rpc("getSignatureStatuses", [stored[0][0]])["value"][0] is None, "not sent before"
        st.start("mint", "mint", **mint_env)
        wait_until(lambda: credited(did) and credited(did)[0][0] == "credited", 240, "the deposit credited")
        state, eggs, sig, mint, token_id, uri = credited(did)[0]
        assert (eggs, token_id) == ("50", "0"), "25 USDT at 2 eggs each, its 6 decimals applied"
        (stored_sig, signed_count, rstate) = psql(
            "SELECT signature, signed_count, state FROM sol_receipt_txs WHERE deposit_id = :'v1'", did)[0]
        assert (stored_sig, signed_count, rstate) == (sig, "1", "done"), "signed once, the stored bytes ran"
        got = receipt_on_chain(validator, mint, ch.a)
        assert got == {"owner_program": TOKEN_2022, "supply": "1", "uri": uri, "held": ["1"],
                       "mint_authority": None}, got
        assert validator.rpc("getSignatureStatuses", [sig], {"searchTransactionHistory": True})["value"][0][
            "confirmationStatus"] == "finalized"
        bal = psql("SELECT balance::text FROM ledger_accounts WHERE account_id = :'v1'", f"user:{user}")
        assert bal == [["50"]], bal
        assert psql("SELECT count(*) FROM ledger_entries WHERE deposit_id = :'v1'", did) == [["2"]]
        assert set(rows(ch.usdt)) == {did}
        if fault is None:
            audit_solana_receipt(validator, did, ch.b)
    finally:
        st.stop_all()


def paused(st, name: str) -> bool:
    """True while the worker's consumption is paused by an outage (its
    /health/ready answers 503 then)."""
    return http_get(f"http://127.0.0.1:{st.http_port(name)}/health/ready")[0] == 503


def test_mint_paused_by_a_solana_outage_resumes_when_solana_answers_while_evm_stays_away(validator, tmp_path):
    """mint's EVM endpoint is away for good (nothing answers it here); its
    Solana endpoint goes away while a Solana deposit waits for its receipt,
    then comes back. The stage pauses as an outage, and resumes once Solana
    answers. On the code before, the outage probe asked EVM alone
    (eth_blockNumber): the deposit waited for as long as EVM was away."""
    ch = Chain(validator, TOKEN)
    user = f"solo_{os.urandom(4).hex()}"
    register(ch, ch.b, user)
    proxy = RpcProxy(validator.url).start()
    st, _, mint_env = pipeline(validator, tmp_path, ch)
    try:
        st.start("mint", "mint", **dict(mint_env, ZL_SOLANA_RPC_URLS=proxy.url))
        st.http_port("mint")
        proxy.stop()  # Solana goes away before the deposit reaches mint
        paid = ch.pay(ch.tc(ch.b, 5_000_000))
        did = f"localnet:{paid}:0"
        psql("INSERT INTO credit_rates (token, rate, note) VALUES (:'v1', :'v2', 'test')", ch.usdt, EGGS_RATE)
        for b, e in {"detect": dict(ZL_SOLANA_COMMITMENT="confirmed", ZL_DETECT_POLL_MS="200"), "verify": {},
                     "ipfs-upload": ipfs_env(), "credit": {}}.items():
            st.start(b, b, **e)
        wait_until(lambda: paused(st, "mint"), 180, "mint paused by the Solana outage")
        assert states_of([did])[did] in ("pinned", "mint_submitted")
        time.sleep(2)
        proxy.start()
        wait_until(lambda: states_of([did]) == {did: "credited"}, 120,
                   "the deposit credited once Solana answers (EVM still away)")
        assert not paused(st, "mint")
        sig, mint = psql("SELECT mint_tx_hash, nft_contract FROM deposits WHERE deposit_id = :'v1'", did)[0]
        assert psql("SELECT signature, signed_count FROM sol_receipt_txs WHERE deposit_id = :'v1'", did) == \
            [[sig, "1"]]
        got = receipt_on_chain(validator, mint, ch.a)
        assert (got["supply"], got["held"]) == ("1", ["1"]), got
        assert psql("SELECT count(*) FROM ledger_entries WHERE deposit_id = :'v1'", did) == [["2"]]
    finally:
        st.stop_all()
        proxy.stop()


def ipfs_env() -> dict:
    return dict(ZL_IPFS_PROVIDERS=f"kubo={need_env('ZL_IPFS_API_URL')}",
                ZL_IPFS_GATEWAY_URLS=need_env("ZL_IPFS_GATEWAY_URLS").split(",")[0], ZL_NFT_IMAGE_FILE=str(IMAGE_FILE))


def states_of(ids: list[str], dsn: str | None = None) -> dict[str, str]:
    return {r[0]: r[1] for r in psql("SELECT deposit_id, state FROM deposits WHERE deposit_id = ANY(:'v1'::text[])",
                                     "{" + ",".join(ids) + "}", dsn=dsn)}


def test_solana_deposits_survive_a_dead_endpoint_a_sigkill_of_every_stage_and_a_validator_restart(tmp_path):
    """In a database of its own: the sweeper re-drives every stale row of
    its database, and other tests' rows are not this pipeline's to move."""
    v = Validator(tmp_path / "validator")
    (tmp_path / "validator").mkdir()
    v.start()
    st = None
    proxy = RpcProxy(v.url)
    db = f"zl_solchaos_{os.urandom(4).hex()}"
    dsn = create_database(db)
    try:
        ch = Chain(v, TOKEN)
        users = [f"solc_{os.urandom(3).hex()}" for _ in range(3)]
        accounts = []
        for u in users:
            seeds, (w,) = funded(v, 1)
            acct = register(ch, w, u, dsn)
            ch.pay({"token": "ata_create", "program": TOKEN, "mint": ch.usdt, "payer": ch.a, "ata": acct,
                    "wallet": w})
            accounts.append(acct)
        sigs = [ch.pay(ch.tc_to(accounts[i % 3], (i + 1) * 10**6)) for i in range(6)]
        dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: every stage fails over past it
        proxy.start()
        st, _, mint_env = pipeline(v, tmp_path, ch, urls=f"{dead},{proxy.url}", dsn=dsn)
        psql("INSERT INTO credit_rates (token, rate, note) VALUES (:'v1', :'v2', 'test')", ch.usdt, EGGS_RATE,
             dsn=dsn)
        env_of = {"detect": dict(ZL_SOLANA_COMMITMENT="confirmed", ZL_DETECT_POLL_MS="200"), "verify": {},
                  "ipfs-upload": ipfs_env(), "mint": mint_env, "credit": {}}
        procs = {b: st.start(b, b, **e) for b, e in env_of.items()}
        # The sweeper is part of the product: it publishes again what a
        # SIGKILLed detect recorded but had not sent (it re-drives stale rows).
        st.start("zl-sweep", "zl-sweep", ZL_SWEEP_STALE_MS="3000", ZL_SWEEP_INTERVAL_MS="1000")
        ids = [f"localnet:{s}:0" for s in sigs]

        def kill_when(binary, state_reached):
            wait_until(lambda: any(x in state_reached for x in states_of(ids, dsn).values()), 180,
                       f"a deposit past {binary}")
            procs[binary].send_signal(signal.SIGKILL)
            procs[binary].wait(timeout=10)
            procs[binary] = st.start(binary, binary + "-again", **env_of[binary])

        kill_when("detect", ("detected", "verified"))
        kill_when("verify", ("verified", "pinned", "mint_submitted"))
        kill_when("ipfs-upload", ("pinned", "mint_submitted", "minted"))
        kill_when("mint", ("mint_submitted", "minted", "credited"))
        # Every endpoint goes away for a while with deposits on their way
        # (the dead one, and the proxy in front of the validator): each stage
        # pauses as an outage, never dead-letters, and goes on after.
        proxy.stop()
        time.sleep(8)
        proxy.start()
        sigs += [ch.pay(ch.tc_to(accounts[i % 3], (i + 7) * 10**6)) for i in range(6)]
        ids = [f"localnet:{s}:0" for s in sigs]
        # The validator process restarts with these six on their way. It
        # resumes from its newest snapshot (one each 100 slots) and replays
        # its ledger past it; for a moment after the restart it answers from
        # the snapshot's older state (slots, signatures and balances behind
        # what the stages saw): a lagging node, which must not lose or
        # invent a deposit. Before its first snapshot the test validator
        # replays from genesis without its SPL programs, so the test waits
        # for one (a real cluster is not restarted from genesis either).
        wait_until(lambda: any((tmp_path / "validator" / "ledger").glob("snapshot-*.tar.zst")), 120,
                   "the validator's first snapshot")
        v.stop()
        v.start(reset=False)
        kill_when("credit", ("credited",))
        wait_until(lambda: set(states_of(ids, dsn).values()) == {"credited"} and len(states_of(ids, dsn)) == 12, 420,
                   "all 12 deposits credited")
        # Once each: two ledger entries per deposit, one receipt per deposit.
        assert psql("SELECT count(*), count(DISTINCT deposit_id) FROM ledger_entries WHERE deposit_id ="
                    " ANY(:'v1'::text[])", "{" + ",".join(ids) + "}", dsn=dsn) == [["24", "12"]]
        rows = psql("SELECT deposit_id, nft_contract, from_addr, credit_eggs::text FROM deposits"
                    " WHERE deposit_id = ANY(:'v1'::text[])", "{" + ",".join(ids) + "}", dsn=dsn)
        assert len({r[1] for r in rows}) == 12, "a receipt per deposit"
        for did, mint, owner, eggs in rows:
            got = receipt_on_chain(v, mint, owner)
            assert (got["owner_program"], got["supply"], got["held"], got["mint_authority"]) == \
                (TOKEN_2022, "1", ["1"], None), (did, got)
            assert owner == ch.a
        amounts = sorted(int(r[3]) for r in rows)
        assert amounts == sorted((i + 1) * 2 for i in range(12)), amounts  # (i+1) USDT at 2 eggs each
    finally:
        if st is not None:
            st.stop_all()
        proxy.stop()
        v.stop()
        drop_database(db)

"""A Solana USDT deposit through the five stages (issue 22), against a real
solana-test-validator, Kafka, PostgreSQL and Kubo:

  - paid before its account was registered, it is detected, verified at
    finalized, pinned, minted as a Token-2022 receipt (supply 1, metadata
    URI = its token_uri) owned by the depositor, and credited once, with
    the eggs its 6 decimals give;
  - the mint stage SIGKILLed after storing the signed receipt and before
    sending it sends the same bytes after its restart: one receipt, one
    signature, never signed twice.

The EVM side of verify is left unconfigured (ZL_RPC_URLS unset); mint's EVM
side points at nothing (its EVM deposits would wait): neither is asked.
On the code before this stop no stage took a Solana deposit.
"""
import os
import signal

import pytest

from ipfs_helpers import IMAGE_FILE
from runtime_helpers import psql, wait_until
from test_solana_detect import register, rows
from test_solana_receipt import nonce_account
from test_solana_scan import Chain
from test_solana_tx import TOKEN, TOKEN_2022
from test_solana_validator import VALIDATOR, funded, validator  # noqa: F401 (fixture)
from zlharness.env import need_env
from zlharness.kafka import create_topics
from zlharness.procs import ProcessGroup
from zlharness.stage import stage_env

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


def pipeline(validator, tmp_path, ch):
    payer_seeds, (payer,) = funded(validator, 1)
    nonces = [nonce_account(validator, payer_seeds[0], payer) for _ in range(2)]
    prefix = f"p{os.urandom(5).hex()}."
    env = stage_env(prefix, None, ZL_RETRY_TIERS_MS="300,1000,2000", ZL_OUTAGE_BASE_MS="200",
                    ZL_SOLANA_CLUSTER="localnet", ZL_SOLANA_MINT=ch.usdt, ZL_SOLANA_RPC_URLS=validator.url)
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


@pytest.mark.parametrize("fault", [None, "sol_mint_after_store"], ids=["straight", "sigkill-after-store"])
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
    finally:
        st.stop_all()

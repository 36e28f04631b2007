"""The Solana NFT receipt as the mint stage will send it
(common/solana_receipt.c, through tests/zl-sol-tx) on a real
solana-test-validator (agave 3.0.12, free loopback ports, stopped by pid):
one durable-nonce transaction, signed in C, that creates the Token-2022
mint at the address the deposit id fixes, with its metadata, one token in
the depositor's token account and the minting right given up.

  - stored, then sent after newer blocks (a crash between sign and send):
    it runs, the receipt is whole, and the same bytes sent again (the retry)
    change nothing;
  - a second transaction for the same deposit (a retry that signed anew)
    is refused: one receipt per deposit;
  - a stored transaction whose nonce moved on (its "blockhash" expired) is
    refused by the chain, and signing again with the nonce's new value
    mints it, once;
  - at each point, the step the mint stage takes (zl_sol_receipt_look and
    zl_sol_receipt_next): send the stored bytes, wait until final, sign
    anew only when they can never run, done once the receipt is final.

Run by make test's Solana tier (tests/run-all), which builds the validator
where it is missing; run alone, skipped where it is not built
(deploy/local/deps solana), unless ZL_SOLANA_REQUIRED=1.
"""
import base64
import json
import os
import subprocess
import time

import pytest

from zlharness.solana import SYSTEM, TOKEN_2022, nonce_account, nonce_value, pubkeys, tool  # noqa: F401
from test_solana_validator import VALIDATOR, ata_of, funded, sent, validator  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(not VALIDATOR.exists() and os.environ.get("ZL_SOLANA_REQUIRED") != "1",
                                reason=f"{VALIDATOR} not built (deploy/local/deps solana)")

NAME, SYMBOL = "zeroloss receipt", "ZLEGG"
URI = "ipfs://bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa"
CU_LIMIT, CU_PRICE = 300_000, 1_000
FINALIZE_S = 60


def receipt_tx(v, payer_seed: str, deposit_id: str, owner: str, nonce: str, value: str | None = None) -> dict:
    value = value or nonce_value(v, nonce)
    size_req = {"payer_seed": payer_seed, "receipt": {
        "deposit_id": deposit_id, "owner": owner, "nonce": nonce, "nonce_value": value,
        "name": NAME, "symbol": SYMBOL, "uri": URI, "rent": 0, "cu_limit": CU_LIMIT, "cu_price": CU_PRICE}}
    first = build(size_req)
    size_req["receipt"]["rent"] = v.rpc("getMinimumBalanceForRentExemption", first["account_size"])
    return dict(build(size_req), nonce=nonce, nonce_value=value)


def look(v, stored: dict) -> str:
    """The mint stage's next step for a stored receipt transaction
    (zl_sol_receipt_look, then zl_sol_receipt_next)."""
    req = {"op": "receipt_look", "urls": v.url, "signature": stored["signature"], "nonce": stored["nonce"],
           "nonce_value": stored["nonce_value"], "mint": stored["mint"]}
    out = subprocess.run([str(tool("zl-sol-rpc"))], input=json.dumps(req), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["class"] == "ok", got
    return got["next"]


def look_until(v, stored: dict, want: str, passing: set[str]) -> None:
    """Looks until the step is want; every step seen before it is in passing."""
    deadline = time.monotonic() + FINALIZE_S
    while (step := look(v, stored)) != want:
        assert step in passing, f"step {step} while waiting for {want}"
        assert time.monotonic() < deadline, f"still {step} after {FINALIZE_S}s"
        time.sleep(1)


def build(req: dict) -> dict:
    out = subprocess.run([str(tool("zl-sol-tx"))], input=json.dumps(req), capture_output=True, text=True, timeout=30)
    got = json.loads(out.stdout)
    assert out.returncode == 0, got
    return got


def send_raw(v, tx_hex: str) -> dict:
    raw = base64.b64encode(bytes.fromhex(tx_hex)).decode()
    return v.call("sendTransaction", raw, {"encoding": "base64", "preflightCommitment": "confirmed"})


def confirmed(v, sig: str):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        st = v.rpc("getSignatureStatuses", [sig])["value"][0]
        if st is not None and st.get("confirmationStatus") in ("confirmed", "finalized"):
            return st
        time.sleep(0.2)
    raise AssertionError(f"{sig} not confirmed")


def wait_slots(v, n: int):
    start = v.rpc("getSlot", {"commitment": "confirmed"})
    while v.rpc("getSlot", {"commitment": "confirmed"}) < start + n:
        time.sleep(0.2)


def assert_one_receipt(v, mint: str, owner: str):
    info = v.rpc("getAccountInfo", mint, {"encoding": "jsonParsed", "commitment": "confirmed"})["value"]
    assert info is not None and info["owner"] == TOKEN_2022, info
    parsed = info["data"]["parsed"]["info"]
    assert parsed["supply"] == "1" and parsed["mintAuthority"] is None and parsed["decimals"] == 0, parsed
    ext = {e["extension"]: e.get("state") for e in parsed["extensions"]}
    assert ext["metadataPointer"] == {"authority": None, "metadataAddress": mint}, ext
    md = ext["tokenMetadata"]
    assert (md["name"], md["symbol"], md["uri"]) == (NAME, SYMBOL, URI), md
    ata = ata_of(owner, mint, TOKEN_2022)
    assert v.rpc("getTokenAccountBalance", ata, {"commitment": "confirmed"})["value"]["amount"] == "1"


def test_a_stored_receipt_sent_after_a_crash_mints_once_and_a_resend_changes_nothing(validator):
    """Guards against a crash between signing and sending losing the
    receipt or making two: the stored bytes still run after newer blocks
    (durable nonce), with the priority fee paid; sent again they are refused;
    a receipt signed anew for the same deposit is refused (its mint's
    address is taken). The fee paid shows the ComputeBudget instructions
    were read."""
    (payer_seed, _), (payer, owner) = funded(validator, 2)
    nonce = nonce_account(validator, payer_seed, payer)
    deposit_id = f"localnet:{os.urandom(8).hex()}:0"
    stored = receipt_tx(validator, payer_seed, deposit_id, owner, nonce)
    wait_slots(validator, 20)   # the worker was down a while
    assert look(validator, stored) == "send"
    ans = send_raw(validator, stored["tx"])
    assert ans.get("result") == stored["signature"], ans
    assert confirmed(validator, stored["signature"])["err"] is None
    assert_one_receipt(validator, stored["mint"], owner)
    look_until(validator, stored, "done", {"wait"})   # landed: wait until final, never send or sign again
    tx = validator.rpc("getTransaction", stored["signature"], {"encoding": "json", "commitment": "confirmed",
                                                               "maxSupportedTransactionVersion": 0})
    # base fee 5000 per signature + ceil(price * limit / 10^6) priority
    assert tx["meta"]["fee"] == 5000 + (CU_PRICE * CU_LIMIT + 999_999) // 1_000_000, tx["meta"]["fee"]
    again = send_raw(validator, stored["tx"])
    assert "error" in again, f"the same receipt transaction ran twice: {again}"
    anew = receipt_tx(validator, payer_seed, deposit_id, owner, nonce)
    assert anew["mint"] == stored["mint"] and anew["signature"] != stored["signature"]
    ans = send_raw(validator, anew["tx"])
    assert "error" in ans and "already in use" in json.dumps(ans["error"]), ans
    assert_one_receipt(validator, stored["mint"], owner)


def test_a_receipt_whose_nonce_moved_on_is_refused_then_signed_again_once(validator):
    """Guards against an expired "blockhash" stranding a deposit: the nonce
    was used by another transaction after this one was stored, so the chain
    refuses it (the mint stage then signs again with the nonce's new value);
    the new one mints the receipt, and only one exists."""
    (payer_seed, _, _), (payer, owner, other_owner) = funded(validator, 3)
    nonce = nonce_account(validator, payer_seed, payer)
    deposit_id = f"localnet:{os.urandom(8).hex()}:1"
    stored = receipt_tx(validator, payer_seed, deposit_id, owner, nonce)
    # another deposit's receipt used the nonce in between
    other = receipt_tx(validator, payer_seed, f"localnet:{os.urandom(8).hex()}:0", other_owner, nonce)
    assert send_raw(validator, other["tx"]).get("result") == other["signature"]
    confirmed(validator, other["signature"])
    look_until(validator, stored, "resign", {"wait"})  # the nonce moved: wait until that is final
    ans = send_raw(validator, stored["tx"])
    assert "error" in ans, f"a transaction with a used nonce ran: {ans}"
    assert validator.rpc("getAccountInfo", stored["mint"], {"commitment": "confirmed"})["value"] is None
    fresh = receipt_tx(validator, payer_seed, deposit_id, owner, nonce)
    assert fresh["mint"] == stored["mint"]
    assert send_raw(validator, fresh["tx"]).get("result") == fresh["signature"]
    assert confirmed(validator, fresh["signature"])["err"] is None
    assert_one_receipt(validator, stored["mint"], owner)
    look_until(validator, fresh, "done", {"wait"})
    assert_one_receipt(validator, other["mint"], other_owner)

"""The C Solana transactions (common/solana_tx.c, solana_system.c,
solana_token.c, solana_addr.c, through tests/zl-sol-tx) sent to a real
solana-test-validator (agave 3.0.12, started here on free loopback ports in
a temp folder, stopped by pid), which must execute them:

  - a token mint created at an address fixed by a seed, initialised, its
    associated token account created (twice: idempotent), 1 token minted,
    the minting right given up: the receipt's shape, and a second creation
    at the same address is refused (a second receipt cannot exist);
  - the receipt itself on Token-2022: the same, with the metadata pointer
    extension and the token metadata (name, symbol, the IPFS URI) in the
    mint account;
  - a TransferChecked between two wallets' token accounts (a deposit);
  - a durable nonce account created, then a transaction whose "recent
    blockhash" is the nonce's value, sent after newer blocks, executed once,
    and the same bytes refused when sent again.

Run by make test's Solana tier (tests/run-all), which builds the validator
where it is missing (about 18 min on 2 cores, in the background while the
other tiers run); run alone, skipped where it is not built
(deploy/local/deps solana), unless ZL_SOLANA_REQUIRED=1.
"""
import json
import os
import time

import pytest

from zlharness.solana import (LAMPORTS_PER_SOL, SYSTEM, TOKEN, TOKEN_2022, VALIDATOR, Validator,  # noqa: F401
                              ata_of, funded, pubkeys, sent, tool, with_seed)

pytestmark = pytest.mark.skipif(not VALIDATOR.exists() and os.environ.get("ZL_SOLANA_REQUIRED") != "1",
                                reason=f"{VALIDATOR} not built (deploy/local/deps solana)")


@pytest.fixture(scope="module")
def validator(tmp_path_factory):
    v = Validator(tmp_path_factory.mktemp("solana"))
    try:
        v.start()
        yield v
    finally:
        v.stop()


@pytest.mark.parametrize("program", [TOKEN, TOKEN_2022], ids=["spl-token", "token-2022"])
def test_a_mint_at_a_seeded_address_holds_one_token_and_cannot_be_created_twice(validator, program):
    (payer_seed, owner_seed), (payer, owner) = funded(validator, 2)
    seed = os.urandom(8).hex()  # a deposit id's digest, in the mint
    mint = with_seed(payer, seed, program)
    rent = validator.rpc("getMinimumBalanceForRentExemption", 82)
    ata = ata_of(owner, mint, program)
    create = {"system": "create_account_with_seed", "from": payer, "to": mint, "base": payer, "seed": seed,
              "lamports": rent, "space": 82, "owner": program}
    spec = {"payer_seed": payer_seed, "seeds": [payer_seed], "blockhash": validator.blockhash(), "instructions": [
        create,
        {"token": "initialize_mint2", "program": program, "mint": mint, "decimals": 0, "authority": payer},
        {"token": "ata_create", "program": program, "mint": mint, "payer": payer, "ata": ata, "wallet": owner},
        {"token": "ata_create", "program": program, "mint": mint, "payer": payer, "ata": ata, "wallet": owner},
        {"token": "mint_to", "program": program, "mint": mint, "dest": ata, "authority": payer, "amount": 1},
        {"token": "set_mint_authority", "program": program, "mint": mint, "authority": payer,
         "new_authority": None}]}
    sent(validator, spec)
    bal = validator.rpc("getTokenAccountBalance", ata, {"commitment": "confirmed"})["value"]
    assert bal["amount"] == "1" and bal["decimals"] == 0
    info = validator.rpc("getAccountInfo", mint, {"encoding": "jsonParsed", "commitment": "confirmed"})["value"]
    parsed = info["data"]["parsed"]["info"]
    assert info["owner"] == program and parsed["supply"] == "1" and parsed["mintAuthority"] is None
    acct = validator.rpc("getAccountInfo", ata, {"encoding": "jsonParsed", "commitment": "confirmed"})["value"]
    assert acct["data"]["parsed"]["info"]["owner"] == owner
    # the same creation again (a retry after a crash): refused by the chain
    again = dict(spec, blockhash=validator.blockhash(), instructions=[create])
    ans, _ = validator.send(again)
    assert "error" in ans, f"a second account at {mint} was created: {ans}"
    assert "already in use" in json.dumps(ans["error"]), ans["error"]


def test_the_receipt_carries_its_metadata_in_the_token_2022_mint(validator):
    """Guards against a receipt without its metadata (name, symbol, URI),
    or one whose metadata could be moved elsewhere: MetadataPointer points
    at the mint itself with no authority to move it, the metadata is
    initialised in the mint account, then the supply is fixed at 1."""
    (payer_seed, owner_seed), (payer, owner) = funded(validator, 2)
    program = TOKEN_2022
    seed = os.urandom(8).hex()
    mint = with_seed(payer, seed, program)
    name, symbol = "zeroloss receipt 31337:0xabc:0", "ZLEGG"
    uri = "ipfs://bafkreicouv3sksjuzxb3rbb6rziy6duakk2aikegsmtqtz5rsuppjorxsa"
    meta_size = 4 + 64 + 12 + len(name) + len(symbol) + len(uri) + 4  # ZL_SOL_METADATA_SIZE
    rent = validator.rpc("getMinimumBalanceForRentExemption", 234 + meta_size)
    ata = ata_of(owner, mint, program)
    sent(validator, {"payer_seed": payer_seed, "seeds": [payer_seed], "blockhash": validator.blockhash(),
                     "instructions": [
        {"system": "create_account_with_seed", "from": payer, "to": mint, "base": payer, "seed": seed,
         "lamports": rent, "space": 234, "owner": program},
        {"token": "metadata_pointer", "program": program, "mint": mint},
        {"token": "initialize_mint2", "program": program, "mint": mint, "decimals": 0, "authority": payer},
        {"token": "metadata_init", "program": program, "mint": mint, "authority": payer, "name": name,
         "symbol": symbol, "uri": uri},
        {"token": "ata_create", "program": program, "mint": mint, "payer": payer, "ata": ata, "wallet": owner},
        {"token": "mint_to", "program": program, "mint": mint, "dest": ata, "authority": payer, "amount": 1},
        {"token": "set_mint_authority", "program": program, "mint": mint, "authority": payer,
         "new_authority": None}]})
    info = validator.rpc("getAccountInfo", mint, {"encoding": "jsonParsed", "commitment": "confirmed"})["value"]
    parsed = info["data"]["parsed"]["info"]
    assert parsed["supply"] == "1" and parsed["mintAuthority"] is None and parsed["decimals"] == 0
    ext = {e["extension"]: e.get("state") for e in parsed["extensions"]}
    assert ext["metadataPointer"] == {"authority": None, "metadataAddress": mint}, ext
    md = ext["tokenMetadata"]
    assert (md["name"], md["symbol"], md["uri"], md["mint"]) == (name, symbol, uri, mint), md
    bal = validator.rpc("getTokenAccountBalance", ata, {"commitment": "confirmed"})["value"]
    assert bal["amount"] == "1"


def test_a_transfer_checked_moves_tokens_between_two_wallets_token_accounts(validator):
    (a_seed, b_seed), (a, b) = funded(validator, 2)
    program = TOKEN
    mint_seed = os.urandom(8).hex()
    mint = with_seed(a, mint_seed, program)
    rent = validator.rpc("getMinimumBalanceForRentExemption", 82)
    ata_a, ata_b = ata_of(a, mint, program), ata_of(b, mint, program)
    sent(validator, {"payer_seed": a_seed, "seeds": [a_seed], "blockhash": validator.blockhash(), "instructions": [
        {"system": "create_account_with_seed", "from": a, "to": mint, "base": a, "seed": mint_seed,
         "lamports": rent, "space": 82, "owner": program},
        {"token": "initialize_mint2", "program": program, "mint": mint, "decimals": 6, "authority": a},
        {"token": "ata_create", "program": program, "mint": mint, "payer": a, "ata": ata_a, "wallet": a},
        {"token": "ata_create", "program": program, "mint": mint, "payer": a, "ata": ata_b, "wallet": b},
        {"token": "mint_to", "program": program, "mint": mint, "dest": ata_a, "authority": a,
         "amount": 50_000_000}]})
    sig = sent(validator, {"payer_seed": a_seed, "seeds": [a_seed], "blockhash": validator.blockhash(),
                           "instructions": [{"token": "transfer_checked", "program": program, "mint": mint,
                                             "source": ata_a, "dest": ata_b, "owner": a, "amount": 12_345_678,
                                             "decimals": 6}]})
    bal = validator.rpc("getTokenAccountBalance", ata_b, {"commitment": "confirmed"})["value"]
    assert bal["amount"] == "12345678"
    tx = validator.rpc("getTransaction", sig, {"encoding": "jsonParsed", "commitment": "confirmed",
                                               "maxSupportedTransactionVersion": 0})
    (ix,) = tx["transaction"]["message"]["instructions"]
    assert ix["parsed"]["type"] == "transferChecked"
    info = ix["parsed"]["info"]
    assert (info["source"], info["destination"], info["mint"], info["tokenAmount"]["amount"]) == \
        (ata_a, ata_b, mint, "12345678")


def test_a_durable_nonce_transaction_executes_once_after_newer_blocks(validator):
    (payer_seed,), (payer,) = funded(validator, 1)
    nonce_seed = os.urandom(32).hex()  # a new account: never funded before its creation
    nonce = pubkeys([nonce_seed])[nonce_seed]
    rent = validator.rpc("getMinimumBalanceForRentExemption", 80)
    sent(validator, {"payer_seed": payer_seed, "seeds": [payer_seed, nonce_seed], "blockhash": validator.blockhash(),
                     "instructions": [
                         {"system": "create_account", "from": payer, "to": nonce, "lamports": rent, "space": 80,
                          "owner": SYSTEM},
                         {"system": "initialize_nonce", "nonce": nonce, "authority": payer}]})
    acct = validator.rpc("getAccountInfo", nonce, {"encoding": "jsonParsed", "commitment": "confirmed"})["value"]
    value = acct["data"]["parsed"]["info"]["blockhash"]
    # stored now, sent after newer blocks: its "blockhash" is the nonce's value
    dest = pubkeys([os.urandom(32).hex()]).popitem()[1]
    spec = {"payer_seed": payer_seed, "seeds": [payer_seed], "blockhash": value, "instructions": [
        {"system": "advance_nonce", "nonce": nonce, "authority": payer},
        {"system": "transfer", "from": payer, "to": dest, "lamports": 1_000_000}]}
    start = validator.rpc("getSlot", {"commitment": "confirmed"})
    while validator.rpc("getSlot", {"commitment": "confirmed"}) < start + 20:
        time.sleep(0.2)
    sig = sent(validator, spec)
    assert validator.rpc("getBalance", dest, {"commitment": "confirmed"})["value"] == 1_000_000
    # the same bytes again: the nonce moved on, so the chain refuses them
    ans, got = validator.send(spec)
    assert got["signature"] == sig
    assert "error" in ans, f"a durable-nonce transaction ran twice: {ans}"
    time.sleep(2)
    assert validator.rpc("getBalance", dest, {"commitment": "confirmed"})["value"] == 1_000_000

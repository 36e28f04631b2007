"""TEST CODE, run by the pytools venv's python (it has solders, the Solana
SDK's types): reads a JSON list of zl-sol-tx specs on stdin and prints, per
spec, the transaction solders builds and signs from it, as
{"tx": hex, "signature": base58}; with --addr, a list of zl-sol-addr
requests and solders' answers in zl-sol-addr's form. The reference for
tests/integration/test_solana_tx.py."""
import json
import sys

from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders import system_program as sp
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.token.associated import get_associated_token_address
from solders.transaction import Transaction


def system_ix(ix: dict) -> Instruction:
    """A System Program instruction from solders' own builder."""
    k = lambda f: Pubkey.from_string(ix[f])  # noqa: E731
    op = ix["system"]
    if op == "transfer":
        return sp.transfer({"from_pubkey": k("from"), "to_pubkey": k("to"), "lamports": ix["lamports"]})
    if op == "create_account":
        return sp.create_account({"from_pubkey": k("from"), "to_pubkey": k("to"), "lamports": ix["lamports"],
                                  "space": ix["space"], "owner": k("owner")})
    if op == "create_account_with_seed":
        return sp.create_account_with_seed({"from_pubkey": k("from"), "to_pubkey": k("to"), "base": k("base"),
                                            "seed": ix["seed"], "lamports": ix["lamports"], "space": ix["space"],
                                            "owner": k("owner")})
    if op == "advance_nonce":
        return sp.advance_nonce_account({"nonce_pubkey": k("nonce"), "authorized_pubkey": k("authority")})
    if op == "initialize_nonce":
        return sp.initialize_nonce_account({"nonce_pubkey": k("nonce"), "authority": k("authority")})
    raise ValueError(op)


def budget_ix(ix: dict) -> Instruction:
    """A ComputeBudget instruction (the priority fee) from solders' builder."""
    if ix["budget"] == "unit_limit":
        return set_compute_unit_limit(ix["units"])
    if ix["budget"] == "unit_price":
        return set_compute_unit_price(ix["micro_lamports"])
    raise ValueError(ix["budget"])


def build(spec: dict) -> dict:
    keys = {bytes(k.pubkey()): k for k in (Keypair.from_seed(bytes.fromhex(s)) for s in spec["seeds"])}
    payer = Keypair.from_seed(bytes.fromhex(spec["payer_seed"]))
    ixs = [system_ix(ix) if "system" in ix else budget_ix(ix) if "budget" in ix else
           Instruction(Pubkey.from_string(ix["program"]), bytes.fromhex(ix["data"]),
                       [AccountMeta(Pubkey.from_string(a["key"]), a["signer"], a["writable"]) for a in ix["accounts"]])
           for ix in spec["instructions"]]
    blockhash = Hash.from_string(spec["blockhash"])
    msg = Message.new_with_blockhash(ixs, payer.pubkey(), blockhash)
    signers = [keys[bytes(k)] for k in msg.account_keys[:msg.header.num_required_signatures]]
    tx = Transaction(signers, msg, blockhash)
    return {"tx": bytes(tx).hex(), "signature": str(tx.signatures[0])}


def derive(r: dict) -> dict:
    try:
        if r["kind"] == "on_curve":
            return {"on_curve": Pubkey.from_string(r["key"]).is_on_curve()}
        if r["kind"] == "with_seed":
            return {"address": str(Pubkey.create_with_seed(Pubkey.from_string(r["base"]), r["seed"],
                                                           Pubkey.from_string(r["owner"])))}
        if r["kind"] == "pda":
            addr, bump = Pubkey.find_program_address([bytes.fromhex(h) for h in r["seeds"]],
                                                     Pubkey.from_string(r["program"]))
            return {"address": str(addr), "bump": bump}
        if r["kind"] == "ata":
            return {"address": str(get_associated_token_address(Pubkey.from_string(r["wallet"]),
                                                                Pubkey.from_string(r["mint"]),
                                                                Pubkey.from_string(r["token_program"])))}
    except BaseException as e:  # solders raises ValueError or a panic for a refused request
        return {"error": type(e).__name__}
    return {"error": "bad request"}


if __name__ == "__main__":
    if sys.argv[1:] == ["--addr"]:
        print(json.dumps([derive(r) for r in json.load(sys.stdin)]))
    else:
        print(json.dumps([build(s) for s in json.load(sys.stdin)]))

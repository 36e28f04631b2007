"""TEST CODE, run by the pytools venv's python (it has solders, the Solana
SDK's types): reads a JSON list of zl-sol-tx specs on stdin and prints, per
spec, the transaction solders builds and signs from it, as
{"tx": hex, "signature": base58}. The reference for
tests/integration/test_solana_tx.py."""
import json
import sys

from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction


def build(spec: dict) -> dict:
    keys = {bytes(k.pubkey()): k for k in (Keypair.from_seed(bytes.fromhex(s)) for s in spec["seeds"])}
    payer = Keypair.from_seed(bytes.fromhex(spec["payer_seed"]))
    ixs = [Instruction(Pubkey.from_string(ix["program"]), bytes.fromhex(ix["data"]),
                       [AccountMeta(Pubkey.from_string(a["key"]), a["signer"], a["writable"]) for a in ix["accounts"]])
           for ix in spec["instructions"]]
    blockhash = Hash.from_string(spec["blockhash"])
    msg = Message.new_with_blockhash(ixs, payer.pubkey(), blockhash)
    signers = [keys[bytes(k)] for k in msg.account_keys[:msg.header.num_required_signatures]]
    tx = Transaction(signers, msg, blockhash)
    return {"tx": bytes(tx).hex(), "signature": str(tx.signatures[0])}


if __name__ == "__main__":
    print(json.dumps([build(s) for s in json.load(sys.stdin)]))

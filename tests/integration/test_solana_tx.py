"""Solana transactions built, serialized and signed in C (common/solana_tx.c,
through tests/zl-sol-tx), and addresses derived in C (common/solana_addr.c,
through tests/zl-sol-addr), must be byte for byte what the Solana SDK makes
of the same input: solders 0.29 (PyPI; the SDK's Rust types), installed
by deploy/local/deps into the pytools venv. No validator is needed: a
transaction the SDK would build identically is one every RPC node accepts.

Guards against: an account order, header count or compact-u16 length that
differs from the SDK's (the network would refuse the transaction, or worse,
read an account as writable that was meant read-only), and a signature over
other bytes than the message; a derived address (a deposit's token
account, a receipt's mint) that is not the one the runtime derives, so a
deposit would be missed or a receipt created twice.
"""
import json
import random
import subprocess
from pathlib import Path

from zlharness.solana import SYSTEM, TOKEN, TOKEN_2022, pubkeys, pytools_python, tool  # noqa: F401
from zlharness.stage import b58

MEMO = "MemoSq4gqABAXKb96qnH9TYGjwcoNPDYmr4nGzFQ1bf"
RANDOM_SPECS = 200


def reference(specs: list[dict], *args: str) -> list[dict]:
    out = subprocess.run([str(pytools_python()), str(Path(__file__).with_name("solders_ref.py")), *args],
                         input=json.dumps(specs), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def ours(spec: dict) -> dict:
    out = subprocess.run([str(tool("zl-sol-tx"))], input=json.dumps(spec), capture_output=True, text=True,
                         timeout=30)
    got = json.loads(out.stdout)
    assert out.returncode == 0, got
    return got




def transfer_spec(rng: random.Random) -> dict:
    payer_seed = rng.randbytes(32).hex()
    return {"payer_seed": payer_seed, "seeds": [payer_seed], "blockhash": b58(rng.randbytes(32)),
            "instructions": [{"program": SYSTEM, "data": (2).to_bytes(4, "little").hex()
                              + (1_000_000).to_bytes(8, "little").hex(),
                              "accounts": [{"key": "SEED:" + payer_seed, "signer": True, "writable": True},
                                           {"key": b58(rng.randbytes(32)), "signer": False, "writable": True}]}]}


def random_spec(rng: random.Random) -> dict:
    """1-4 instructions over a small pool of keys, so keys repeat with
    different flags; signers from a pool of seeds; data of 0-40 bytes."""
    seeds = [rng.randbytes(32).hex() for _ in range(rng.randint(1, 3))]
    signer_keys = ["SEED:" + s for s in seeds]
    others = [b58(rng.randbytes(32)) for _ in range(rng.randint(1, 6))] + [SYSTEM, TOKEN]
    payer_seed = seeds[0]
    ixs = []
    for _ in range(rng.randint(1, 4)):
        accounts = []
        for _ in range(rng.randint(0, 5)):
            if rng.random() < 0.3:
                accounts.append({"key": rng.choice(signer_keys), "signer": rng.random() < 0.7,
                                 "writable": rng.random() < 0.5})
            else:
                accounts.append({"key": rng.choice(others), "signer": False, "writable": rng.random() < 0.5})
        ixs.append({"program": rng.choice([SYSTEM, TOKEN, TOKEN_2022, MEMO]), "accounts": accounts,
                    "data": rng.randbytes(rng.randint(0, 40)).hex()})
    return {"payer_seed": payer_seed, "seeds": seeds, "blockhash": b58(rng.randbytes(32)), "instructions": ixs}


KEY_FIELDS = ("from", "to", "base", "owner", "nonce", "authority")


def resolve(specs: list[dict]) -> list[dict]:
    """Replaces each key "SEED:<hex>" (an account's, or a System builder's
    field) by that seed's public key."""
    def slots(s):
        for ix in s["instructions"]:
            for a in ix.get("accounts", []):
                yield a, "key"
            for f in KEY_FIELDS:
                if f in ix:
                    yield ix, f
    seeds = sorted({d[f][5:] for s in specs for d, f in slots(s) if d[f].startswith("SEED:")})
    keys = pubkeys(seeds)
    for s in specs:
        for d, f in slots(s):
            if d[f].startswith("SEED:"):
                d[f] = keys[d[f][5:]]
    return specs


def test_a_system_transfer_is_the_sdks_transaction_byte_for_byte():
    (spec,) = resolve([transfer_spec(random.Random(1))])
    (want,) = reference([spec])
    got = ours(spec)
    assert got == want
    tx = bytes.fromhex(got["tx"])
    assert tx[0] == 1 and tx[65:68] == bytes([1, 0, 1]), "1 signature; header 1 signer, 1 read-only unsigned"


def test_random_messages_are_the_sdks_byte_for_byte():
    """Repeated keys with different flags, several signers, read-only and
    writable, programs also named as accounts, empty data: 200 seeded specs."""
    rng = random.Random(22)
    specs = resolve([random_spec(rng) for _ in range(RANDOM_SPECS)])
    want = reference(specs)
    differ = [(i, s) for i, (s, w) in enumerate(zip(specs, want)) if ours(s) != w]
    assert not differ, f"{len(differ)} of {len(specs)} differ from solders; first: {json.dumps(differ[0][1])}"


def addr_requests(rng: random.Random) -> list[dict]:
    key = lambda: b58(rng.randbytes(32))  # noqa: E731
    reqs = [{"kind": "on_curve", "key": key()} for _ in range(300)]
    reqs += [{"kind": "pda", "program": rng.choice([key(), TOKEN, SYSTEM]),
              "seeds": [rng.randbytes(rng.randint(0, 32)).hex() for _ in range(rng.randint(0, 4))]}
             for _ in range(100)]
    reqs += [{"kind": "with_seed", "base": key(), "owner": rng.choice([TOKEN, TOKEN_2022, key()]),
              "seed": "".join(rng.choice("0123456789abcdef") for _ in range(rng.randint(0, 32)))}
             for _ in range(50)]
    reqs += [{"kind": "ata", "wallet": key(), "mint": key(), "token_program": rng.choice([TOKEN, TOKEN_2022])}
             for _ in range(50)]
    # refused by both: a seed over 32 bytes, 16 seeds besides the bump
    reqs += [{"kind": "with_seed", "base": key(), "owner": TOKEN, "seed": "x" * 33},
             {"kind": "pda", "program": TOKEN, "seeds": ["00" * 33]},
             {"kind": "pda", "program": TOKEN, "seeds": ["01"] * 16}]
    return reqs


def test_derived_addresses_are_the_sdks():
    """300 keys on or off the curve, 100 program addresses with 0-4 seeds,
    50 create-with-seed and 50 associated token accounts (SPL Token and
    Token-2022), and three requests both must refuse."""
    reqs = addr_requests(random.Random(7))
    want = reference(reqs, "--addr")
    out = subprocess.run([str(tool("zl-sol-addr"))], input=json.dumps(reqs), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert len(got) == len(want)
    # an error's text is each side's own: compare that both refused
    norm = lambda a: {"error": True} if "error" in a else a  # noqa: E731
    differ = [(r, g, w) for r, g, w in zip(reqs, got, want) if norm(g) != norm(w)]
    assert not differ, f"{len(differ)} of {len(reqs)} differ from solders; first: {differ[0]}"
    on = sum(1 for w in want[:300] if w["on_curve"])
    assert 50 < on < 250, f"{on} of 300 random keys on the curve: the check cannot tell them apart"
    assert sum(1 for w in want if "error" in w) == 3


def system_spec(rng: random.Random) -> dict:
    """A durable-nonce transaction as the Solana mint will send one: advance
    the nonce, create the receipt's account with a seed, pay; or a nonce
    account's creation."""
    # lamports below 2^63: the test tool reads JSON integers as int64 (jansson)
    payer, base, auth = (rng.randbytes(32).hex() for _ in range(3))
    seed = "".join(rng.choice("0123456789abcdef") for _ in range(rng.randint(0, 32)))
    k = lambda s: "SEED:" + s  # noqa: E731
    nonce = b58(rng.randbytes(32))
    if rng.random() < 0.5:
        budget = [{"budget": "unit_limit", "units": rng.randrange(2 ** 32)},
                  {"budget": "unit_price", "micro_lamports": rng.randrange(2 ** 63)}]
        ixs = [{"system": "advance_nonce", "nonce": nonce, "authority": k(auth)}] + \
            rng.sample(budget, rng.randint(0, 2)) + [
               {"system": "create_account_with_seed", "from": k(payer), "to": b58(rng.randbytes(32)),
                "base": rng.choice([k(payer), k(base)]), "seed": seed, "lamports": rng.randrange(2 ** 63),
                "space": rng.randrange(2 ** 20), "owner": TOKEN_2022},
               {"system": "transfer", "from": k(payer), "to": b58(rng.randbytes(32)), "lamports": rng.randrange(2 ** 63)}]
        seeds = [payer, base, auth]
    else:
        nonce_seed = rng.randbytes(32).hex()
        ixs = [{"system": "create_account", "from": k(payer), "to": k(nonce_seed), "lamports": 1_447_680,
                "space": 80, "owner": SYSTEM},
               {"system": "initialize_nonce", "nonce": k(nonce_seed), "authority": k(auth)}]
        seeds = [payer, nonce_seed]
    return {"payer_seed": payer, "seeds": seeds, "blockhash": b58(rng.randbytes(32)), "instructions": ixs}


def test_system_program_instructions_are_the_sdks():
    """Transfer, CreateAccount, CreateAccountWithSeed (base the payer or
    another signer), AdvanceNonceAccount and InitializeNonceAccount, built
    by common/solana_system.c and by solders' system_program, with the
    priority fee's ComputeBudget SetComputeUnitLimit / SetComputeUnitPrice
    (common/solana_receipt.c, solders' compute_budget), in whole signed
    transactions: 100 seeded specs."""
    rng = random.Random(11)
    specs = resolve([system_spec(rng) for _ in range(100)])
    want = reference(specs)
    differ = [(i, s) for i, (s, w) in enumerate(zip(specs, want)) if ours(s) != w]
    assert not differ, f"{len(differ)} of {len(specs)} differ from solders; first: {json.dumps(differ[0][1])}"

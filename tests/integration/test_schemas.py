"""The JSON Schemas in schemas/ against the C envelope code (common/envelope.c).

Runs $ZL_BUILD_DIR/tests/zl-envelope-sample (default build/release), which
prints one event of each kind encoded by the C encoder and, with --decode,
decodes lines with the C decoder. Needs no service, only `make` and python's
jsonschema (Debian: python3-jsonschema).

Guards against: the schemas (what other teams and tools validate against)
and the C decoder (what the stages enforce) drifting apart; schemas so loose
they accept anything; a later topic's schema forgetting a field of an earlier
one.
"""

import copy
import json
import os
import subprocess
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas"
TIMEOUT_S = 30

# Pipeline order: each kind carries every field of the ones before it.
SUFFIXES = ["deposits.detected", "deposits.verified", "nft.pinned", "nft.minted", "credits.applied"]
SCHEMA_IDS = {
    "deposits.detected": "zl.deposits.detected/v1",
    "deposits.verified": "zl.deposits.verified/v1",
    "nft.pinned": "zl.nft.pinned/v1",
    "nft.minted": "zl.nft.minted/v1",
    "credits.applied": "zl.credits.applied/v1",
}
COMMON_KEYS = [
    "schema", "event_id", "deposit_id", "chain_id", "tx_hash", "log_index", "block_number",
    "block_hash", "token", "from", "to", "user_id", "amount", "occurred_at",
]
# A Solana event (issue 22): "chain" for chain_id, "instruction" for
# log_index, no block_hash; every other key in the same place.
SOL_COMMON_KEYS = [
    "schema", "event_id", "deposit_id", "chain", "tx_hash", "instruction", "block_number",
    "token", "from", "to", "user_id", "amount", "occurred_at",
]
EVM_ONLY = ["chain_id", "log_index", "block_hash"]
STAGE_KEYS = {
    "deposits.detected": [],
    "deposits.verified": ["confirmations"],
    "nft.pinned": ["metadata_cid", "token_uri"],
    "nft.minted": ["mint_tx_hash", "token_id", "nft_contract"],
    "credits.applied": ["credit_eggs", "credit_id", "rate"],
}


def canonical_keys(suffix, solana=False):
    keys = list(SOL_COMMON_KEYS if solana else COMMON_KEYS)
    for s in SUFFIXES[: SUFFIXES.index(suffix) + 1]:
        keys += STAGE_KEYS[s]
    return keys


def sample_bin():
    build = Path(os.environ.get("ZL_BUILD_DIR", "build/release"))
    if not build.is_absolute():
        build = REPO / build
    path = build / "tests" / "zl-envelope-sample"
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} not found: run `make` first (or set ZL_BUILD_DIR)")
    return path


def c_decode(messages, suffix=None):
    """Decodes each message (a dict, or a str taken as raw text) with the C
    decoder; returns a list of ("ok", suffix, canonical) or ("error", msg)."""
    lines = [m if isinstance(m, str) else json.dumps(m) for m in messages]
    for line in lines:
        assert "\n" not in line
    args = [str(sample_bin()), "--decode"] + ([suffix] if suffix else [])
    proc = subprocess.run(args, input="".join(l + "\n" for l in lines), capture_output=True,
                          text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, f"zl-envelope-sample --decode failed: {proc.stderr}"
    out = [tuple(l.split("\t")) for l in proc.stdout.splitlines()]
    assert len(out) == len(lines), f"expected {len(lines)} answers, got {proc.stdout!r}"
    return out


@pytest.fixture(scope="module")
def validators():
    out = {}
    for suffix in SUFFIXES:
        schema = json.loads((SCHEMAS / f"{suffix}.schema.json").read_text())
        Draft202012Validator.check_schema(schema)
        out[suffix] = Draft202012Validator(schema)
    return out


@pytest.fixture(scope="module")
def samples():
    """suffix -> (raw line, parsed dict) of the C encoder's samples."""
    return _samples([])


@pytest.fixture(scope="module")
def sol_samples():
    """The same for a Solana deposit."""
    return _samples(["--solana"])


def _samples(args):
    proc = subprocess.run([str(sample_bin())] + args, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, f"zl-envelope-sample failed: {proc.stderr}"
    lines = proc.stdout.splitlines()
    assert len(lines) == len(SUFFIXES), f"expected one line per kind, got {lines}"
    return {s: (line, json.loads(line)) for s, line in zip(SUFFIXES, lines)}


def errors(validator, doc):
    return [e.message for e in validator.iter_errors(doc)]


def test_every_c_sample_passes_its_topic_schema(validators, samples):
    """The C encoder's output is what the schema promises consumers."""
    for suffix in SUFFIXES:
        line, doc = samples[suffix]
        assert doc["schema"] == SCHEMA_IDS[suffix]
        assert errors(validators[suffix], doc) == [], f"{suffix}: {line}"


def test_c_samples_have_canonical_key_order_and_no_floats(samples):
    for suffix in SUFFIXES:
        line, doc = samples[suffix]
        assert list(doc.keys()) == canonical_keys(suffix)
        assert line == json.dumps(doc, separators=(",", ":")), "compact, no escapes"
        for key, value in doc.items():
            assert not isinstance(value, float), key


def test_each_sample_is_rejected_by_every_other_topics_schema(validators, samples):
    """A message on the wrong topic never validates (the schema const)."""
    for suffix in SUFFIXES:
        for other in SUFFIXES:
            if other != suffix:
                assert errors(validators[other], samples[suffix][1]), f"{suffix} passed {other}"


def test_later_schemas_require_every_field_of_earlier_ones_with_same_definition():
    docs = [json.loads((SCHEMAS / f"{s}.schema.json").read_text()) for s in SUFFIXES]
    for suffix, doc in zip(SUFFIXES, docs):
        assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert doc["additionalProperties"] is True, "unknown fields must stay allowed"
        shared = [k for k in canonical_keys(suffix) if k not in EVM_ONLY]
        assert doc["required"] == shared
        assert list(doc["properties"].keys()) == shared
        assert doc["oneOf"] == [{"$ref": "#/$defs/evm"}, {"$ref": "#/$defs/solana"}]
        assert doc["$defs"]["evm"]["required"] == EVM_ONLY
        assert doc["$defs"]["solana"]["required"] == ["chain", "instruction"]
        assert doc["properties"]["schema"]["const"] == SCHEMA_IDS[suffix]
    for earlier, later in zip(docs, docs[1:]):
        assert earlier["$defs"] == later["$defs"]
        for key, definition in earlier["properties"].items():
            if key != "schema":
                assert later["properties"][key] == definition, f"{later['title']}: {key} differs"


# Variants both the schema and the C decoder must refuse. Each is
# (name, kind it applies to, function that breaks a copy of the sample).
def _set(key, value):
    def f(doc):
        doc[key] = value
    return f


def _del(key):
    def f(doc):
        del doc[key]
    return f


BROKEN = [
    ("amount as a JSON number", "deposits.detected", _set("amount", 250)),
    ("amount with a leading zero", "deposits.detected", _set("amount", "0250")),
    ("amount negative", "deposits.detected", _set("amount", "-1")),
    ("amount of 79 digits", "deposits.detected", _set("amount", "1" * 79)),
    ("deposit_id missing", "deposits.detected", _del("deposit_id")),
    ("chain_id as a string", "deposits.detected", _set("chain_id", "31337")),
    ("chain_id zero", "deposits.detected", _set("chain_id", 0)),
    ("chain_id above 2^53-1", "deposits.detected", _set("chain_id", 2**53)),
    ("log_index negative", "deposits.detected", _set("log_index", -1)),
    ("block_number as a string", "deposits.detected", _set("block_number", "42")),
    ("tx_hash upper case", "deposits.detected", lambda d: d.update(tx_hash=d["tx_hash"].upper().replace("0X", "0x"))),
    ("block_hash short", "deposits.detected", lambda d: d.update(block_hash=d["block_hash"][:-1])),
    ("token without 0x", "deposits.detected", lambda d: d.update(token=d["token"][2:])),
    ("from 41 hex digits", "deposits.detected", lambda d: d.update({"from": d["from"] + "a"})),
    ("user_id empty", "deposits.detected", _set("user_id", "")),
    ("user_id with a space", "deposits.detected", _set("user_id", "user 1")),
    ("event_id upper case", "deposits.detected", lambda d: d.update(event_id=d["event_id"].upper())),
    ("occurred_at with an offset", "deposits.detected", _set("occurred_at", "2026-01-02T03:04:05+00:00")),
    ("occurred_at without Z", "deposits.detected", _set("occurred_at", "2026-01-02T03:04:05")),
    ("occurred_at month 13", "deposits.detected", _set("occurred_at", "2026-13-02T03:04:05Z")),
    ("schema of another topic", "deposits.detected", _set("schema", "zl.deposits.verified/v1")),
    ("schema null", "deposits.detected", _set("schema", None)),
    ("confirmations missing", "deposits.verified", _del("confirmations")),
    ("confirmations fractional", "deposits.verified", _set("confirmations", 1.5)),
    ("metadata_cid CIDv0", "nft.pinned", _set("metadata_cid", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")),
    ("token_uri https", "nft.pinned", lambda d: d.update(token_uri="https://ipfs.io/ipfs/" + d["metadata_cid"])),
    ("token_id as a number", "nft.minted", _set("token_id", 4242)),
    ("nft_contract missing", "nft.minted", _del("nft_contract")),
    ("mint_tx_hash missing", "credits.applied", _del("mint_tx_hash")),
    ("credit_eggs empty", "credits.applied", _set("credit_eggs", "")),
    ("credit_id missing", "credits.applied", _del("credit_id")),
    ("rate with two dots", "credits.applied", _set("rate", "1.2.3")),
    ("rate as a number", "credits.applied", _set("rate", 0.5)),
]


@pytest.mark.parametrize("name,suffix,breaker", BROKEN, ids=[b[0] for b in BROKEN])
def test_schema_and_c_decoder_both_reject_broken_variant(validators, samples, name, suffix, breaker):
    """The schemas are not vacuous, and the decoder refuses what they refuse."""
    doc = copy.deepcopy(samples[suffix][1])
    breaker(doc)
    assert errors(validators[suffix], doc), f"schema accepted {name}"
    (answer,) = c_decode([doc], suffix)
    assert answer[0] == "error", f"C decoder accepted {name}"


def test_every_required_field_missing_is_rejected_by_schema_and_decoder(validators, samples):
    base = samples["credits.applied"][1]
    variants = []
    for key in canonical_keys("credits.applied"):
        doc = copy.deepcopy(base)
        del doc[key]
        assert errors(validators["credits.applied"], doc), f"schema accepted a message without {key}"
        variants.append(doc)
    for key, answer in zip(canonical_keys("credits.applied"), c_decode(variants)):
        assert answer[0] == "error" and f'field "{key}"' in answer[1], (key, answer)


def test_forward_compatible_variants_are_accepted_by_both(validators, samples):
    """Extra fields, other key orders and legal spellings are not poison; the
    decoder's canonical re-encoding drops the extras and restores the order."""
    variants = []
    for suffix in SUFFIXES:
        line, doc = samples[suffix]
        extra = dict(reversed(list(doc.items())))
        extra["added_in_v2"] = {"nested": [1, 2.5, None]}
        variants.append((suffix, extra, line))
    line, doc = samples["deposits.detected"]
    for key, value in [("amount", "0"), ("occurred_at", "2024-02-29T23:59:59.123456789Z"),
                       ("token", "0xABCDEFabcdef0123456789ABCDEFabcdef012345"),
                       ("user_id", "A-Z_a.z:0-9")]:
        changed = dict(doc, **{key: value})
        variants.append(("deposits.detected", changed, json.dumps(changed, separators=(",", ":"))))

    answers = c_decode([v[1] for v in variants])
    for (suffix, variant, expected_line), answer in zip(variants, answers):
        assert errors(validators[suffix], variant) == [], variant
        assert answer == ("ok", suffix, expected_line)


def test_c_decoder_is_stricter_where_a_schema_cannot_express_the_rule(validators, samples):
    """Cross-field and range rules live in C: these pass the schema but are
    poison to the stages. If one starts failing the schema too, fine; if the
    C decoder starts accepting one, a stage would act on an untrustworthy
    message."""
    _, detected = samples["deposits.detected"]
    _, pinned = samples["nft.pinned"]
    cases = [
        ("deposit_id with another log_index", "deposits.detected",
         dict(detected, deposit_id=detected["deposit_id"].rsplit(":", 1)[0] + ":7"), "deposit_id"),
        ("amount of 2^256", "deposits.detected", dict(detected, amount=str(2**256)), "amount"),
        ("February 30", "deposits.detected", dict(detected, occurred_at="2026-02-30T00:00:00Z"), "occurred_at"),
        ("token_uri of another cid", "nft.pinned",
         dict(pinned, token_uri="ipfs://bafkreiaaaaaaaaaaaaaaaaaaaaaaaaa"), "token_uri"),
    ]
    answers = c_decode([c[2] for c in cases])
    for (name, suffix, doc, field), answer in zip(cases, answers):
        assert errors(validators[suffix], doc) == [], f"{name}: the schema now rejects it"
        assert answer[0] == "error" and f'field "{field}"' in answer[1], (name, answer)


def test_duplicate_keys_are_rejected_by_the_c_decoder(samples):
    line, _ = samples["deposits.detected"]
    (answer,) = c_decode([line[:-1] + ',"amount":"1"}'])
    assert answer[0] == "error" and "duplicate" in answer[1], answer


# ------------------------------------------------------------------ Solana
# Issue 22: the same five schemas and decoder take a Solana deposit, whose
# id is "<cluster>:<signature>:<instruction>" and whose keys are base58.


def test_every_solana_sample_passes_its_topic_schema_and_no_other(validators, sol_samples):
    for suffix in SUFFIXES:
        line, doc = sol_samples[suffix]
        assert doc["schema"] == SCHEMA_IDS[suffix]
        assert errors(validators[suffix], doc) == [], f"{suffix}: {line}"
        assert list(doc.keys()) == canonical_keys(suffix, solana=True)
        for other in SUFFIXES:
            if other != suffix:
                assert errors(validators[other], doc), f"{suffix} passed {other}"


def test_solana_samples_decode_back_to_themselves(sol_samples):
    lines = [sol_samples[s][0] for s in SUFFIXES]
    answers = c_decode(lines)
    for suffix, line, answer in zip(SUFFIXES, lines, answers):
        assert answer == ("ok", suffix, line)


def _sol_id_of(doc, **parts):
    chain, sig, place = doc["deposit_id"].split(":")
    p = dict(chain=chain, sig=sig, place=place, **parts) if not parts else dict(
        {"chain": chain, "sig": sig, "place": place}, **parts)
    return f"{p['chain']}:{p['sig']}:{p['place']}"


def _sol_consistent(key, value):
    """Changes one of the id's parts and the id with it, so only that
    part's own format is under test."""
    part = {"chain": "chain", "tx_hash": "sig", "instruction": "place"}[key]

    def f(doc):
        doc[key] = value
        doc["deposit_id"] = _sol_id_of(doc, **{part: value})
    return f


EVM_HASH = "0x" + "ab" * 32
SOL_BROKEN = [
    ("both chain and chain_id", "deposits.detected", _set("chain_id", 31337)),
    ("chain all digits", "deposits.detected", _sol_consistent("chain", "56")),
    ("chain upper case", "deposits.detected", _sol_consistent("chain", "Localnet")),
    ("chain empty", "deposits.detected", _sol_consistent("chain", "")),
    ("tx_hash in EVM form", "deposits.detected", _sol_consistent("tx_hash", EVM_HASH)),
    ("tx_hash with a 0 (not base58)", "deposits.detected",
     lambda d: _sol_consistent("tx_hash", "0" + d["tx_hash"][1:])(d)),
    ("instruction as a number", "deposits.detected", _set("instruction", 2)),
    ("instruction with a leading zero", "deposits.detected", _sol_consistent("instruction", "02")),
    ("instruction with three parts", "deposits.detected", _sol_consistent("instruction", "1.2.3")),
    ("instruction missing", "deposits.detected", _del("instruction")),
    ("token in EVM form", "deposits.detected", _set("token", "0x5FbDB2315678afecb367f032d93F642f64180aa3")),
    ("to with an l (not base58)", "deposits.detected", lambda d: d.update(to="l" + d["to"][1:])),
    ("deposit_id in EVM form", "deposits.detected", _set("deposit_id", "31337:" + EVM_HASH + ":1")),
    ("mint_tx_hash in EVM form", "nft.minted", _set("mint_tx_hash", EVM_HASH)),
    ("nft_contract in EVM form", "nft.minted", _set("nft_contract", "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")),
]


@pytest.mark.parametrize("name,suffix,breaker", SOL_BROKEN, ids=[b[0] for b in SOL_BROKEN])
def test_schema_and_c_decoder_both_reject_broken_solana_variant(validators, sol_samples, name, suffix, breaker):
    doc = copy.deepcopy(sol_samples[suffix][1])
    breaker(doc)
    assert errors(validators[suffix], doc), f"schema accepted {name}"
    (answer,) = c_decode([doc], suffix)
    assert answer[0] == "error", f"C decoder accepted {name}: {answer}"


def test_an_evm_message_with_a_solana_field_is_refused_by_both(validators, samples):
    """"chain" makes a message Solana: an EVM message that also names a
    cluster is of both families, and poison."""
    doc = dict(samples["deposits.detected"][1], chain="localnet")
    assert errors(validators["deposits.detected"], doc)
    (answer,) = c_decode([doc], "deposits.detected")
    assert answer[0] == "error", answer


def test_solana_rules_a_schema_cannot_express_live_in_the_c_decoder(validators, sol_samples):
    """Byte lengths of base58 values and the id's agreement with its parts:
    these pass the schema but are poison to the stages."""
    _, detected = sol_samples["deposits.detected"]
    sig = detected["tx_hash"]
    short_sig = sig[:60]  # base58 text of far fewer than 64 bytes
    cases = [
        ("deposit_id with another instruction", dict(detected, deposit_id=_sol_id_of(detected, place="3")),
         "deposit_id"),
        ("deposit_id of another cluster", dict(detected, deposit_id=_sol_id_of(detected, chain="devnet")),
         "deposit_id"),
        ("a signature of fewer than 64 bytes",
         dict(detected, tx_hash=short_sig, deposit_id=_sol_id_of(detected, sig=short_sig)), "deposit_id"),
        ("a signature of fewer than 64 bytes, the id left as it was", dict(detected, tx_hash=short_sig), "tx_hash"),
        ("instruction 256", dict(detected, instruction="256", deposit_id=_sol_id_of(detected, place="256")),
         "deposit_id"),
        ("a key of fewer than 32 bytes", dict(detected, to=detected["to"][:40]), "to"),
    ]
    answers = c_decode([c[1] for c in cases], "deposits.detected")
    for (name, doc, field), answer in zip(cases, answers):
        assert errors(validators["deposits.detected"], doc) == [], f"{name}: the schema now rejects it"
        assert answer[0] == "error" and f'field "{field}"' in answer[1], (name, answer)


def test_every_required_solana_field_missing_is_rejected_by_schema_and_decoder(validators, sol_samples):
    base = sol_samples["credits.applied"][1]
    keys = canonical_keys("credits.applied", solana=True)
    variants = []
    for key in keys:
        doc = copy.deepcopy(base)
        del doc[key]
        assert errors(validators["credits.applied"], doc), f"schema accepted a message without {key}"
        variants.append(doc)
    for key, answer in zip(keys, c_decode(variants)):
        # Without "chain" the message reads as EVM, and fails on chain_id.
        want = "chain_id" if key == "chain" else key
        assert answer[0] == "error" and f'field "{want}"' in answer[1], (key, answer)

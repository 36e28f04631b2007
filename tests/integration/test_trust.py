"""The state row is the truth (docs/architecture.md, "Trust model"): a message
is a notification that a row may be ready, and a message that says something
else about its deposit than the row does is refused as poison, the row left
untouched. Forged events against the real services: each test fails on the
code before issue 17, which acted on the message's own fields (the reason is
in each docstring).
"""
import time
import uuid

import pytest

from chain_helpers import Chain, Workers, dep_id, register_addresses, rows_for
from credit_helpers import create_database, drop_database, expected_eggs, insert_minted_rows, minted_deposit
from credit_helpers import new_pipeline as new_credit_pipeline
from mint_helpers import Anvil as MintAnvil
from mint_helpers import insert_pinned_rows, pinned_deposit, row, token_id
from mint_helpers import new_pipeline as new_mint_pipeline
from runtime_helpers import Pipeline, effects, insert_rows, new_deposit, psql, wait_until
from zlharness.chain import rpc_call
from zlharness.env import HarnessError
from zlharness.kafka import keyed_headers, produce_deposits
from zlharness.stage import new_stage_pipeline


def letters(topic: str) -> list[dict]:
    """Each dead letter's key and headers; none while the broker does not
    know the new topic yet (its metadata spreads a moment after creation)."""
    try:
        return keyed_headers(topic)
    except HarnessError:
        return []


def poison_letters(topic: str, field: str) -> list[dict]:
    """Dead letters on topic with class poison whose reason names field."""
    return [m for m in letters(topic) if m["headers"].get("zl-dlq-error-class") == "poison"
            and f"field {field} differs:" in m["headers"].get("zl-dlq-error", "")]


def test_a_forged_detected_event_never_kills_the_real_deposit(tmp_path):
    """A copy of a real deposit's detected event (its id and block hash,
    amount + 1) is produced while verify is down, ahead of the real event.
    Before: verify judged the forgery first, found the chain disagreeing and
    marked the row dead ("event does not match the chain"); the real event
    then found "row is dead: nothing to do". Now the forgery is poison (the
    field amount named) and the real deposit is verified with its amount."""
    chain = Chain(tmp_path)
    workers = Workers(tmp_path, chain)
    try:
        ((addr, user),) = register_addresses(1).items()
        tx = chain.transfer(0, addr, 1000)
        rcpt = rpc_call(chain.url, "eth_getTransactionReceipt", tx)
        log_index = int(rcpt["logs"][0]["logIndex"], 16)
        did = dep_id(tx, log_index)
        forged = {
            "schema": "zl.deposits.detected/v1", "event_id": str(uuid.uuid4()), "deposit_id": did,
            "chain_id": 31337, "tx_hash": tx.lower(), "log_index": log_index,
            "block_number": int(rcpt["blockNumber"], 16), "block_hash": rcpt["blockHash"].lower(),
            "token": chain.token, "from": chain.users[0], "to": addr, "user_id": user, "amount": "1001",
            "occurred_at": "2026-11-23T10:00:00.000Z",
        }
        produce_deposits(workers.prefix + "deposits.detected", [forged])
        workers.start("detect", "detect")
        wait_until(lambda: rows_for(chain.token).get(did, {}).get("state") == "detected", 30, "deposit detected")
        workers.start("verify", "verify", ZL_CONFIRMATIONS="0")
        wait_until(lambda: rows_for(chain.token)[did]["state"] in ("verified", "dead"), 40, "the deposit settled")
        r = rows_for(chain.token)[did]
        assert (r["state"], r["amount"]) == ("verified", "1000"), \
            psql("SELECT last_error FROM deposits WHERE deposit_id = :'v1'", did)
        dead = wait_until(lambda: poison_letters(workers.prefix + "verify.dlq", "amount"), 30,
                          "the forgery dead-lettered as poison naming the amount")
        assert [m["key"] for m in dead] == [did]
        evs = wait_until(lambda: [e for e in workers.topic_events("deposits.verified") if e["deposit_id"] == did],
                         30, "the verified event published")
        assert {e["amount"] for e in evs} == {"1000"}
    finally:
        workers.stop_all()
        chain.stop()


def test_a_forged_pinned_event_cannot_redirect_the_nft(tmp_path):
    """A nft.pinned event naming another recipient for a deposit in pinned,
    ahead of the real event. Before: mint took the recipient from the
    message and minted the NFT to the forger's address. Now the forgery is
    poison (field from) and the depositor owns the token on chain."""
    chain = MintAnvil(tmp_path)
    try:
        chain.nft = chain.deploy(tmp_path)
        pipeline = new_mint_pipeline(tmp_path, chain)
        try:
            d = pinned_deposit()
            insert_pinned_rows([d])
            forged = dict(d, event_id=str(uuid.uuid4()), **{"from": "0x" + "66" * 20})
            pipeline.produce([forged, d])  # one key, one partition: the forgery first
            pipeline.start("m1")
            wait_until(lambda: row(d["deposit_id"]).get("state") in ("minted", "dead"), 60, "the deposit minted")
            assert row(d["deposit_id"])["state"] == "minted"
            tid = token_id(d["deposit_id"])
            assert chain.owner_of(chain.nft, tid) == d["from"]
            assert chain.token_uri(chain.nft, tid) == d["token_uri"]
            wait_until(lambda: poison_letters(pipeline.dlq_topic, "from"), 30, "the forgery refused as poison")
        finally:
            pipeline.stop_all()
    finally:
        chain.stop()


@pytest.fixture
def credit_db():
    name, dsn = create_database()
    yield dsn
    drop_database(name)


def test_a_forged_minted_event_cannot_price_the_credit_with_another_token(credit_db, tmp_path):
    """A nft.minted event naming another token (one with a rate of its own),
    ahead of the real event. Before: credit looked the rate up by the
    message's token and credited 7 per token instead of 1000.5. Now the
    forgery is poison (field token) and the credit uses the row's token and
    rate, once."""
    token, other = "0x" + "5a" * 20, "0x" + "5b" * 20
    p = new_credit_pipeline(credit_db, tmp_path)
    try:
        for t, rate in ((token, "1000.5"), (other, "7")):
            p.sql("INSERT INTO credit_rates (token, rate, effective_from)"
                  " VALUES (:'v1', :'v2'::numeric, now() - interval '1 s')", t, rate)
        d = minted_deposit(f"u-{uuid.uuid4().hex[:8]}", 3 * 10**18, token)
        insert_minted_rows(credit_db, [d])
        forged = dict(d, event_id=str(uuid.uuid4()), token=other)
        p.produce([forged, d])
        p.start("c1")
        wait_until(lambda: p.states([d["deposit_id"]]).get(d["deposit_id"]) in ("credited", "dead"), 60,
                   "the deposit credited")
        assert p.states([d["deposit_id"]])[d["deposit_id"]] == "credited"
        credits = [e for e in p.entries([d["deposit_id"]]) if e["kind"] == "user_credit"]
        assert [(e["rate"], int(e["amount"])) for e in credits] == [("1000.5", expected_eggs(3 * 10**18, "1000.5"))]
        wait_until(lambda: poison_letters(p.dlq_topic, "token"), 30, "the forgery refused as poison")
    finally:
        p.stop_all()


def test_a_message_keyed_for_another_deposit_is_poison_and_the_row_untouched(tmp_path):
    """A valid envelope keyed `x`. Before: the key was never looked at and
    the message was processed. Now it is poison, the reason names the key,
    and the row is as it was (state, attempts, error bookkeeping)."""
    p = new_stage_pipeline(Pipeline, tmp_path, "passthrough")
    try:
        d = new_deposit()
        insert_rows([d])
        p.produce([d], key="x")
        p.start("w")
        dead = wait_until(lambda: letters(p.dlq_topic), 30, "the misrouted message dead-lettered")
        h = dead[0]["headers"]
        assert (dead[0]["key"], h["zl-dlq-error-class"]) == ("x", "poison")
        assert f'key "x" differs from deposit_id {d["deposit_id"]}' in h["zl-dlq-error"], h
        time.sleep(1)
        assert psql("SELECT state, attempts, coalesce(last_error, ''), coalesce(dlq_topic, '') FROM deposits"
                    " WHERE deposit_id = :'v1'", d["deposit_id"]) == [["detected", "0", "", ""]]
        assert effects([d["deposit_id"]]) == {}
    finally:
        p.stop_all()

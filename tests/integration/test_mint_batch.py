"""The mint stage's mintBatch path against a private anvil, the shared broker
and database.

Under backlog (several deposits to mint in one poll batch) the stage signs
one mintBatch for up to ZL_MINT_BATCH_MAX of them, stores it (with all its
deposit ids) before broadcasting, and re-broadcasts the same bytes on any
retry. Every test uses a fresh signer key and asserts on the chain itself:
the owner of every token, the number of Transfer-from-zero logs per token id
(exactly 1), and the signer's transaction count against the stored
transactions (no extra tx, no nonce gap).
"""
import json
import time
import uuid

import pytest

from mint_helpers import (ANVIL_KEY0, MintPipeline, cast, chain, create_topics, insert_pinned_rows, mint_env,
                          mints_per_token, new_pipeline, owners, pinned_deposit, signer_txs, token_id)
from runtime_helpers import psql, states, wait_until


@pytest.fixture
def pipeline(tmp_path, chain):
    # A poll batch gathers the whole backlog (the deposits are produced
    # before a worker starts), so its mints are batched.
    p = new_pipeline(tmp_path, chain, ZL_BATCH_FILL_MS="1000")
    yield p
    p.stop_all()


def all_minted(deposits: list[dict]):
    ids = [d["deposit_id"] for d in deposits]
    return lambda: list(states(ids).values()).count("minted") == len(ids)


def minted_rows(deposits: list[dict]) -> dict[str, tuple[str, str]]:
    rows = psql("SELECT deposit_id, mint_tx_hash, token_id::text FROM deposits WHERE deposit_id = ANY(:'v1'::text[])"
                " AND state = 'minted'", "{" + ",".join(d["deposit_id"] for d in deposits) + "}")
    return {r[0]: (r[1], r[2]) for r in rows}


def assert_each_minted_once(p: MintPipeline, deposits: list[dict], also: tuple = ()) -> list[dict]:
    """Each deposit: row minted with its token id and the hash of a stored
    mint of the signer; on the chain the depositor owns the token and it was
    minted by exactly one Transfer from zero. The signer sent exactly the
    stored transactions, at contiguous nonces, every one mined and
    successful, and each deposit is carried by exactly one of them. Returns
    the stored transactions. `also`: other pipelines whose outputs count."""
    rows = minted_rows(deposits)
    assert len(rows) == len(deposits)
    for d in deposits[:3]:  # cast, as an independent check of the token-id derivation, on a sample
        assert rows[d["deposit_id"]][1] == token_id(d["deposit_id"])
    tids = [rows[d["deposit_id"]][1] for d in deposits]
    got_owners = owners(p.chain.url, p.chain.nft, tids)
    wrong = [(d["deposit_id"], o) for d, o in zip(deposits, got_owners) if o != d["from"]]
    assert not wrong, f"{len(wrong)} tokens not owned by their depositor, e.g. {wrong[:3]}"
    counts = mints_per_token(p.chain.url, p.chain.nft)
    not_once = [(t, counts.get(t, 0)) for t in tids if counts.get(t, 0) != 1]
    assert not not_once, f"{len(not_once)} tokens not minted exactly once, e.g. {not_once[:3]}"
    txs = signer_txs(p.signer)
    assert [t["nonce"] for t in txs] == list(range(len(txs))), txs
    assert all(t["status"] == "mined" and t["receipt_status"] == 1 for t in txs), txs
    assert p.chain.nonce(p.signer) == len(txs), (p.chain.nonce(p.signer), len(txs))
    next_nonce = psql("SELECT next_nonce FROM signer_nonces WHERE signer = :'v1'", p.signer)
    assert int(next_nonce[0][0]) == len(txs)
    carried = [dep for t in txs for dep in t["deposits"].split(",") if dep]
    assert sorted(carried) == sorted(d["deposit_id"] for d in deposits)
    hashes = {r[0] for r in psql("SELECT mined_hash FROM signer_txs WHERE signer = :'v1'", p.signer)}
    assert {h for h, _ in rows.values()} <= hashes
    want = {d["deposit_id"] for d in deposits}
    published = lambda: set(p.output_deposit_ids()).union(*(q.output_deposit_ids() for q in also))
    wait_until(lambda: published() >= want, 60, "every mint published downstream")
    return txs


@pytest.mark.parametrize("point,after", [("mint_batch_after_store", 1), ("mint_batch_after_store", 2),
                                         ("after_side_effect", 1)])
def test_batch_killed_mid_way_is_retried_and_mints_each_id_once(pipeline, point, after):
    """SIGKILL with mintBatch transactions stored but not yet broadcast (after
    the first or the second of three), or broadcast and mined but before the
    runtime's DB commit: the restart re-sends the stored bytes (or finds them
    mined) for the deposits they carry, batches only the rest anew, and every
    token id is minted exactly once, with no extra tx and no nonce gap."""
    deps = [pinned_deposit() for _ in range(12)]
    insert_pinned_rows(deps)
    pipeline.produce(deps)
    victim = pipeline.start("victim", ZL_MINT_BATCH_MAX="5", ZL_FAULT_POINT=point, ZL_FAULT_AFTER=str(after))
    victim.wait(timeout=90)
    assert victim.returncode == -9, pipeline.log("victim")[-2000:]
    stored = signer_txs(pipeline.signer)
    assert any(t["purpose"] == "mint_batch" for t in stored), stored
    if point == "mint_batch_after_store":
        # Killed between store and broadcast: signed and stored, never sent.
        assert len(stored) == after and all(t["status"] == "pending" for t in stored), stored
        assert pipeline.chain.nonce(pipeline.signer) == 0
    else:
        # Killed after the batches were mined, before the state commit.
        assert pipeline.chain.nonce(pipeline.signer) == len(stored) >= 1
        assert "minted" not in states([d["deposit_id"] for d in deps]).values()
    pipeline.start("after", ZL_MINT_BATCH_MAX="5")
    wait_until(all_minted(deps), 90, "all minted after the restart")
    txs = assert_each_minted_once(pipeline, deps)
    assert all(len(t["deposits"].split(",")) <= 5 for t in txs), txs
    if point == "after_side_effect":
        assert len(txs) == len(stored), "the restart signed again what was already mined"


def test_a_deposit_twice_in_one_poll_batch_is_minted_once_without_dead_letters(pipeline):
    """Guards against a deposit delivered twice in one poll batch (a
    redelivery beside its retry, or the sweeper's re-publication) making the
    mintBatch carry its id twice: the batch's row update then moved fewer
    rows than it carried, the batch was refused as transient over and over,
    and valid deposits were dead-lettered. Found by the chaos suite, where
    62 of 100 deposits went to the DLQ this way."""
    deps = [pinned_deposit() for _ in range(8)]
    insert_pinned_rows(deps)
    pipeline.produce(deps)
    pipeline.produce(deps[2:6])  # four of them twice, in the same backlog
    pipeline.start("w", ZL_MINT_BATCH_MAX="20")
    wait_until(all_minted(deps), 90, "all minted")
    assert pipeline.dlq_messages() == []
    txs = assert_each_minted_once(pipeline, deps)
    assert any(t["purpose"] == "mint_batch" for t in txs), txs
    assert "left pinned/mint_submitted" not in pipeline.log("w")


def test_two_batching_workers_sharing_a_signer_mint_500_each_once(tmp_path, chain):
    """Two copies of the stage with one key and 500 deposits of backlog: both
    copies sign mintBatch transactions at the same time (nonces allocated FOR
    UPDATE on the signer's row), none collides on a nonce, no nonce is left
    unused, and each of the 500 tokens is minted exactly once, even for the
    100 deposits both copies are handed at once (as after a rebalance).

    Each copy reads its own topic prefix so that both surely have work (a
    shared group may hand one copy only retry-tier partitions); they share
    the signer, the database and the chain, which is where they can race."""
    n, overlap = 500, 100
    deps = [pinned_deposit() for _ in range(n)]
    insert_pinned_rows(deps)
    _, addr, keyfile = chain.new_signer(tmp_path, chain.nft)
    copies = []
    try:
        for name, part in (("a", deps[:(n + overlap) // 2]), ("b", deps[(n - overlap) // 2:])):
            prefix = f"t{uuid.uuid4().hex[:10]}."
            env = mint_env(chain, prefix, keyfile)
            env["ZL_MINT_BATCH_MAX"] = "20"
            create_topics(env)
            p = MintPipeline(prefix=prefix, workdir=tmp_path, env=env)
            p.signer, p.chain = addr, chain
            p.produce(part)
            copies.append((name, p, part))
        t0 = time.monotonic()
        for name, p, _ in copies:
            p.start(name)
        wait_until(all_minted(deps), 150, f"{n} deposits minted by two workers", interval_s=1)
        took = time.monotonic() - t0
        a, b = copies[0][1], copies[1][1]
        txs = assert_each_minted_once(a, deps, also=[b])
        assert len(txs) < n / 2, f"{len(txs)} txs for {n} deposits: the backlog was not batched"
        by = {name: p.log(name).count('"mintBatch signed and stored"') for name, p, _ in copies}
        print(f"{n} deposits minted in {took:.1f} s by {len(txs)} transactions, batches per worker {by}")
        assert by["a"] > 0 and by["b"] > 0, f"one worker signed every batch: {by} (no concurrency was tested)"
    finally:
        for _, p, _ in copies:
            p.stop_all()


def test_a_batch_skipping_a_token_minted_elsewhere_records_the_tx_that_minted_it(pipeline):
    """mintBatch skips ids that already exist, so its receipt logs no
    Transfer for them. The stage reads a batch's own Transfer logs to
    confirm the deposits it minted (no chain read per deposit); a deposit the
    logs leave out must not be given the batch's hash. Here one token was
    minted beforehand to its depositor by another tx (cast, as the admin):
    its row must name THAT tx. Another was minted beforehand to someone
    else: a permanent failure, in the DLQ, never recorded as minted."""
    deps = [pinned_deposit() for _ in range(6)]
    ours, theirs = deps[1], deps[4]
    sent = json.loads(cast("send", "--json", "--rpc-url", pipeline.chain.url, "--private-key", ANVIL_KEY0,
                           pipeline.chain.nft, "mint(address,uint256,string)", ours["from"],
                           token_id(ours["deposit_id"]), ours["token_uri"]))
    assert sent["status"] == "0x1", sent
    cast("send", "--rpc-url", pipeline.chain.url, "--private-key", ANVIL_KEY0, pipeline.chain.nft,
         "mint(address,uint256,string)", "0x" + "11" * 20, token_id(theirs["deposit_id"]), theirs["token_uri"])
    insert_pinned_rows(deps)
    pipeline.produce(deps)
    pipeline.start("w", ZL_MINT_BATCH_MAX="20")
    rest = [d for d in deps if d is not theirs]
    wait_until(all_minted(rest), 90, "all but the one owned by someone else minted")
    wait_until(lambda: theirs["deposit_id"] in pipeline.dlq_keys(), 60, "the foreign-owned one dead-lettered")
    assert states([theirs["deposit_id"]])[theirs["deposit_id"]] == "dead"
    rows = minted_rows(rest)
    assert rows[ours["deposit_id"]][0] == sent["transactionHash"].lower()
    txs = signer_txs(pipeline.signer)
    assert [t["purpose"] for t in txs] == ["mint_batch"], txs
    # All six went into that one batch (the path under test), though it
    # minted only four of them.
    assert sorted(txs[0]["deposits"].split(",")) == sorted(d["deposit_id"] for d in deps), pipeline.log("w")[-3000:]
    batch_hash = psql("SELECT mined_hash FROM signer_txs WHERE signer = :'v1'", pipeline.signer)[0][0]
    others = [d for d in rest if d is not ours]
    assert {rows[d["deposit_id"]][0] for d in others} == {batch_hash}
    assert owners(pipeline.chain.url, pipeline.chain.nft, [token_id(d["deposit_id"]) for d in rest]) == \
        [d["from"] for d in rest]
    counts = mints_per_token(pipeline.chain.url, pipeline.chain.nft)
    assert all(counts.get(token_id(d["deposit_id"]), 0) == 1 for d in deps), counts

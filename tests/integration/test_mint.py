"""The mint stage against a private anvil, the shared broker and database.

Every test uses a fresh signer key, so its nonces and its signer_nonces row
are its own, and asserts on the chain itself (ownerOf, tokenURI, the
signer's transaction count) as well as on the state table.
"""

import pytest

from mint_helpers import (MintPipeline, chain, insert_pinned_rows, new_pipeline, pinned_deposit, row, signer_txs,
                          token_id)
from runtime_helpers import wait_until


@pytest.fixture
def pipeline(tmp_path, chain):
    # These tests prove the per-message path (one mint tx per deposit);
    # test_mint_batch.py proves mintBatch.
    p = new_pipeline(tmp_path, chain, ZL_MINT_BATCH_MAX="1")
    yield p
    p.stop_all()


def all_in_state(ids, state):
    return lambda: all(row(i).get("state") == state for i in ids)


def assert_minted_once(p: MintPipeline, deposits: list[dict]):
    """Each deposit: row minted with the right token id and hash, the
    depositor owns the token, its URI is the deposit's, and the signer sent
    exactly one transaction per deposit at contiguous nonces."""
    for d in deposits:
        r = row(d["deposit_id"])
        tid = token_id(d["deposit_id"])
        assert r["state"] == "minted", (d["deposit_id"], r)
        assert r["token_id"] == tid
        assert r["nft_contract"] == p.chain.nft.lower()
        assert p.chain.owner_of(p.chain.nft, tid) == d["from"]
        assert p.chain.token_uri(p.chain.nft, tid) == d["token_uri"]
    txs = signer_txs(p.signer)
    assert [t["nonce"] for t in txs] == list(range(len(deposits))), txs
    assert all(t["status"] == "mined" and t["receipt_status"] == 1 for t in txs), txs
    assert p.chain.nonce(p.signer) == len(deposits)
    # The row moves before its output is delivered (commit, then publish).
    want = {d["deposit_id"] for d in deposits}
    wait_until(lambda: {o["deposit_id"] for o in p.outputs()} >= want, 30, "every mint published downstream")
    minted_ids = [o["deposit_id"] for o in p.outputs()]
    assert set(minted_ids) == {d["deposit_id"] for d in deposits}


def test_each_pinned_deposit_is_minted_once_to_its_depositor(pipeline):
    """Guards against a mint to the wrong owner, with the wrong URI, or more
    than one transaction per deposit."""
    deps = [pinned_deposit() for _ in range(6)]
    insert_pinned_rows(deps)
    pipeline.produce(deps)
    pipeline.start("m1")
    wait_until(all_in_state([d["deposit_id"] for d in deps], "minted"), 60, "all minted")
    assert_minted_once(pipeline, deps)
    outs = {o["deposit_id"]: o for o in pipeline.outputs()}
    for d in deps:
        assert outs[d["deposit_id"]]["mint_tx_hash"] == row(d["deposit_id"])["mint_tx_hash"]


@pytest.mark.parametrize("point", ["mint_after_store", "after_side_effect"])
def test_kill_between_sign_broadcast_and_commit_never_mints_twice(pipeline, point):
    """SIGKILL after the signed tx is stored but before it is broadcast, or
    after broadcast (and mining) but before the runtime's DB commit: the
    restart must re-send the stored bytes (or find them mined), never sign a
    second mint, and leave no nonce gap."""
    deps = [pinned_deposit() for _ in range(4)]
    insert_pinned_rows(deps)
    pipeline.produce(deps)
    victim = pipeline.start("victim", ZL_FAULT_POINT=point, ZL_FAULT_AFTER="1", ZL_BATCH_SIZE_MAX="1")
    victim.wait(timeout=60)
    assert victim.returncode == -9, pipeline.log("victim")[-2000:]
    pipeline.start("after")
    wait_until(all_in_state([d["deposit_id"] for d in deps], "minted"), 60, "all minted after restart")
    assert_minted_once(pipeline, deps)


def test_two_workers_sharing_a_signer_never_collide_on_a_nonce(pipeline):
    """Two copies of the stage with one key: every nonce is handed out once
    (FOR UPDATE on the signer's row), all transactions are mined, and the
    nonces are contiguous."""
    deps = [pinned_deposit() for _ in range(60)]
    insert_pinned_rows(deps)
    pipeline.produce(deps)
    pipeline.start("a")
    pipeline.start("b")
    wait_until(all_in_state([d["deposit_id"] for d in deps], "minted"), 100, "all minted by two workers")
    assert_minted_once(pipeline, deps)


def test_refused_mint_goes_to_dlq_and_its_nonce_is_filled(pipeline):
    """A tx the node refuses for good (here: a gas limit below the 21000 intrinsic gas)
    would leave its nonce unused and block every later mint: the deposit goes
    to the DLQ as permanent, the nonce is filled by a 0-value self-send, and
    a later deposit is minted at the next nonce."""
    bad = pinned_deposit()
    insert_pinned_rows([bad])
    pipeline.produce([bad])
    w = pipeline.start("bad", ZL_MINT_GAS_LIMIT="20000")
    wait_until(lambda: row(bad["deposit_id"]).get("state") == "dead", 60, "refused mint dead-lettered")
    wait_until(lambda: [t["status"] for t in signer_txs(pipeline.signer)] == ["mined"], 30, "filler mined")
    txs = signer_txs(pipeline.signer)
    assert txs[0]["purpose"] == "filler" and txs[0]["receipt_status"] == 1
    assert pipeline.dlq_keys() == [bad["deposit_id"]]
    assert pipeline.chain.owner_of(pipeline.chain.nft, token_id(bad["deposit_id"])) == ""
    w.kill()
    w.wait(timeout=10)
    good = pinned_deposit()
    insert_pinned_rows([good])
    pipeline.produce([good])
    pipeline.start("good")
    wait_until(lambda: row(good["deposit_id"]).get("state") == "minted", 60, "later deposit minted")
    assert [t["nonce"] for t in signer_txs(pipeline.signer)] == [0, 1]
    assert pipeline.chain.nonce(pipeline.signer) == 2


def test_mint_without_minter_role_is_permanent_and_uses_no_nonce(pipeline, tmp_path):
    """A revert for a reason other than "token exists" (here the signer lacks
    MINTER_ROLE) is permanent: DLQ at once, and since the estimate already
    reverts, no nonce is spent."""
    _, addr, keyfile = pipeline.chain.new_signer(tmp_path, pipeline.chain.nft, minter=False)
    d = pinned_deposit()
    insert_pinned_rows([d])
    pipeline.produce([d])
    pipeline.start("nominter", ZL_SIGNER_KEY_FILE=str(keyfile))
    wait_until(lambda: row(d["deposit_id"]).get("state") == "dead", 60, "dead-lettered")
    assert pipeline.dlq_keys() == [d["deposit_id"]]
    assert signer_txs(addr) == []
    assert pipeline.chain.nonce(addr) == 0


def test_stuck_mint_is_replaced_with_higher_fees_and_minted_once(pipeline):
    """With automine off the mint sits in the mempool: after ZL_MINT_STUCK_MS
    it is re-signed at the same nonce with both fees raised; once a block is
    mined exactly one tx at that nonce lands and the token is minted once."""
    chain = pipeline.chain
    d = pinned_deposit()
    insert_pinned_rows([d])
    chain.rpc("evm_setAutomine", "false")
    try:
        pipeline.produce([d])
        pipeline.start("stuck", ZL_MINT_STUCK_MS="1500", ZL_MINT_RECEIPT_WAIT_MS="300")
        wait_until(lambda: any(t["nhashes"] >= 2 for t in signer_txs(pipeline.signer)), 60, "a fee bump")
    finally:
        chain.rpc("evm_setAutomine", "true")
    chain.rpc("evm_mine")
    wait_until(lambda: row(d["deposit_id"]).get("state") == "minted", 60, "minted after mining")
    assert_minted_once(pipeline, [d])

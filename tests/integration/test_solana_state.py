"""Solana deposits in the state table and the runtime (issue 22; migration
019, docs/architecture.md "Solana").

A Solana deposit's id is "<cluster>:<signature>:<instruction>". Its row has
no chain_id, log_index or block_hash; one CHECK per family keeps either
family's row from holding the other's shapes. The runtime treats a Solana
message like any other: it acts on the row's facts and refuses a message
that says something else about the deposit. On the code before this change
every test here fails: the table refused any Solana row (chain_id NOT NULL,
0x-only tx_hash) and the decoder any Solana message.
"""
import copy

import pytest

from runtime_helpers import Pipeline, effects, insert_rows, psql, states, wait_until
from zlharness.stage import StagePipeline
from zlharness.env import HarnessError
from zlharness.stage import b58, new_deposit, new_sol_deposit, new_stage_pipeline


def refused(deposit: dict) -> bool:
    try:
        insert_rows([deposit])
    except HarnessError as e:
        assert "deposits_family_check" in str(e) or "violates" in str(e), e
        return True
    return False


def test_a_solana_row_is_stored_and_the_other_familys_shapes_are_refused():
    good = new_sol_deposit(place="3.1")
    insert_rows([good])
    (row,) = psql("SELECT chain_id IS NULL, log_index IS NULL, block_hash IS NULL, tx_hash FROM deposits"
                  " WHERE deposit_id = :'v1'", good["deposit_id"])
    assert row == ["t", "t", "t", good["tx_hash"]]

    evm_hash = "0x" + "ab" * 32
    bad = {
        "an EVM hash in a Solana row": dict(new_sol_deposit(), tx_hash=evm_hash),
        "a Solana row with a log index": dict(new_sol_deposit(), log_index=0),
        "a Solana row with a block hash": dict(new_sol_deposit(), block_hash=evm_hash),
        "an id whose signature is not the row's": dict(new_sol_deposit(), tx_hash=b58(b"\x07" * 64)),
        "a cluster of digits": None,
        "an instruction of three parts": None,
        "an EVM row without its log index": dict(new_deposit(), log_index=None),
        "an EVM row without its chain id (read as Solana)": dict(new_deposit(), chain_id=None, log_index=None,
                                                               block_hash=None),
    }
    d = new_sol_deposit()
    bad["a cluster of digits"] = dict(d, deposit_id="56:" + d["deposit_id"].split(":", 1)[1])
    d = new_sol_deposit()
    bad["an instruction of three parts"] = dict(d, deposit_id=d["deposit_id"] + ".1.2")
    accepted = [name for name, dep in bad.items() if not refused(dep)]
    assert accepted == []

    evm = new_deposit()
    insert_rows([evm])  # the EVM family is checked as before
    assert states([evm["deposit_id"], good["deposit_id"]]) == {evm["deposit_id"]: "detected",
                                                               good["deposit_id"]: "detected"}


@pytest.fixture
def pipeline(tmp_path):
    p = new_stage_pipeline(Pipeline, tmp_path, "passthrough", ZL_BATCH_SIZE_MAX="10")
    yield p
    p.stop_all()


def test_the_runtime_moves_solana_deposits_beside_evm_ones_and_refuses_a_forged_one(pipeline):
    """Both families through one stage: each row moved once, the events on
    the output in their own family's form; a Solana event whose amount is
    not its row's is poison naming the field, the row untouched."""
    sol = [new_sol_deposit(user_id=f"s{i}") for i in range(5)]
    evm = [new_deposit(user_id=f"e{i}") for i in range(5)]
    forged_row = new_sol_deposit(user_id="victim")
    insert_rows(sol + evm + [forged_row])
    forged = copy.deepcopy(forged_row)
    forged["amount"] = "999999999"
    pipeline.start("w1")
    pipeline.produce(sol + evm + [forged])
    ids = [d["deposit_id"] for d in sol + evm]
    wait_until(lambda: effects(ids) == {i: 1 for i in ids}, 60, "every deposit handled once")
    wait_until(lambda: pipeline.dlq_keys() == [forged_row["deposit_id"]], 60, "the forgery dead-lettered")
    (letter,) = pipeline.dlq_messages()
    assert letter["headers"]["zl-dlq-error-class"] == "poison"
    assert "field amount differs" in letter["headers"]["zl-dlq-error"]
    assert states([forged_row["deposit_id"]]) == {forged_row["deposit_id"]: "detected"}
    assert effects([forged_row["deposit_id"]]) == {}

    # Effects commit before the events are produced: the events are waited for.
    out = wait_until(lambda: (lambda o: o if set(ids) <= set(o) else None)(
        {e["deposit_id"]: e for e in pipeline.outputs()}), 30, "every output event")
    for d in sol:
        e = out[d["deposit_id"]]
        assert (e["chain"], e["tx_hash"], e["instruction"]) == (d["chain"], d["tx_hash"], d["instruction"])
        assert "chain_id" not in e and "block_hash" not in e
    for d in evm:
        assert out[d["deposit_id"]]["chain_id"] == d["chain_id"]


class Verify(StagePipeline):
    STAGE = "verify"
    IN = "deposits.detected"
    OUT = "deposits.verified"
    BINARY = "verify"


def test_a_solana_deposit_at_a_verify_without_solana_is_poison_and_the_partition_goes_on(tmp_path):
    """A verify that knows only an EVM chain cannot judge a Solana deposit:
    poison with the reason, never a blocked partition or a crash."""
    p = new_stage_pipeline(Verify, tmp_path, "verify", letter="s", partitions=1)
    try:
        sol = new_sol_deposit()
        insert_rows([sol])
        p.start("v1", ZL_RPC_URLS="http://127.0.0.1:9", ZL_TOKEN_ADDRESS="0x" + "11" * 20)
        p.produce([sol])
        wait_until(lambda: p.dlq_keys() == [sol["deposit_id"]], 60, "dead-lettered")
        (m,) = p.dlq_messages()
        assert m["headers"]["zl-dlq-error-class"] == "poison"
        assert "ZL_SOLANA_CLUSTER unset" in m["headers"]["zl-dlq-error"]
        # The deposit is real: its row waits as it is, for a verify that
        # takes Solana (the sweeper publishes it again), never lost.
        assert states([sol["deposit_id"]]) == {sol["deposit_id"]: "detected"}
    finally:
        p.stop_all()


def test_two_solana_deposits_of_one_transaction_are_pinned_in_one_batch_each_its_own(tmp_path):
    """Guards against two deposits of one Solana transaction (same
    signature, instructions 0 and 1) colliding in ipfs-upload's batch: Kubo's
    answer names each file of a batch, and a name made of the signature and
    the EVM log index (0 for both) was one name for two documents ("kubo add
    answer names one object twice", seen in the demo)."""
    from ipfs_helpers import IMAGE_FILE, IpfsPipeline
    from zlharness.env import need_env
    first = new_sol_deposit(place="0")
    second = dict(new_sol_deposit(place="1"), tx_hash=first["tx_hash"])
    second["deposit_id"] = f"{second['chain']}:{first['tx_hash']}:1"
    deps = [first, second]
    insert_rows(deps)
    psql("UPDATE deposits SET state = 'verified', confirmations = 0 WHERE deposit_id = ANY(:'v1'::text[])",
         "{" + ",".join(d["deposit_id"] for d in deps) + "}")
    verified = [dict(d, schema="zl.deposits.verified/v1", confirmations=0) for d in deps]
    p = new_stage_pipeline(IpfsPipeline, tmp_path, "ipfs-upload", letter="s", partitions=1, ZL_BATCH_SIZE_MAX="10",
                           ZL_BATCH_FILL_MS="500", ZL_IPFS_PROVIDERS=f"kubo={need_env('ZL_IPFS_API_URL')}",
                           ZL_IPFS_GATEWAY_URLS=need_env("ZL_IPFS_GATEWAY_URLS").split(",")[0],
                           ZL_NFT_IMAGE_FILE=str(IMAGE_FILE))
    try:
        p.produce(verified)
        p.start("w1")
        ids = [d["deposit_id"] for d in deps]
        wait_until(lambda: states(ids) == {i: "pinned" for i in ids}, 60, "both pinned", )
        cids = psql("SELECT metadata_cid FROM deposits WHERE deposit_id = ANY(:'v1'::text[])", "{" + ",".join(ids) + "}")
        assert len({c[0] for c in cids}) == 2, cids
        assert p.dlq_keys() == []
    finally:
        p.stop_all()

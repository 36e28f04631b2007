"""The mint stage's pool of signer keys (issue 19, common/signer_pool.h):
each copy leases a key of its own through signer_leases, a copy with no free
key waits not ready, a dead copy's key is taken over after its lease expires
and its stored transaction finished by the new holder, and every key's
balance is a gauge.
"""
import time

import pytest

from mint_helpers import (chain, insert_pinned_rows, new_pipeline, pinned_deposit, row, signer_txs,  # noqa: F401
                          token_id)
from runtime_helpers import psql, wait_until
from zlharness.chain import rpc_batch

# Short leases so a takeover happens within the test's time.
LEASE = {"ZL_SIGNER_LEASE_MS": "3000", "ZL_SIGNER_LEASE_RENEW_MS": "500", "ZL_SIGNER_BALANCE_MS": "300"}


def pool_pipeline(tmp_path, chain, nkeys: int, **extra: str):
    """A mint pipeline whose signer is a pool of nkeys fresh funded minter
    keys (ZL_SIGNER_KEY_FILES) instead of ZL_SIGNER_KEY_FILE."""
    p = new_pipeline(tmp_path, chain, **LEASE, **extra)
    del p.env["ZL_SIGNER_KEY_FILE"]
    keys = [chain.new_signer(tmp_path, chain.nft) for _ in range(nkeys)]
    p.env["ZL_SIGNER_KEY_FILES"] = ",".join(str(k[2]) for k in keys)
    p.signers = [k[1] for k in keys]
    return p


def leases(signers: list[str]) -> dict[str, tuple[str, bool, int]]:
    """signer -> (holder, live, takeovers) for the pool's lease rows."""
    rows = psql("SELECT signer, holder, expires_at > now(), takeovers FROM signer_leases"
                " WHERE signer = ANY (:'v1'::text[])", "{" + ",".join(signers) + "}")
    return {r[0]: (r[1], r[2] == "t", int(r[3])) for r in rows}


def leased_signer(p, name: str) -> str:
    """The signer a copy's metrics say it holds (zl_signer_leased)."""
    for line in p.metrics(name).splitlines():
        if line.startswith("zl_signer_leased{"):
            return line.split('signer="')[1].split('"')[0]
    return ""


def senders(url: str, hashes: list[str]) -> list[str]:
    """The chain's `from` of each transaction."""
    txs = rpc_batch(url, [("eth_getTransactionByHash", [h]) for h in hashes])
    return [t["from"].lower() for t in txs]


def mined(signers: list[str]) -> list[tuple[str, str]]:
    rows = psql("SELECT signer, mined_hash FROM signer_txs WHERE signer = ANY (:'v1'::text[]) AND status = 'mined'",
                "{" + ",".join(signers) + "}")
    return [(r[0], r[1]) for r in rows]


def gauge(text: str, name: str, signer: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(f'{name}{{signer="{signer}"}}'):
            return float(line.split()[-1])
    return None


@pytest.fixture
def pool2(tmp_path, chain):
    p = pool_pipeline(tmp_path, chain, 2)
    yield p
    p.stop_all()


def test_two_copies_lease_two_signers_and_a_third_waits_not_ready(pool2):
    """Guards against copies sharing a key of a pool (they would queue on one
    nonce row) and against a copy without a key minting anyway: two copies
    hold two different leases, every mined transaction was sent (on the
    chain) by the signer its row names, each copy's only; a third copy is not
    ready and signs nothing until a key is given back."""
    p = pool2
    deps = [pinned_deposit() for _ in range(40)]
    insert_pinned_rows(deps)
    p.start("a")
    p.start("b")
    wait_until(lambda: leased_signer(p, "a") != "" and leased_signer(p, "b") != "", 30, "both copies leased")
    held = {leased_signer(p, "a"), leased_signer(p, "b")}
    assert held == set(p.signers), f"copies hold {held}, the pool is {p.signers}"
    ls = leases(p.signers)
    assert len({h for h, _, _ in ls.values()}) == 2 and all(live for _, live, _ in ls.values()), ls

    p.start("c")
    wait_until(lambda: "every signer key is leased to another copy" in p.log("c"), 30, "third copy waiting")
    assert p.ready("c") == 503, "a copy without a key must not be ready"

    p.produce(deps)
    ids = [d["deposit_id"] for d in deps]
    wait_until(lambda: all(row(i).get("state") == "minted" for i in ids), 120, "all minted", interval_s=1)
    assert p.ready("c") == 503
    assert "signed and stored" not in p.log("c")
    txs = mined(p.signers)
    assert txs, "nothing was mined"
    assert senders(p.chain.url, [h for _, h in txs]) == [s for s, _ in txs], "a tx was sent by another signer"
    for name in ("a", "b"):
        mine = leased_signer(p, name)
        assert f'"address":"{[s for s in p.signers if s != mine][0]}"' not in p.log(name)
    # Still one holder per key after the work (no copy took the other's).
    assert leases(p.signers) == ls | {s: (ls[s][0], True, 0) for s in ls}

    # A copy stopped cleanly gives its key back: the third takes it at once.
    freed = leased_signer(p, "a")
    p.procs[0].terminate()
    p.procs[0].wait(timeout=30)
    wait_until(lambda: p.ready("c") == 200, 30, "third copy ready with the freed key")
    assert leased_signer(p, "c") == freed


def test_balance_gauge_is_each_signers_native_balance(pool2):
    """Guards against a signer running out of gas money unseen: every key of
    the pool has zl_signer_balance_ether, equal to the chain's balance, and
    the low-water mark is exported beside it."""
    p = pool2
    p.start("a", ZL_SIGNER_BALANCE_LOW_GWEI="2000000000")
    wait_until(lambda: leased_signer(p, "a") != "", 30, "leased")
    p.chain.rpc("anvil_setBalance", p.signers[1], hex(1_500_000_000_000_000_000))
    wait_until(lambda: gauge(p.metrics("a"), "zl_signer_balance_ether", p.signers[1]) == 1.5, 20, "balance read")
    text = p.metrics("a")
    assert gauge(text, "zl_signer_balance_ether", p.signers[0]) == pytest.approx(1000.0)
    assert "zl_signer_balance_low_ether 2" in text, text
    key = open(p.env["ZL_SIGNER_KEY_FILES"].split(",")[0]).read().strip()
    assert key[2:] not in p.log("a") and key[2:] not in text, "a key was logged"


def test_killed_copys_lease_is_taken_over_and_its_stored_tx_finished(tmp_path, chain):
    """Guards against a dead copy's key staying unusable, or its stored
    (signed, never broadcast) mint being signed again: a pool of one key,
    the holder SIGKILLed right after storing a mint; a new copy is not ready
    while the dead copy's lease is live, takes the key once it expires, and
    finishes the stored transaction at its nonce (one tx, no second
    signature)."""
    p = pool_pipeline(tmp_path, chain, 1, ZL_MINT_BATCH_MAX="1")
    try:
        dep = pinned_deposit()
        insert_pinned_rows([dep])
        p.produce([dep])
        victim = p.start("victim", ZL_FAULT_POINT="mint_after_store", ZL_FAULT_AFTER="1", ZL_BATCH_SIZE_MAX="1")
        victim.wait(timeout=60)
        assert victim.returncode == -9, p.log("victim")[-2000:]
        stored = signer_txs(p.signers[0])
        assert [t["status"] for t in stored] == ["pending"], stored
        killed_at = time.monotonic()
        p.start("heir")
        wait_until(lambda: "every signer key is leased to another copy" in p.log("heir"), 20, "heir waiting")
        assert p.ready("heir") == 503
        wait_until(lambda: row(dep["deposit_id"]).get("state") == "minted", 60, "minted by the heir")
        assert time.monotonic() - killed_at >= 1.0
        txs = signer_txs(p.signers[0])
        assert [(t["nonce"], t["status"], t["nhashes"]) for t in txs] == [(0, "mined", 1)], txs
        assert p.chain.owner_of(p.chain.nft, token_id(dep["deposit_id"])) == dep["from"]
        holder, live, takeovers = leases(p.signers)[p.signers[0]]
        assert live and takeovers == 1 and holder in p.log("heir")
    finally:
        p.stop_all()


def test_a_copy_whose_lease_was_taken_cannot_store_a_signature(pool2):
    """Guards against a copy that lost its lease (a pause longer than the
    lease) signing at a nonce its successor also uses: the database refuses
    any new signature for a signer whose live lease is another holder's."""
    p = pool2
    s = p.signers[0]
    psql("INSERT INTO signer_leases (signer, holder, expires_at) VALUES (:'v1', 'someone-else',"
         " now() + interval '1 minute')", s)
    err = psql("SELECT set_config('zl.signer_holder', 'me', false);"
               " INSERT INTO signer_nonces (chain_id, signer, next_nonce) VALUES (31337, :'v1', 0)", s, check=False)
    assert "leased to another mint copy" in str(err), err
    psql("UPDATE signer_leases SET expires_at = now() WHERE signer = :'v1'", s)
    psql("INSERT INTO signer_nonces (chain_id, signer, next_nonce) VALUES (31337, :'v1', 0)", s)

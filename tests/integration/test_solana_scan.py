"""detect's scan of a Solana deposit account (common/solana_scan.c, through
tests/zl-sol-rpc) against a real solana-test-validator (agave 3.0.12,
started on free loopback ports, stopped by pid), with transactions built by
the C code (tests/zl-sol-tx):

  - an account paid before anyone scanned it (registered late) gets every
    USDT transfer into it, on SPL Token and Token-2022, and nothing else: not
    the other mint's, not the failed transaction's, not the transfer to
    another account in the same transaction; read across listing pages;
  - the cursor: a second scan reads nothing again, a new payment alone;
  - a backlog bigger than the scan's room is read oldest first over several
    scans, each transfer once;
  - a lying endpoint (an HTTP proxy here that raises amounts) beside an
    honest one: with a quorum of two nothing is read, and nothing invented;
  - at finalized commitment a transfer is read only once finalized, and
    verified only then;
  - verify: a genuine deposit is verified; a forged amount, place or
    destination, another mint's transfer and a failed transaction's are
    mismatches; a signature the chain does not have is not verified (yet);
    an id of another form is poison.

Run by make test's Solana tier (tests/run-all), which builds the validator
where it is missing; run alone, skipped where it is not built
(deploy/local/deps solana), unless ZL_SOLANA_REQUIRED=1.
"""
import json
import os
import subprocess
import time

import pytest

from zlharness.solana import Chain, RpcProxy, TOKEN, TOKEN_2022, tool  # noqa: F401
from test_solana_validator import VALIDATOR, ata_of, funded, sent, validator, with_seed  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(not VALIDATOR.exists() and os.environ.get("ZL_SOLANA_REQUIRED") != "1",
                                reason=f"{VALIDATOR} not built (deploy/local/deps solana)")

FINALIZE_S = 60


def scan(v, **req) -> dict:
    req.setdefault("urls", v.url)
    out = subprocess.run([str(tool("zl-sol-rpc"))], input=json.dumps(req), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def verify(v, ch, deposit_id: str, amount: str, destination: str | None = None, **kw) -> dict:
    req = dict({"op": "verify", "urls": v.url, "mint": ch.usdt, "cluster": "localnet", "commitment": "confirmed",
                "deposit_id": deposit_id, "destination": destination or ch.atas[ch.b], "amount": amount}, **kw)
    out = subprocess.run([str(tool("zl-sol-rpc"))], input=json.dumps(req), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def ids(got: dict) -> list[tuple[str, str]]:
    return [(d["deposit_id"], d["amount"]) for d in got["deposits"]]


@pytest.mark.parametrize("program", [TOKEN, TOKEN_2022], ids=["spl-token", "token-2022"])
def test_an_account_paid_before_it_was_scanned_gets_every_transfer_once(validator, program):
    """Guards against a deposit paid before its address was registered never
    being credited, and against counting what is not a USDT deposit into
    this account: its scan starts with no cursor and the node lists the
    account's whole history; pages of 2 signatures make the listing page."""
    ch = Chain(validator, program)
    b = ch.b
    s1 = ch.pay(ch.tc(b, 12_345_678))
    s2 = ch.pay({"token": "transfer", "program": program, "mint": ch.usdt, "source": ch.atas[ch.a],
                 "dest": ch.atas[b], "owner": ch.a, "amount": 5_000_000})
    s3 = ch.pay(ch.tc(ch.c, 7), ch.tc(b, 9_000_000))             # index 1 only is ours
    ch.pay(ch.tc(b, 4_000_000, other=True))                       # another mint, another account
    ch.failed(ch.tc(b, 10 ** 15))                                 # more than the payer holds: failed
    s6 = ch.pay(ch.tc(b, 1), ch.tc(b, 2))
    want = [(f"localnet:{s1}:0", "12345678"), (f"localnet:{s2}:0", "5000000"), (f"localnet:{s3}:1", "9000000"),
            (f"localnet:{s6}:0", "1"), (f"localnet:{s6}:1", "2")]
    got = scan(validator, **ch.deposit_req(page_limit=2, tx_batch=2))
    assert got["class"] == "ok" and not got["more"], got
    assert ids(got) == want
    assert got["cursor"] == s6 and all(d["destination"] == ch.atas[b] for d in got["deposits"])
    again = scan(validator, **ch.deposit_req(cursor=got["cursor"], page_limit=2))
    assert again["class"] == "ok" and again["deposits"] == [] and again["cursor"] == s6, again
    s7 = ch.pay(ch.tc(b, 3_000_000))
    new = scan(validator, **ch.deposit_req(cursor=s6, page_limit=2))
    assert ids(new) == [(f"localnet:{s7}:0", "3000000")] and new["cursor"] == s7, new


def test_a_backlog_bigger_than_the_room_is_read_oldest_first_over_several_scans(validator):
    """Guards against a long history that does not fit in one scan being cut
    (the newest read, the oldest lost) or read twice: each scan reads the
    oldest it has room for and says there is more."""
    ch = Chain(validator, TOKEN)
    sigs = [ch.pay(ch.tc(ch.b, 100 + i)) for i in range(7)]
    cursor, seen, scans = "", [], 0
    while True:
        got = scan(validator, **ch.deposit_req(cursor=cursor, page_limit=2, sigs_max=3, tx_batch=2))
        assert got["class"] == "ok", got
        scans += 1
        seen += ids(got)
        cursor = got["cursor"]
        if not got["more"]:
            break
        assert scans < 10
    assert seen == [(f"localnet:{s}:0", str(100 + i)) for i, s in enumerate(sigs)]
    assert scans >= 3 and cursor == sigs[-1]


class LyingProxy(RpcProxy):
    """An RPC endpoint that forwards to the validator and lies about
    getTransaction (zlharness.solana.RpcProxy's lying modes), started."""

    def __init__(self, upstream: str, mode: str = "raise", swap_to: str = ""):
        super().__init__(upstream, mode, swap_to)
        self.start()


def test_a_lying_endpoint_beside_an_honest_one_reads_nothing_and_invents_nothing(validator):
    """Guards against one endpoint inventing deposits: the transaction's
    content must be equal on a quorum of endpoints. With the liar first and
    a quorum of two the scan reads nothing and keeps its cursor; alone with
    the liar (quorum one) it would read the raised amount, which is why
    detect asks two."""
    ch = Chain(validator, TOKEN)
    s1 = ch.pay(ch.tc(ch.b, 5_000_000))
    liar = LyingProxy(validator.url)
    try:
        both = scan(validator, **ch.deposit_req(urls=f"{liar.url},{validator.url}", quorum=2))
        assert both["class"] == "transient" and both["deposits"] == [] and both["cursor"] == "", both
        alone = scan(validator, **ch.deposit_req(urls=liar.url, quorum=1))
        assert ids(alone) == [(f"localnet:{s1}:0", "95000000")], alone   # what a quorum of one would believe
    finally:
        liar.close()
    honest = scan(validator, **ch.deposit_req(urls=f"{validator.url},{validator.url}", quorum=2))
    assert ids(honest) == [(f"localnet:{s1}:0", "5000000")], honest


def test_an_answer_for_another_transaction_is_not_read_as_the_one_asked(validator):
    """Guards against a node answering getTransaction with another
    transaction (one of ours, so every field is genuine): the scan and
    verify check the answer's signature is the one asked, and read nothing
    from it."""
    ch = Chain(validator, TOKEN)
    s1 = ch.pay(ch.tc(ch.b, 1_000_000))
    s2 = ch.pay(ch.tc(ch.b, 2_000_000))
    liar = LyingProxy(validator.url, mode="swap", swap_to=s2)
    try:
        got = scan(validator, **ch.deposit_req(urls=liar.url))
        assert got["class"] == "transient" and "another transaction" in got["error"], got
        assert got["deposits"] == [] and got["cursor"] == "", got   # s1 (asked first) was answered with s2
        v = verify(validator, ch, f"localnet:{s1}:0", "2000000", urls=liar.url)
        assert v["class"] == "transient" and "another transaction" in v["error"], v
    finally:
        liar.close()


def test_at_finalized_commitment_a_transfer_is_read_once_finalized(validator):
    """Guards against detect reading what the cluster may still take back:
    at finalized (detect's default) a confirmed-only transfer is not listed,
    and is read once the cluster finalizes it."""
    ch = Chain(validator, TOKEN)
    s1 = ch.pay(ch.tc(ch.b, 6_000_000))
    first = scan(validator, **ch.deposit_req(commitment="finalized"))
    status = validator.rpc("getSignatureStatuses", [s1])["value"][0]
    if status.get("confirmationStatus") != "finalized":
        assert first["deposits"] == [] and first["cursor"] == "", first
    deadline = time.monotonic() + FINALIZE_S
    while True:
        got = scan(validator, **ch.deposit_req(commitment="finalized"))
        if got["deposits"]:
            break
        assert time.monotonic() < deadline, f"not finalized in {FINALIZE_S}s"
        time.sleep(1)
    assert ids(got) == [(f"localnet:{s1}:0", "6000000")] and got["cursor"] == s1
    assert verify(validator, ch, f"localnet:{s1}:0", "6000000", commitment="finalized")["verdict"] == "verified"


def test_verify_credits_only_what_the_chain_moved(validator):
    """Guards against a forged or stale event being credited: verify reads
    the transaction itself and accepts only a USDT transfer of the claimed
    amount into the claimed account at the claimed instruction."""
    ch = Chain(validator, TOKEN_2022)
    b = ch.b
    s1 = ch.pay(ch.tc(ch.c, 7), ch.tc(b, 9_000_000))
    s_other = ch.pay(ch.tc(b, 4_000_000, other=True))
    s_failed = ch.failed(ch.tc(b, 10 ** 15))
    ok = verify(validator, ch, f"localnet:{s1}:1", "9000000")
    assert (ok["class"], ok["verdict"]) == ("ok", "verified") and ok["slot"] > 0, ok
    forged = {
        "amount": (f"localnet:{s1}:1", "90000000", None),
        "place": (f"localnet:{s1}:0", "7", None),          # that one went to c
        "destination": (f"localnet:{s1}:1", "9000000", ch.atas[ch.c]),  # it went to b
        "other mint": (f"localnet:{s_other}:0", "4000000", None),
        "failed": (f"localnet:{s_failed}:0", str(10 ** 15), None),
    }
    for what, (dep, amount, dest) in forged.items():
        got = verify(validator, ch, dep, amount, dest)
        assert (got["class"], got["verdict"]) == ("ok", "mismatch"), (what, got)
    unknown = "1" * 64
    got = verify(validator, ch, f"localnet:{unknown}:0", "1")
    assert (got["class"], got["verdict"]) == ("ok", "not_yet"), got
    for bad in (f"mainnet-beta:{s1}:1", f"localnet:{s1}", f"localnet:{s1}:1:2", "localnet:0xabc:1"):
        got = verify(validator, ch, bad, "9000000")
        assert got["class"] == "poison", (bad, got)

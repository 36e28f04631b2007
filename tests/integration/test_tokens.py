"""Token decimals against the real PostgreSQL and Kafka: the credit stage's
ZL_TOKEN_DECIMALS is checked against the decimals detect read from the chain
(token_decimals), so a wrong setting can never credit eggs off by a power of
ten. A difference known at start refuses to start; one recorded after start
pauses the stage (an outage: nothing credited, nothing dead-lettered).

The module works in a database of its own (test_credit's db fixture, made for
this module and dropped after it).
"""
import time
import uuid

from credit_helpers import expected_eggs, insert_minted_rows, minted_deposit, wait_for
# The credit tests' own database and pipeline fixtures (pytest finds them by name).
from test_credit import db, pipe  # noqa: F401

TOKEN6 = "0x" + "6d" * 20
TOKEN18 = "0x" + "1e" * 20
RATE = "2.5"


def record_decimals(p, chain_id, token: str, decimals: int) -> None:
    """What detect writes after reading decimals() from the chain."""
    p.sql("INSERT INTO token_decimals (chain_id, token, decimals) VALUES (:'v1', :'v2', :'v3')"
          " ON CONFLICT (chain_id, token) DO UPDATE SET decimals = EXCLUDED.decimals",
          str(chain_id), token, str(decimals))


def minted(p, token: str, amounts):
    user = f"u-{uuid.uuid4().hex[:8]}"
    deps = [minted_deposit(user, a, token) for a in amounts]
    insert_minted_rows(p.dsn, deps)
    p.sql("INSERT INTO credit_rates (token, rate, effective_from) VALUES (:'v1', :'v2'::numeric,"
          " now() - interval '1 s') ON CONFLICT DO NOTHING", token, RATE)
    return deps


def test_configured_decimals_differing_from_the_chain_refuses_to_start(pipe):
    """Guards against ZL_TOKEN_DECIMALS being stored and never read: a token
    the chain says has 6 decimals, credited with 18, would give every user
    10^12 times too few eggs. The stage must not start, and must say which
    token and both values."""
    chain_id = minted_deposit("u", 1, TOKEN6)["chain_id"]
    record_decimals(pipe, chain_id, TOKEN6, 6)
    proc = pipe.start("w-wrong")  # ZL_TOKEN_DECIMALS defaults to 18
    try:
        rc = proc.wait(timeout=30)
    except Exception:
        rc = None
    log = pipe.log("w-wrong")
    assert rc is not None and rc != 0, f"credit started with ZL_TOKEN_DECIMALS=18 against 6 on chain:\n{log}"
    assert TOKEN6 in log, f"the refusal does not name the token:\n{log}"
    assert "6 decimals on the chain" in log and "ZL_TOKEN_DECIMALS is 18" in log, log
    # The right setting starts and credits at 6 decimals.
    deps = minted(pipe, TOKEN6, [1_000_000, 1_234_567])
    ids = [d["deposit_id"] for d in deps]
    pipe.produce(deps)
    pipe.start("w-right", ZL_TOKEN_DECIMALS="6")
    wait_for(lambda: list(pipe.states(ids).values()).count("credited") == len(ids), 40, "credited at 6 decimals")
    for d in deps:
        eggs = pipe.sql("SELECT amount::text FROM ledger_entries WHERE deposit_id = :'v1' AND kind = 'user_credit'",
                        d["deposit_id"])
        assert int(eggs[0][0]) == expected_eggs(int(d["amount"]), RATE, 6)
    record_decimals(pipe, chain_id, TOKEN6, 18)  # leave the module's record as the other tests expect


def test_difference_recorded_after_start_pauses_without_crediting(pipe):
    """Guards against a stage that checked only at start: detect records a
    token's decimals after credit started (a new token), and they differ
    from the setting. Its deposits stay minted (no wrong credit, no DLQ)
    and the log names the token and both values."""
    proc = pipe.start("w1")  # 18
    wait_for(lambda: "credit stage ready" in pipe.log("w1"), 30, "credit past its start-up check")
    deps = minted(pipe, TOKEN18, [10**18])
    chain_id = deps[0]["chain_id"]
    record_decimals(pipe, chain_id, TOKEN18, 8)
    pipe.produce(deps)
    wait_for(lambda: TOKEN18 in pipe.log("w1") and "8 decimals on the chain" in pipe.log("w1"), 30,
             "the pause naming the token")
    time.sleep(2)
    assert pipe.states([deps[0]["deposit_id"]])[deps[0]["deposit_id"]] == "minted"
    assert pipe.sql("SELECT count(*) FROM ledger_entries WHERE deposit_id = :'v1'", deps[0]["deposit_id"]) == [["0"]]
    assert pipe.dlq() == []
    assert proc.poll() is None, "a pause, not an exit"
    assert pipe.ready("w1") == 503, "paused: not ready"

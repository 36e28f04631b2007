#!/usr/bin/env python3
"""make chaos: the whole pipeline under seeded, randomized fault schedules,
with the books checked against the chain afterwards.

One pipeline (every service in .local/chaos, a folder of its own; contracts;
depositors; every stage with copies) runs SCHEDULES schedules one after
another. Each schedule has its own users and deposit addresses, makes its
deposits in waves while its faults fire, and is judged on its own:

  faults   SIGKILL of workers of every stage, then a restart; a Kafka restart
           and a PostgreSQL restart; RPC faults on the primary endpoint (500,
           429, -32005, stalls, garbage, dead) and a window with every
           endpoint down; the primary IPFS provider down; poison messages
           into every stage's input topic; forged messages (copies of real
           events of the schedule with one fact changed: amount, depositor,
           user, token or recipient) into every stage's input topic; the
           secondary endpoint lying for a while, once each way: every
           eth_getLogs answered [] (drop_logs), and the head 1,000 blocks
           ahead (head_ahead). The stages run with ZL_RPC_QUORUM=2 over the
           two endpoints, so a lie is held (detect keeps a range whose logs
           the endpoints disagree on) or outvoted (verify takes the k-th
           highest head). A reorg of the newest block at a
           wave of deposits (anvil's evm_snapshot and evm_revert, on anvil
           itself), its transactions re-sent and mined again in a block of
           another hash; one block, fewer than the pipeline's 2
           confirmations, so each re-included deposit is credited once
           (--no-reorgs leaves them out).
  cluster  --cluster (make chaos CLUSTER=1): Kafka is a three-broker
           cluster (replication 3, min.insync.replicas 2, unclean election
           off), and its one "Kafka restart" becomes the faults of a
           cluster, one at a time, each waiting for every replica to be in
           sync again before the next: SIGKILL of the broker that leads the
           most partitions of a stage's input topic, then its restart; a
           rolling restart of the three brokers; a reassignment of a stage's
           input topic under load (kafka-reassign-partitions, then the
           preferred leaders elected: every leader moves); the broker of a
           stage's group coordinator SIGKILLed, then restarted. Each logs
           what it did and how long the cluster took to recover, and the
           latency of the deposits in the pipeline meanwhile.
  notify   copies of the notify stage (issue 21) beside the others, SIGKILLed
           on draws of their own (a separate random stream: every other event
           of a seed stays as it was), sending signed webhooks to a receiver
           in this process.
  checks   on-chain deposits = credited + dead-lettered + reorged +
           below_minimum (none here: every deposit is 1..50 USDT); then,
           after zl-replay of every dead letter: every deposit credited; no
           deposit credited twice (one user entry per deposit, and each
           user's balance = the eggs of their transfers on chain); no token
           minted twice (one mint event per token id on chain); every token
           owned by its depositor (zl-audit); every dead letter has a reason,
           and every poison message reached a DLQ; every forged message
           reached a DLQ and none moved money or an NFT (the balance and
           owner checks above); every credit reached the webhook receiver
           with a valid signature under exactly one delivery id (the same id
           again is an at-least-once duplicate, counted apart).

  solana   --solana-deposits N (issue 22; where solana-test-validator is
           built): USDT deposits on Solana too, through the same stages,
           with faults drawn on a random stream of their own (every other
           event of a seed stays as it was): the Solana detect copy
           SIGKILLed; every Solana endpoint gone for a while (a dead one
           first in every stage's list, then a proxy in front of the
           validator, stopped); the validator process restarted on its
           ledger (after its first snapshot: it answers from that older
           state for a moment, a lagging node). Checked: Solana transfers on
           chain (read from the registered accounts' transactions) = rows
           credited + dead-lettered; after replay all credited, each once,
           each user's balance the eggs of their transfers, each receipt a
           Token-2022 mint of supply 1 held by the wallet that paid (read on
           chain, and by zl-audit).

The schedule is a pure function of (seed, deposits, duration, copies,
solana deposits): the seed is printed, and `--seed S --print-schedule` shows the schedule a seed
gives without running it.

Usage: tests/chaos/chaos.py [--seed S] [--schedules K] [--deposits N]
                            [--duration-s D] [--no-reorgs] [--cluster] [--solana-deposits N]
                            [--print-schedule] [--keep]
Exit: 0 every invariant held in every schedule, 1 one did not, 2 setup failed.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "lib"))  # the harness
from zlharness.env import HarnessError  # noqa: E402
from zlharness.kafka import kcat, keyed_headers, produce_bytes  # noqa: E402
from zlharness.jsonrpc import Rpc, RpcError  # noqa: E402
from zlharness.pipeline import STAGES, STATES, LocalPipeline, PipelineError  # noqa: E402
from zlharness.procs import free_port  # noqa: E402
from zlharness.rpc_fault_proxy import FaultProxy  # noqa: E402
from zlharness.solana import RpcProxy  # noqa: E402
from zlharness.solana_side import SolanaSide  # noqa: E402
from zlharness.services import (busiest_leader, group_coordinator, node_service, reassign_rotated,  # noqa: E402
                                wait_in_sync, wait_led_without)
from zlharness.tcp_proxy import TcpProxy  # noqa: E402
from zlharness.webhooks import WebhookReceiver  # noqa: E402

RPC_FAULTS = ["500", "429", "32005", "stall", "garbage", "dead"]
# How an endpoint lies (zlharness.rpc_fault_proxy): outvoted or held by the
# other endpoint, the stages run with ZL_RPC_QUORUM=2.
LIES = ["drop_logs", "head_ahead"]
# A reorg takes back this many of the newest blocks: fewer than the chaos
# pipeline's ZL_CONFIRMATIONS (2), so nothing in them was verified yet.
REORG_DEPTH_BLOCKS = 1
# How long a reorg pauses mining for transactions to take back.
REORG_WAIT_S = 8
# Each stage's input topic (detect reads the chain): where poison goes.
INPUT_TOPICS = {"verify": "zl.deposits.detected", "ipfs-upload": "zl.deposits.verified",
                "mint": "zl.nft.pinned", "credit": "zl.nft.minted"}
POISON = [b"not json at all", b'{"schema":"zl.deposits.detected/v1"}', b"\xff\xfe\x00binary", b"[]",
          b'{"deposit_id":"' + b"9" * 300 + b'"}']
# The facts a forgery changes (issue 17: a message is a notification, the
# row is the truth): each must be refused as poison with the row untouched.
FORGED_FIELDS = ["amount", "from", "user_id", "token", "to"]
FORGED_HEADER = "zl-chaos-forged"
# Real events a forgery may copy: the newest of each partition.
FORGE_SOURCE_PER_PARTITION = 20
FORGE_SOURCE_WAIT_S = 20
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
ZERO_TOPIC = "0x" + "0" * 64
# Waits, in seconds: a schedule's deposits to settle, a replay to finish.
SETTLE_TIMEOUT_S = 600
KCAT_TIMEOUT_S = 60
# notify: its copies (named notify-<i>) and how long the receiver waits for
# the last credits' webhooks once the rows are settled.
NOTIFY = "notify"
NOTIFY_SETTLE_S = 120
# Solana (--solana-deposits): its deposit waves, how long its endpoints stay
# away, how long a restart waits for the validator's first snapshot (one
# each 100 slots: before it, the test validator restarts from genesis
# without its SPL programs) and for its slot to pass the one it stopped at.
SOLANA_WAVES = (2, 4)
SOLANA_RPC_DOWN_S = (2.0, 6.0)
SOLANA_SNAPSHOT_WAIT_S = 120
SOLANA_CATCH_UP_S = 60
# Solana deposit accounts registered (one user each).
SOLANA_USERS = 4
# Cluster mode: the brokers (node ids 1..3) and how long a killed one stays down.
KAFKA_NODES = 3
BROKER_DOWN_S = (2.0, 8.0)


def log(msg: str) -> None:
    print(f"chaos: {msg}", flush=True)


@dataclass(frozen=True)
class Event:
    t: float          # seconds after the schedule starts
    kind: str         # kill | restart | rpc | rpc_all | ipfs_down | poison | forged | deposits | lie | reorg
    #                   solana: sol_deposits | sol_rpc_all | sol_restart
    #                   cluster mode: leader_kill | rolling_restart | reassign | coordinator_kill
    target: str       # worker name, service, proxy, topic set, or ""
    duration: float   # seconds the fault lasts (kill: until the restart)
    detail: str       # rpc fault mode, deposit count, ...


def make_schedule(seed: int, deposits: int, duration_s: float, copies: int, reorgs: bool = True,
                  cluster: bool = False, solana: int = 0) -> list[Event]:
    """The fault schedule of a seed. Pure: same arguments, same schedule.
    cluster: the Kafka restart becomes a cluster's faults; every other event
    is the one the seed gives without it."""
    rng = random.Random(seed)
    d = duration_s
    ev: list[Event] = []
    # Every stage is killed at least once, then a few more at random.
    kills = list(STAGES) + [rng.choice(STAGES) for _ in range(rng.randint(1, 4))]
    for stage in kills:
        copy = 0 if stage == "detect" else rng.randrange(copies)
        ev.append(Event(round(rng.uniform(0.05, 0.85) * d, 2), "kill", f"{stage}-{copy}",
                        round(rng.uniform(0.2, 4.0), 2), "SIGKILL, restart after"))
    kafka_t = round(rng.uniform(0.15, 0.35) * d, 2)
    if not cluster:
        ev.append(Event(kafka_t, "restart", "kafka", 0, "stop + start"))
    ev.append(Event(round(rng.uniform(0.5, 0.7) * d, 2), "restart", "postgres", 0, "stop + start"))
    # RPC faults on the primary, one after another (no overlap).
    t = rng.uniform(0.02, 0.1) * d
    for _ in range(rng.randint(2, 4)):
        dur = round(rng.uniform(2, 6), 2)
        ev.append(Event(round(t, 2), "rpc", "primary", dur, rng.choice(RPC_FAULTS)))
        t += dur + rng.uniform(1, 0.2 * d)
    ev.append(Event(round(rng.uniform(0.3, 0.8) * d, 2), "rpc_all", "primary+secondary",
                    round(rng.uniform(2, 5), 2), "dead"))
    ev.append(Event(round(rng.uniform(0.1, 0.7) * d, 2), "ipfs_down", "primary", round(rng.uniform(3, 12), 2),
                    "connection refused"))
    for _ in range(rng.randint(1, 2)):
        ev.append(Event(round(rng.uniform(0.05, 0.9) * d, 2), "poison", "every stage input", 0,
                        str(rng.randrange(len(POISON)))))
    # Deposits in waves during the faults.
    waves = rng.randint(4, 8)
    cuts = sorted(rng.sample(range(1, deposits), waves - 1)) if deposits > waves else []
    sizes = [b - a for a, b in zip([0] + cuts, cuts + [deposits])]
    for size in sizes:
        ev.append(Event(round(rng.uniform(0, 0.8) * d, 2), "deposits", "", 0, str(size)))
    # Forgeries last, so the draws above (and the schedules of earlier runs'
    # seeds) stay as they were. Late in the schedule, when events exist.
    for _ in range(rng.randint(1, 2)):
        ev.append(Event(round(rng.uniform(0.4, 0.9) * d, 2), "forged", "every stage input", 0,
                        FORGED_FIELDS[rng.randrange(len(FORGED_FIELDS))]))
    # Lies after the forgeries (same reason): the secondary lies, each way
    # once, one window after the other; the primary's own faults stay its own.
    t = rng.uniform(0.05, 0.3) * d
    for lie in rng.sample(LIES, len(LIES)):
        dur = round(rng.uniform(3, 0.25 * d), 2)
        ev.append(Event(round(t, 2), "lie", "secondary", dur, lie))
        t += dur + rng.uniform(1, 0.15 * d)
    # Reorgs last of all (same reason), unless left out (--no-reorgs): each
    # at a wave of deposits, so the blocks taken back hold some.
    if reorgs:
        waves_t = sorted(e.t for e in ev if e.kind == "deposits")
        for wt in rng.sample(waves_t, min(len(waves_t), rng.randint(1, 2))):
            ev.append(Event(wt, "reorg", "anvil", 0, str(REORG_DEPTH_BLOCKS)))
    # A cluster's faults after everything else (same reason), drawn only in
    # cluster mode: the first leader kill where the Kafka restart was.
    if cluster:
        kill_ts = [kafka_t] + [round(rng.uniform(0.05, 0.85) * d, 2) for _ in range(rng.randint(1, 2))]
        for t in kill_ts:
            stage = rng.choice(sorted(INPUT_TOPICS))
            ev.append(Event(t, "leader_kill", INPUT_TOPICS[stage], round(rng.uniform(*BROKER_DOWN_S), 2),
                            f"SIGKILL the leader of most of {stage}'s input, restart after"))
        ev.append(Event(round(rng.uniform(0.3, 0.6) * d, 2), "rolling_restart", "kafka", 0,
                        "each broker stopped and started, replicas in sync between"))
        stage = rng.choice(sorted(INPUT_TOPICS))
        ev.append(Event(round(rng.uniform(0.2, 0.8) * d, 2), "reassign", INPUT_TOPICS[stage], 0,
                        "replicas rotated, preferred leaders elected"))
        stage = rng.choice(sorted(INPUT_TOPICS))
        ev.append(Event(round(rng.uniform(0.1, 0.8) * d, 2), "coordinator_kill", f"zl-{stage}",
                    round(rng.uniform(*BROKER_DOWN_S), 2), "SIGKILL the group coordinator's broker, restart after"))
    # notify's kills on a random stream of their own, so they leave every
    # draw above (and so every older seed's schedule) as it was.
    nrng = random.Random(f"notify-{seed}")
    for _ in range(nrng.randint(1, 2)):
        ev.append(Event(round(nrng.uniform(0.05, 0.85) * d, 2), "kill", f"{NOTIFY}-{nrng.randrange(copies)}",
                        round(nrng.uniform(0.2, 4.0), 2), "SIGKILL, restart after"))
    # Solana's events on a stream of their own too (none without Solana).
    if solana > 0:
        srng = random.Random(f"solana-{seed}")
        waves = min(solana, srng.randint(*SOLANA_WAVES))
        cuts = sorted(srng.sample(range(1, solana), waves - 1)) if waves > 1 else []
        for size in [b - a for a, b in zip([0] + cuts, cuts + [solana])]:
            ev.append(Event(round(srng.uniform(0, 0.7) * d, 2), "sol_deposits", "", 0, str(size)))
        ev.append(Event(round(srng.uniform(0.05, 0.85) * d, 2), "kill", "sol-detect-0",
                        round(srng.uniform(0.2, 4.0), 2), "SIGKILL, restart after"))
        ev.append(Event(round(srng.uniform(0.1, 0.5) * d, 2), "sol_rpc_all", "solana endpoints",
                        round(srng.uniform(*SOLANA_RPC_DOWN_S), 2), "dead"))
        ev.append(Event(round(srng.uniform(0.5, 0.8) * d, 2), "sol_restart", "solana", 0,
                        "validator stopped, started again on its ledger"))
    ev.sort(key=lambda e: (e.t, e.kind, e.target))
    return ev


def amounts_of(seed: int, n: int) -> list[int]:
    """Each deposit's amount (1..50 USDT), from the seed too."""
    rng = random.Random(seed * 7919 + 1)
    return [rng.randint(1, 50) * 10**18 for _ in range(n)]


class Chaos(LocalPipeline):
    def __init__(self, args):
        super().__init__(REPO / ".local" / "chaos", log=log)
        self.args = args
        self.faults: dict[str, int] = {}
        self.lock = threading.Lock()
        # Waves may fire together; each account's nonces must go in order.
        self.deposit_lock = threading.Lock()
        self.errors: list[str] = []
        # Cluster faults one at a time: two brokers down would leave
        # partitions below min.insync.replicas, a fault the issue leaves out.
        self.cluster_lock = threading.Lock()
        self.cluster_faults: list[dict] = []
        # Solana: deposits wait while the validator restarts.
        self.sol: SolanaSide | None = None
        self.sol_lock = threading.Lock()

    # ------------------------------------------------------------ setup
    def start_all(self) -> None:
        nodes = KAFKA_NODES if self.args.cluster else 1
        log(f"services up in {self.up(kafka_nodes=nodes):.1f} s" + (f" (Kafka: {nodes} brokers)" if nodes > 1 else ""))
        self.setup(accounts=4, users=0)
        anvil = self.env["ZL_RPC_URLS"]
        self.rpc = [FaultProxy(anvil), FaultProxy(anvil)]
        api = self.env["ZL_IPFS_API_URL"].removeprefix("http://")
        host, _, port = api.partition(":")
        self.ipfs_primary = TcpProxy(host, int(port.rstrip("/")))
        self.worker_overrides = {
            "ZL_RPC_URLS": f"{self.rpc[0].url},{self.rpc[1].url}",
            # Two endpoints must agree (detect: the logs of a range; verify:
            # the head), so the secondary's lies are outvoted or held.
            "ZL_RPC_QUORUM": "2",
            "ZL_RPC_TIMEOUT_MS": "2000",
            "ZL_RPC_HEDGE_MS": "500",
            "ZL_IPFS_PROVIDERS": f"kubo={self.ipfs_primary.url},kubo={self.env['ZL_IPFS_API_URL']}",
            "ZL_IPFS_CONNECT_TIMEOUT_MS": "500",
            "ZL_OUTAGE_CAP_MS": "1000",
            "ZL_LOG_LEVEL": "info",
            # notify: a subscriber (or the database) back after a fault is
            # served again within seconds.
            "ZL_NOTIFY_BACKOFF_CAP_MS": "2000",
            "ZL_NOTIFY_POLL_MS": "100",
        }
        if self.args.solana_deposits > 0:
            self.solana_setup()
        # One subscriber, this run's: earlier runs' receivers are gone.
        secret = "whsec_chaos_" + random.SystemRandom().randbytes(16).hex()
        self.hooks = WebhookReceiver(secret)
        self.psql("UPDATE webhook_subscribers SET active = false")
        self.psql("INSERT INTO webhook_subscribers (url, secret) VALUES (:'v1', :'v2')", self.hooks.url, secret)
        # zl-sweep is part of the product (it re-drives stale rows), not a
        # fault target.
        plan = [("detect", 1)] + [(s, self.args.copies) for s in STAGES[1:]] + [(NOTIFY, self.args.copies),
                                                                              ("zl-sweep", 1)]
        self.start_workers(plan)
        if self.sol is not None:
            self.sol.start_detect()
        # Copies are static group members (named): one fenced across a broker
        # restart exits 1, and is restarted as Kubernetes would.
        self.supervise()

    def solana_setup(self) -> None:
        """The validator as a service of the chaos folder, a USDT mint, the
        deposit accounts, mint's payer; every stage reaches Solana through a
        dead endpoint, then a proxy the faults stop."""
        self.sol = SolanaSide(self)
        self.sol.up()
        self.sol.setup([f"sol-chaos-{i}" for i in range(SOLANA_USERS)])
        self.sol_proxy = RpcProxy(self.sol.v.url).start()
        self.worker_overrides["ZL_SOLANA_RPC_URLS"] = f"http://127.0.0.1:{free_port()},{self.sol_proxy.url}"

    def solana_restart(self) -> None:
        """The validator stopped and started on its ledger; deposits wait
        until it has caught up with the slot it stopped at."""
        ledger = self.local / "solana" / "ledger"
        deadline = time.monotonic() + SOLANA_SNAPSHOT_WAIT_S
        while not any(ledger.glob("snapshot-*.tar.zst")):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no validator snapshot in {ledger} after {SOLANA_SNAPSHOT_WAIT_S} s")
            time.sleep(1)
        with self.sol_lock:
            before = self.sol.v.rpc("getSlot")
            t0 = time.monotonic()
            self.services("restart", "solana")
            deadline = time.monotonic() + SOLANA_CATCH_UP_S
            while self.sol.v.rpc("getSlot") <= before:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the validator did not pass slot {before} in {SOLANA_CATCH_UP_S} s")
                time.sleep(0.5)
            log(f"solana restarted at slot {before}, caught up in {time.monotonic() - t0:.1f} s")

    def stop_all(self) -> None:
        self.stop_workers()
        if getattr(self, "sol_proxy", None) is not None:
            self.sol_proxy.stop()
        for p in getattr(self, "rpc", []):
            p.close()
        if hasattr(self, "ipfs_primary"):
            self.ipfs_primary.close()
        if hasattr(self, "hooks"):
            self.hooks.close()

    # ------------------------------------------------------------ faults
    def count(self, kind: str, n: int = 1) -> None:
        with self.lock:
            self.faults[kind] = self.faults.get(kind, 0) + n

    def reorg(self, depth: int) -> tuple[int, int]:
        """Takes back the newest `depth` blocks and re-includes their
        transactions in blocks of the same numbers but other hashes, on anvil
        itself (not through the proxies). Mining pauses meanwhile, so the
        blocks given back hold what the taken ones held, in the same order
        (the same log indices: the deposit ids stay). Returns how many
        transactions, and how many of them deposits, were re-included."""
        rpc = Rpc(self.env["ZL_RPC_URLS"])
        rpc.call("evm_setIntervalMining", 0)
        try:
            # Mining paused: the wave this reorg goes with piles up in the pool.
            deadline = time.monotonic() + REORG_WAIT_S
            while int(rpc.call("txpool_status")["pending"], 16) == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            # Our waves wait from here until the blocks are given back: one
            # sent meanwhile could take a re-included deposit's log index.
            with self.deposit_lock:
                snap = rpc.call("evm_snapshot")
                base = int(rpc.call("eth_blockNumber"), 16)
                for _ in range(depth):
                    rpc.call("evm_mine")
                txs = [tx for n in range(base + 1, base + depth + 1)
                       for tx in rpc.call("eth_getBlockByNumber", hex(n), True)["transactions"]]
                raws = [rpc.call("eth_getRawTransactionByHash", tx["hash"]) for tx in txs]
                if rpc.call("evm_revert", snap) is not True:
                    raise RpcError(f"evm_revert {snap} refused")
                for raw in raws:
                    try:
                        rpc.call("eth_sendRawTransaction", raw)
                    except RpcError as ex:  # still in the pool is fine; anything else is a lost tx
                        if "known" not in str(ex).lower():
                            raise
                for _ in range(depth):
                    rpc.call("evm_mine")
            deposits = sum(1 for tx in txs if (tx.get("to") or "").lower() == self.token.lower())
            log(f"reorg at block {base + 1}: {depth} block(s) taken back, {len(raws)} tx re-included"
                f" ({deposits} deposits)")
            return len(raws), deposits
        finally:
            rpc.call("evm_setIntervalMining", int(self.env.get("ZL_ANVIL_BLOCK_TIME_S", "1")))
            rpc.close()

    def kcat_produce(self, topic: str, key: str, value: bytes) -> None:
        # The broker may be restarting right now: retried for a while.
        produce_bytes(topic, key, value, self.env["ZL_KAFKA_BROKERS"], retry_s=KCAT_TIMEOUT_S)

    def forge(self, stage: str, topic: str, e: Event, addrs: list[str]) -> None:
        """Copies one real event of this schedule on topic, changes the fact
        e.detail names, and produces it keyed by the real deposit id."""
        mine = {a.lower() for a in addrs}
        deadline = time.monotonic() + FORGE_SOURCE_WAIT_S
        real = None
        while real is None and time.monotonic() < deadline:
            try:
                out = kcat("-C", "-t", topic, "-o", f"-{FORGE_SOURCE_PER_PARTITION}", "-e", "-q", "-f", "%s\n",
                           brokers=self.env["ZL_KAFKA_BROKERS"])
            except HarnessError:
                out = ""  # the broker may be restarting
            for line in out.splitlines():
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue  # a poison message
                if isinstance(ev, dict) and str(ev.get("to", "")).lower() in mine:
                    real = ev
            if real is None:
                time.sleep(1)
        if real is None:
            self.count("forged message skipped (no event of the schedule yet)")
            return
        forged = dict(real)
        field = e.detail
        if field == "amount":
            forged["amount"] = str(int(real["amount"]) + 1)
        elif field == "user_id":
            forged["user_id"] = real["user_id"] + "-forged"
        else:  # an address: another one
            forged[field] = "0x" + ("66" * 20 if real[field].lower() != "0x" + "66" * 20 else "77" * 20)
        tag = f"{self.seed}-{stage}-{e.t}-{field}"
        produce_bytes(topic, real["deposit_id"], json.dumps(forged).encode(), self.env["ZL_KAFKA_BROKERS"],
                      retry_s=KCAT_TIMEOUT_S, hdrs={FORGED_HEADER: tag})
        self.count("forged message")
        with self.lock:
            self.forged_tags.add(tag)

    # ------------------------------------------------------------ cluster faults
    def broker_crash(self, broker: int, down_s: float, why: str) -> dict:
        """SIGKILLs a broker, waits until its partitions have other leaders
        and down_s has passed, starts it, waits for every replica to be in
        sync; returns what it took."""
        brokers = self.env["ZL_KAFKA_BROKERS"]
        t0 = time.monotonic()
        self.services("kill", node_service(broker))
        moved = wait_led_without(brokers, broker)
        time.sleep(max(0.0, down_s - (time.monotonic() - t0)))
        self.services("start", node_service(broker))
        back = time.monotonic() - t0
        in_sync = wait_in_sync(brokers)
        log(f"broker {broker} ({why}) SIGKILLed: leaders moved in {moved:.1f} s, restarted and serving after"
            f" {back:.1f} s, every replica in sync {in_sync:.1f} s later")
        return {"broker": broker, "leaders_moved_s": round(moved, 1), "back_s": round(back, 1),
                "in_sync_s": round(in_sync, 1)}

    def fire_cluster(self, e: Event) -> None:
        with self.cluster_lock:
            brokers = self.env["ZL_KAFKA_BROKERS"]
            start = time.time()
            t0 = time.monotonic()
            if e.kind == "leader_kill":
                broker, led = busiest_leader(brokers, e.target)
                what = self.broker_crash(broker, e.duration, f"leader of {led} partitions of {e.target}")
                self.count("kafka: SIGKILL of the busiest leader")
            elif e.kind == "coordinator_kill":
                broker = group_coordinator(self.env, e.target)
                what = self.broker_crash(broker, e.duration, f"coordinator of group {e.target}")
                self.count("kafka: SIGKILL of a group coordinator")
            elif e.kind == "rolling_restart":
                what = {}
                for n in range(1, KAFKA_NODES + 1):
                    t1 = time.monotonic()
                    self.services("restart", node_service(n))
                    what[f"broker {n} s"] = round(time.monotonic() - t1, 1)
                    what[f"broker {n} in sync s"] = round(wait_in_sync(brokers), 1)
                log(f"rolling restart: {what}")
                self.count("kafka: rolling restart")
            elif e.kind == "reassign":
                what = reassign_rotated(self.env, e.target, self.local)
                what["in_sync_s"] = round(wait_in_sync(brokers), 1)
                what["seconds"] = round(what["seconds"], 1)
                log(f"reassignment of {e.target}: {what}")
                self.count("kafka: partition reassignment")
            else:
                raise ValueError(f"not a cluster fault: {e.kind}")
            self.cluster_faults.append({"seed": self.seed, "kind": e.kind, "target": e.target, "at_s": e.t,
                                        "start": start, "end": time.time(),
                                        "recovered_s": round(time.monotonic() - t0, 1), **what})

    def fire(self, e: Event, addrs: list[str], amounts: list[int], sent: list[int]) -> None:
        if e.kind in ("leader_kill", "rolling_restart", "reassign", "coordinator_kill"):
            self.fire_cluster(e)
        elif e.kind == "kill":
            if self.kill(e.target):
                self.count(f"SIGKILL {e.target.rsplit('-', 1)[0]}")
            time.sleep(e.duration)
            self.restart(e.target)
        elif e.kind == "restart":
            t0 = time.monotonic()
            self.services("restart", e.target)
            self.count(f"{e.target} restart")
            log(f"{e.target} restarted in {time.monotonic() - t0:.1f} s")
        elif e.kind == "rpc":
            self.rpc[0].set_mode(e.detail)
            self.count(f"rpc primary {e.detail}")
            time.sleep(e.duration)
            self.rpc[0].set_mode("ok")
        elif e.kind == "rpc_all":
            for p in self.rpc:
                p.set_mode("dead")
            self.count("rpc every endpoint dead")
            time.sleep(e.duration)
            for p in self.rpc:
                p.set_mode("ok")
        elif e.kind == "lie":
            before = self.rpc[1].lies
            self.rpc[1].set_mode(e.detail)
            self.count(f"rpc secondary lies ({e.detail})")
            time.sleep(e.duration)
            self.rpc[1].set_mode("ok")
            self.count(f"rpc secondary answers lied ({e.detail})", self.rpc[1].lies - before)
        elif e.kind == "reorg":
            moved, deposits = self.reorg(int(e.detail))
            self.count("reorg")
            self.count("reorg: tx re-included", moved)
            self.count("reorg: deposit re-included", deposits)
        elif e.kind == "ipfs_down":
            self.ipfs_primary.down()
            self.count("ipfs primary down")
            time.sleep(e.duration)
            self.ipfs_primary.up()
        elif e.kind == "poison":
            for stage, topic in INPUT_TOPICS.items():
                key = f"chaos-poison-{self.seed}-{stage}-{e.t}"
                self.kcat_produce(topic, key, POISON[int(e.detail)])
                self.count("poison message")
                with self.lock:
                    self.poison_keys.add(key)
        elif e.kind == "forged":
            for stage, topic in INPUT_TOPICS.items():
                self.forge(stage, topic, e, addrs)
        elif e.kind == "sol_deposits":
            with self.sol_lock:
                got = self.sol.make_deposits(int(e.detail))
            self.count("solana deposits", got)
        elif e.kind == "sol_rpc_all":
            self.sol_proxy.stop()
            self.count("solana every endpoint dead")
            time.sleep(e.duration)
            self.sol_proxy.start()
        elif e.kind == "sol_restart":
            self.solana_restart()
            self.count("solana validator restart")
        elif e.kind == "deposits":
            n = int(e.detail)
            with self.lock:
                first = sent[0]
                sent[0] += n
            with self.deposit_lock:
                got = self.make_deposits(n, addrs[first % len(addrs):] + addrs[:first % len(addrs)],
                                         lambda j: amounts[first + j])
            if got != n:
                self.errors.append(f"only {got} of {n} deposits were sent")

    def run_schedule(self, seed: int) -> dict:
        args = self.args
        events = make_schedule(seed, args.deposits, args.duration_s, args.copies, args.reorgs, args.cluster,
                               args.solana_deposits)
        amounts = amounts_of(seed, args.deposits)
        log(f"schedule seed {seed}: {len(events)} events over {args.duration_s:.0f} s, {args.deposits} deposits")
        addrs = self.add_users(args.users, tag=f"s{seed}")
        self.faults = {}
        self.cluster_faults = []
        self.poison_keys: set[str] = set()
        self.forged_tags: set[str] = set()
        self.seed = seed
        sent = [0]
        threads = []
        t0 = time.monotonic()

        def guarded(e: Event):
            try:
                self.fire(e, addrs, amounts, sent)
            except Exception as ex:  # reported as a schedule failure, never silently
                self.errors.append(f"{e.kind} {e.target}: {ex}")
                traceback.print_exc()

        for e in events:
            time.sleep(max(0.0, t0 + e.t - time.monotonic()))
            th = threading.Thread(target=guarded, args=(e,), daemon=True)
            th.start()
            threads.append(th)
        for th in threads:
            th.join()
        log(f"schedule {seed}: faults over after {time.monotonic() - t0:.1f} s: "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())))
        return self.judge(seed, addrs, t0)

    # ------------------------------------------------------------ checks
    def chain_transfers(self, addrs: list[str]) -> list[dict]:
        """Every Transfer of the token to `addrs` on the canonical chain."""
        topics = ["0x" + "0" * 24 + a.lower()[2:] for a in addrs]
        logs = json.loads(self.cast("rpc", "--rpc-url", self.env["ZL_RPC_URLS"], "eth_getLogs", json.dumps(
            [{"fromBlock": hex(int(self.nft_from_block)), "toBlock": "latest", "address": self.token,
              "topics": [TRANSFER_TOPIC, None, topics]}]), "--raw", timeout=120))
        return logs

    def nft_mints(self) -> dict[int, int]:
        """Mint events (Transfer from 0) per token id, over the whole chain."""
        logs = json.loads(self.cast("rpc", "--rpc-url", self.env["ZL_RPC_URLS"], "eth_getLogs", json.dumps(
            [{"fromBlock": hex(int(self.nft_from_block)), "toBlock": "latest", "address": self.nft,
              "topics": [TRANSFER_TOPIC, ZERO_TOPIC]}]), "--raw", timeout=120))
        per: dict[int, int] = {}
        for lg in logs:
            tid = int(lg["topics"][3], 16)
            per[tid] = per.get(tid, 0) + 1
        return per

    def settle(self, count, expect: int, what: str) -> dict[str, int]:
        """count() (rows per state) once expect rows are credited, dead,
        reorged or below the minimum, or when SETTLE_TIMEOUT_S is up."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        last = None
        while time.monotonic() < deadline:
            c = count()
            settled = c["credited"] + c["dead"] + c["reorged"] + c["below_minimum"]
            if c != last:
                log(f"{what}: " + ", ".join(f"{k} {v}" for k, v in c.items() if v))
                last = c
            if sum(c.values()) >= expect and settled >= expect:
                return c
            time.sleep(2)
        return count()

    def latency(self, addrs: list[str], since: float = 0, until: float = 4e9) -> dict:
        """detect -> credited p50 and p99 (seconds) of the deposits to addrs
        in the pipeline at some time between since and until (Unix times:
        detected before until, credited after since), and how many."""
        r = self.psql(
            "SELECT coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY s), 0),"
            " coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY s), 0), count(*) FROM ("
            " SELECT extract(epoch FROM h.at - d.created_at) AS s FROM deposits d"
            " JOIN deposit_history h ON h.deposit_id = d.deposit_id AND h.to_state = 'credited'"
            " WHERE d.to_addr = ANY (string_to_array(:'v1', ','))"
            " AND h.at >= to_timestamp(:'v2') AND d.created_at <= to_timestamp(:'v3')) x",
            ",".join(addrs), str(since), str(until))[0]
        return {"p50_s": round(float(r[0]), 1), "p99_s": round(float(r[1]), 1), "n": int(r[2])}

    def dead_letters(self) -> list[dict]:
        """Every message in every stage's DLQ, with its headers."""
        out = []
        for stage in STAGES:
            topic = f"zl.{stage}.dlq"
            out += [dict(m, topic=topic) for m in keyed_headers(topic, self.env["ZL_KAFKA_BROKERS"])]
        return out

    def replay_all(self) -> None:
        for stage in STAGES[1:]:
            r = subprocess.run([str(self.bin / "zl-replay"), "--from-stage", stage, "--rate", "0"],
                               env=self.worker_env("replay"), capture_output=True, text=True, timeout=300)
            if r.returncode not in (0, 1):
                self.errors.append(f"zl-replay --from-stage {stage} failed ({r.returncode}): {r.stderr[-500:]}")

    def webhook_check(self, addrs: list[str]) -> dict:
        """Every credit of the schedule at the receiver, once it had time to
        arrive: one delivery id each, signatures valid."""
        credited = {r[0] for r in self.psql("SELECT deposit_id FROM deposits WHERE state = 'credited'"
                                            " AND to_addr = ANY (string_to_array(:'v1', ','))", ",".join(addrs))}
        deadline = time.monotonic() + NOTIFY_SETTLE_S
        while not credited <= self.hooks.delivered() and time.monotonic() < deadline:
            time.sleep(1)
        got = self.hooks.judge(credited)
        problems = []
        if got["missing"]:
            problems.append(f"{len(got['missing'])} credits never reached the webhook receiver: {got['missing'][:3]}")
        if got["two_ids"]:
            problems.append(f"{len(got['two_ids'])} credits delivered under more than one delivery id:"
                            f" {got['two_ids'][:3]}")
        if got["bad_signatures"]:
            problems.append(f"{got['bad_signatures']} webhook deliveries failed the signature check")
        return {"webhook_deliveries": got["deliveries"], "webhook_duplicates": got["duplicates"],
                "problems": problems}

    def solana_counts(self) -> dict[str, int]:
        """Solana rows per state (a Solana row has no chain_id; base58
        accounts are not lowercased as counts() does addresses)."""
        c = {s: 0 for s in STATES}
        c.update({r[0]: int(r[1]) for r in self.psql(
            "SELECT state, count(*) FROM deposits WHERE chain_id IS NULL GROUP BY 1")})
        return c

    def solana_settle(self, expect: int, what: str) -> dict[str, int]:
        return self.settle(self.solana_counts, expect, what) if self.sol is not None else self.solana_counts()

    def solana_checks(self, transfers: list[tuple[str, int]], first: dict, final: dict, problems: list[str]) -> dict:
        """Every Solana transfer on chain (transfers: SolanaSide.transfers(),
        read once) credited once, with its eggs and a receipt held by the
        payer; problems appended."""
        if self.sol is None:
            return {}
        n_sol = len(transfers)
        rows = sum(final.values())
        if rows != n_sol:
            problems.append(f"{n_sol} Solana deposits on chain but {rows} rows")
        if final["credited"] + final["below_minimum"] != n_sol:
            problems.append(f"after replay {n_sol - final['credited'] - final['below_minimum']} Solana deposits"
                            " not credited")
        twice = self.psql("SELECT count(*) FROM (SELECT e.deposit_id FROM ledger_entries e JOIN deposits d USING"
                          " (deposit_id) WHERE e.kind = 'user_credit' AND d.chain_id IS NULL"
                          " GROUP BY e.deposit_id HAVING count(*) > 1) x")
        if int(twice[0][0]):
            problems.append(f"{twice[0][0]} Solana deposits credited more than once")
        expect_eggs: dict[str, int] = {}
        for acct, amount in transfers:
            u = self.sol.user_of[acct]
            expect_eggs[u] = expect_eggs.get(u, 0) + amount * int(self.sol.rate()) // 10**6
        bal = {r[0]: int(r[1]) for r in self.psql(
            "SELECT owner, balance FROM ledger_accounts WHERE kind = 'user' AND owner = ANY (string_to_array(:'v1',"
            " ','))", ",".join(expect_eggs))}
        wrong = {u: (bal.get(u, 0), e) for u, e in expect_eggs.items() if bal.get(u, 0) != e}
        if wrong:
            problems.append(f"{len(wrong)} Solana users' balances differ from their transfers on chain "
                            f"(balance, expected): {dict(list(wrong.items())[:3])}")
        receipts = self.sol.receipts()
        if receipts["bad"] or receipts["checked"] != final["credited"]:
            problems.append(f"Solana receipts: {receipts['checked']} checked of {final['credited']} credited, wrong:"
                            f" {receipts['bad'][:3]}")
        return {"on_chain": n_sol, "credited_first_pass": first["credited"], "dead_first_pass": first["dead"],
                "credited": final["credited"], "receipts_checked": receipts["checked"],
                "receipts_wrong": len(receipts["bad"]), "double_credited": int(twice[0][0])}

    def judge(self, seed: int, addrs: list[str], t0: float) -> dict:
        problems = list(self.errors)
        self.errors.clear()
        # Every deposit sent must be on chain before it is counted: one still
        # in the node's pool would be missed by the count below.
        pool = self.pool_drained()
        if pool["pending"] + pool["queued"]:
            problems.append(f"deposits never mined: node pool {pool}")
        transfers = self.chain_transfers(addrs)
        n_chain = len(transfers)
        if n_chain != self.args.deposits:
            problems.append(f"{self.args.deposits} deposits sent but {n_chain} on chain")
        first = self.settle(lambda: self.counts(addrs), n_chain, f"schedule {seed} settling")
        # Solana: its transfers counted on chain, every schedule's so far.
        sol_transfers = self.sol.transfers() if self.sol is not None else []
        n_sol = len(sol_transfers)
        if self.sol is not None and n_sol != self.sol.sent:
            problems.append(f"{self.sol.sent} Solana deposits sent but {n_sol} on chain")
        sol_first = self.solana_settle(n_sol, f"schedule {seed} settling (solana)")
        settled = first["credited"] + first["dead"] + first["reorged"] + first["below_minimum"]
        rows = sum(first.values())
        if rows != n_chain:
            problems.append(f"{n_chain} deposits on chain but {rows} rows: {n_chain - rows} lost by detection")
        if settled != n_chain:
            problems.append(f"{n_chain - settled} deposits never reached credited/dead/reorged/below_minimum")
        # A dead letter without a reason is one an operator cannot act on.
        letters = self.dead_letters()
        unexplained = [m for m in letters if not m["headers"].get("zl-dlq-error")
                       or not m["headers"].get("zl-dlq-error-class")]
        if unexplained:
            problems.append(f"{len(unexplained)} dead letters without a reason, e.g. {unexplained[0]}")
        # Every poison message reaches a DLQ. A worker killed after the
        # letter's delivery but before its offset was stored letters it
        # again on redelivery (at-least-once): a duplicate letter, counted
        # and shown, is not a loss.
        keys = [m["key"] for m in letters if m["key"].startswith(f"chaos-poison-{seed}-")]
        poisoned = len(set(keys))
        poison_dupes = len(keys) - poisoned
        missing = self.poison_keys - set(keys)
        if missing:
            problems.append(f"{len(missing)} of {len(self.poison_keys)} poison messages never reached a DLQ: "
                            f"{sorted(missing)[:3]}")
        # Every forgery reaches a DLQ as bad input (poison), the row left as
        # it was: the balance and owner checks below prove it moved nothing.
        forged_letters = [m for m in letters if m["headers"].get(FORGED_HEADER, "").startswith(f"{seed}-")]
        not_poison = [m for m in forged_letters if m["headers"].get("zl-dlq-error-class") != "poison"]
        if not_poison:
            problems.append(f"{len(not_poison)} forged messages dead-lettered as another class than poison: "
                            f"{not_poison[0]['headers']}")
        missing_forged = self.forged_tags - {m["headers"][FORGED_HEADER] for m in forged_letters}
        if missing_forged:
            problems.append(f"{len(missing_forged)} of {len(self.forged_tags)} forged messages never reached a DLQ:"
                            f" {sorted(missing_forged)[:3]}")
        dead_rows = self.psql("SELECT count(*) FROM deposits WHERE state = 'dead' AND coalesce(last_error, '') = ''"
                              " AND to_addr = ANY (string_to_array(:'v1', ','))", ",".join(addrs))
        if int(dead_rows[0][0]) > 0:
            problems.append(f"{dead_rows[0][0]} dead rows without last_error")
        replayed = 0
        if first["dead"] + sol_first["dead"] > 0:
            replayed = first["dead"] + sol_first["dead"]
            log(f"schedule {seed}: replaying {replayed} dead letter(s): "
                + "; ".join(r[0] for r in self.psql(
                    "SELECT DISTINCT left(last_error, 160) FROM deposits WHERE state = 'dead'"
                    " AND to_addr = ANY (string_to_array(:'v1', ','))", ",".join(addrs))))
            self.replay_all()
        final = self.settle(lambda: self.counts(addrs), n_chain, f"schedule {seed} after replay") if replayed \
            else first
        sol_final = self.solana_settle(n_sol, f"schedule {seed} after replay (solana)") if replayed else sol_first
        sol = self.solana_checks(sol_transfers, sol_first, sol_final, problems)
        # below_minimum is terminal on purpose (never dead-lettered, never replayed).
        if final["credited"] + final["reorged"] + final["below_minimum"] != n_chain:
            problems.append(f"after replay {n_chain - final['credited'] - final['reorged'] - final['below_minimum']}"
                            " deposits not credited")

        # Money: one user entry per deposit, and each user's balance is the
        # eggs of their transfers on chain (100 eggs per USDT).
        twice = self.psql("SELECT count(*) FROM (SELECT e.deposit_id FROM ledger_entries e JOIN deposits d USING"
                          " (deposit_id) WHERE e.kind = 'user_credit' AND d.to_addr = ANY (string_to_array(:'v1', ','))"
                          " GROUP BY e.deposit_id HAVING count(*) > 1) x", ",".join(addrs))
        double_credited = int(twice[0][0])
        expect_eggs: dict[str, int] = {}
        for lg in transfers:
            to = "0x" + lg["topics"][2][-40:].lower()
            expect_eggs[self.user_of[to]] = expect_eggs.get(self.user_of[to], 0) + int(lg["data"], 16) * 100 // 10**18
        bal = {r[0]: int(r[1]) for r in self.psql(
            "SELECT owner, balance FROM ledger_accounts WHERE kind = 'user'"
            " AND owner = ANY (string_to_array(:'v1', ','))", ",".join(self.user_of[a] for a in addrs))}
        wrong = {u: (bal.get(u, 0), e) for u, e in expect_eggs.items() if bal.get(u, 0) != e}
        if wrong:
            problems.append(f"{len(wrong)} users' balances differ from their transfers on chain "
                            f"(balance, expected): {dict(list(wrong.items())[:3])}")
        if double_credited:
            problems.append(f"{double_credited} deposits credited more than once")

        # Tokens: one mint event per token id; one token per credited deposit.
        mints = self.nft_mints()
        double_minted = sum(1 for v in mints.values() if v > 1)
        if double_minted:
            problems.append(f"{double_minted} token ids minted more than once")
        ids = self.psql("SELECT token_id FROM deposits WHERE state = 'credited'"
                        " AND to_addr = ANY (string_to_array(:'v1', ','))", ",".join(addrs))
        unminted = [r[0] for r in ids if mints.get(int(r[0]), 0) != 1]
        if unminted:
            problems.append(f"{len(unminted)} credited deposits without exactly one mint event on chain")
        hooks = self.webhook_check(addrs)
        problems += hooks.pop("problems")
        audit = self.audit()
        if audit.returncode != 0:
            problems.append(f"zl-audit found discrepancies: {audit.stdout[-1500:]} {audit.stderr[-500:]}")
        bad_logs = self.sanitizer_reports()
        if bad_logs:
            problems.append(f"sanitizer reports in {bad_logs}")
        lost = n_chain - final["credited"] - final["reorged"] - final["below_minimum"]
        lat = self.latency(addrs)
        # What each cluster fault did to latency: the deposits in the
        # pipeline while it lasted.
        cluster_faults = [dict(f, latency=self.latency(addrs, f["start"], f["end"])) for f in self.cluster_faults]
        result = {"seed": seed, "deposits_on_chain": n_chain, "credited_first_pass": first["credited"],
                  "dead_first_pass": first["dead"], "reorged": final["reorged"], "replayed": replayed,
                  "credited": final["credited"], "dead_letters": len(letters), "poison_dead_letters": poisoned,
                  "poison_duplicate_letters": poison_dupes, "forged_dead_letters": len(forged_letters),
                  "lost": lost,
                  "double_credited": double_credited, "double_minted": double_minted,
                  "faults": dict(self.faults), "seconds": round(time.monotonic() - t0, 1), "problems": problems,
                  "p50_s": lat["p50_s"], "p99_s": lat["p99_s"], "cluster_faults": cluster_faults, **hooks,
                  "solana": sol}
        log(f"schedule {seed}: " + ("ok" if not problems else "FAILED: " + " | ".join(problems)))
        return result


def report(results: list[dict]) -> None:
    faults: dict[str, int] = {}
    for r in results:
        for k, v in r["faults"].items():
            faults[k] = faults.get(k, 0) + v
    print()
    print("zeroloss chaos report")
    print("---------------------")
    print("| seed | deposits | credited 1st pass | dead → replayed | credited | poison → DLQ (+dup) | lost |"
          " credited twice | minted twice | s | p50 s | p99 s | ok |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|")
    for r in results:
        print(f"| {r['seed']} | {r['deposits_on_chain']} | {r['credited_first_pass']} | {r['replayed']} |"
              f" {r['credited']} | {r['poison_dead_letters']} (+{r['poison_duplicate_letters']}) | {r['lost']} |"
              f" {r['double_credited']} | {r['double_minted']} | {r['seconds']} | {r['p50_s']} | {r['p99_s']} |"
              f" {'yes' if not r['problems'] else 'NO'} |")
    print()
    print("webhooks (notify): " + ", ".join(f"seed {r['seed']}: {r.get('webhook_deliveries', 0)} deliveries,"
                                           f" {r.get('webhook_duplicates', 0)} duplicate(s) of one id"
                                           for r in results))
    for r in results:
        sol = r.get("solana") or {}
        if sol:
            print(f"solana (seed {r['seed']}, every schedule so far): {sol['on_chain']} deposits on chain,"
                  f" {sol['credited_first_pass']} credited first pass, {sol['dead_first_pass']} dead → replayed,"
                  f" {sol['credited']} credited, {sol['double_credited']} credited twice; receipts checked on chain"
                  f" {sol['receipts_checked']}, wrong {sol['receipts_wrong']}")
    print("faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(faults.items())))
    cluster = [f for r in results for f in r.get("cluster_faults", [])]
    if cluster:
        print()
        print("| seed | cluster fault | target | recovered s | what it took | deposits in flight meanwhile | p50 s | p99 s |")
        print("|---:|---|---|---:|---|---:|---:|---:|")
        skip = ("seed", "kind", "target", "at_s", "start", "end", "recovered_s", "latency")
        for f in cluster:
            took = ", ".join(f"{k} {v}" for k, v in f.items() if k not in skip)
            la = f["latency"]
            print(f"| {f['seed']} | {f['kind']} | {f['target']} | {f['recovered_s']} | {took} | {la['n']} |"
                  f" {la['p50_s']} | {la['p99_s']} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=None, help="first schedule's seed (default: random, printed)")
    ap.add_argument("--schedules", type=int, default=1)
    ap.add_argument("--deposits", type=int, default=100, help="deposits per schedule")
    ap.add_argument("--duration-s", type=float, default=45.0, help="seconds over which a schedule's faults fire")
    ap.add_argument("--copies", type=int, default=2, help="copies of each stage but detect")
    ap.add_argument("--users", type=int, default=10, help="deposit addresses per schedule")
    ap.add_argument("--no-reorgs", dest="reorgs", action="store_false",
                    help="leave out the reorgs (anvil snapshot and revert, the transactions re-included)")
    ap.add_argument("--cluster", action="store_true",
                    help="Kafka as a three-broker cluster, with its faults in place of the Kafka restart")
    ap.add_argument("--solana-deposits", type=int, default=0,
                    help="USDT deposits on Solana too, per schedule (needs solana-test-validator built)")
    ap.add_argument("--print-schedule", action="store_true", help="print the schedule(s) as JSON and exit")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--keep", action="store_true", help="leave services and workers running")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    seeds = [seed + i for i in range(args.schedules)]
    if args.print_schedule:
        for s in seeds:  # one event per line: easy to diff two seeds
            for e in make_schedule(s, args.deposits, args.duration_s, args.copies, args.reorgs, args.cluster,
                                   args.solana_deposits):
                print(json.dumps({"seed": s, **asdict(e)}))
        return 0
    log(f"seed {seed} ({args.schedules} schedule(s); replay with --seed {seed})")
    c = Chaos(args)
    results = []
    rc = 2
    try:
        c.start_all()
        for s in seeds:
            results.append(c.run_schedule(s))
            if args.json:  # after every schedule: a long run stopped early keeps what it proved
                args.json.write_text(json.dumps({"seed": seed, "results": results}, indent=1))
        rc = 0 if all(not r["problems"] for r in results) else 1
    except PipelineError as e:
        log(f"setup failed: {e}")
    finally:
        if results:
            report(results)
            if args.json:
                args.json.write_text(json.dumps({"seed": seed, "results": results}, indent=1))
        if not args.keep:
            c.stop_all()
            c.down()
            log("everything stopped")
    return rc


if __name__ == "__main__":
    sys.exit(main())

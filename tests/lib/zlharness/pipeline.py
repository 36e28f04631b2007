"""The whole pipeline on this machine, as pieces: services in a folder of
their own, contracts, users and deposit addresses, depositors, workers, and
the state table's counts. `make demo` (deploy/local/demo) and `make chaos`
(tests/chaos/chaos.py) are both built from it.

Everything started here is stopped by pid: workers by stop_workers(), the
services by LocalPipeline.down(). Test keys only (anvil's public mnemonic).
"""
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

from .chain import cast, deploy_contracts
from .env import REPO, HarnessError, write_secret
from .jsonrpc import Rpc, RpcError, transfer_data, wait_pool_empty
from .kafka import create_topics
from .pg import migrate, psql
from .procs import kill, run, sanitizer_report, spawn
from .services import SERVICES, services, services_env  # noqa: F401
# anvil's dev accounts come from this public test mnemonic: test keys only.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
TERMINAL = ("credited", "dead", "reorged", "below_minimum")
STATES = ["detected", "verified", "pinned", "mint_submitted", "minted", "credited", "dead", "reorged",
          "below_minimum"]
STAGES = ["detect", "verify", "ipfs-upload", "mint", "credit"]
# How long a worker may take to drain after SIGTERM before it is killed.
STOP_GRACE_S = 30
# Transfers per JSON-RPC request when making deposits.
SEND_BATCH_MAX = 100
# Gas limit of a deposit transfer (it uses ~35-52k): the node reserves it
# per tx, so it sets how many fit in a block.
TRANSFER_GAS = 0x10000
# Fee cap of a deposit: far above the base fee. Waves of deposits fill
# blocks and the base fee climbs 12.5% a block; a tx whose cap falls below it
# is dropped by anvil, which leaves a nonce gap that strands every later
# transfer of that account (seen in the chaos suite: 1,859 stranded).
DEPOSIT_MAX_FEE_WEI = 500 * 10**9
# A worker's exit status when it cannot go on but a fresh process can (e.g.
# its consumer fenced as a static member): its supervisor restarts it.
RESTARTABLE_EXIT = 1
# How often supervise() looks for workers that exited on their own.
SUPERVISE_POLL_S = 0.5
# Restarts of one worker name before supervise() gives up on it (a worker
# exiting 1 at once every time is broken, not fenced).
SUPERVISE_RESTARTS_MAX = 5


# A setup step failed; the message names the command and its stderr.
PipelineError = HarnessError


class LocalPipeline:
    """One pipeline: services in `local`, binaries from `bin_dir`."""

    def __init__(self, local: Path, bin_dir: Path | None = None, log=print):
        self.local = local
        self.bin = bin_dir or Path(os.environ.get("ZL_BIN_DIR", REPO / "build" / "release" / "bin"))
        self.env = dict(os.environ, ZL_LOCAL_DIR=str(local), ZL_BIN_DIR=str(self.bin))
        self.log = log
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.worker_overrides: dict[str, str] = {}
        # Settings for the workers whose name starts with a prefix, over
        # worker_overrides (the Solana side's detect copy, and the EVM
        # detect's "not Solana": solana_side.py).
        self.name_overrides: dict[str, dict[str, str]] = {}
        self.deposit_addrs: list[str] = []
        self.user_of: dict[str, str] = {}  # deposit address -> user id
        self.sent = 0
        self.restarts: list[tuple[str, int]] = []  # (worker, exit status) restarted by supervise()
        self._supervisor: threading.Thread | None = None
        self._supervising = threading.Event()
        self._procs_lock = threading.Lock()

    # ------------------------------------------------------------ services
    def services(self, *args: str, timeout=600) -> str:
        return services(*args, env=self.env, timeout=timeout)

    def up(self, block_time_s: int = 1, kafka_nodes: int = 1) -> float:
        """Fresh services in an empty folder; returns the seconds it took.
        kafka_nodes 3: a three-broker cluster (kafka-1..kafka-3) with
        production's replication settings."""
        if self.local.exists():
            self.services("down")
            shutil.rmtree(self.local)
        # A block every second, so confirmations accrue as on a real chain.
        self.env["ZL_ANVIL_BLOCK_TIME_S"] = str(block_time_s)
        self.env["ZL_KAFKA_NODES"] = str(kafka_nodes)
        self.kafka_nodes = kafka_nodes
        t0 = time.monotonic()
        self.services("up")
        self.env.update(services_env(self.env))
        return time.monotonic() - t0

    def down(self) -> None:
        if self.local.exists():
            self.services("down")

    def psql(self, sql: str, *params: str) -> list[list[str]]:
        """Rows of a query; params bind to :'v1', :'v2', ... (psql variables,
        quoted by psql itself, never pasted into the SQL)."""
        return psql(sql, *params, env=self.env)

    def cast(self, *args: str, timeout=60) -> str:
        return cast(*args, timeout=timeout, env=self.env)

    def anvil_key(self, index: int) -> str:
        return self.cast("wallet", "private-key", "--mnemonic", ANVIL_MNEMONIC, "--mnemonic-index", str(index))

    # ------------------------------------------------------------ setup
    def setup(self, accounts: int, users: int) -> None:
        """Schema, topics, contracts, a rate, users with deposit addresses,
        and `accounts` funded depositors (anvil accounts 3..)."""
        keys = self.local / "keys"
        keys.mkdir(parents=True, exist_ok=True)
        self.keys = [self.anvil_key(i) for i in range(3 + accounts)]
        self.deployer_key = write_secret(keys / "deployer.key", self.keys[0])
        migrate(env=self.env)
        create_topics(self.env)
        addrs = deploy_contracts(self.env["ZL_RPC_URLS"], self.deployer_key, self.env)
        self.token, self.nft = addrs["ZL_TOKEN_ADDRESS"].lower(), addrs["ZL_NFT_ADDRESS"].lower()
        self.nft_from_block = self.cast("block-number", "--rpc-url", self.env["ZL_RPC_URLS"])
        self.log(f"contracts: USDT {self.token}, receipt NFT {self.nft}")
        # 100 eggs per USDT, effective now (the credit stage's rate table).
        self.psql("INSERT INTO credit_rates (token, rate, note) VALUES (:'v1', 100, 'local pipeline')", self.token)
        self.add_users(users)
        self.log(f"{len(self.deposit_addrs)} users registered with deposit addresses")
        # Depositors: anvil accounts 3.. get test USDT from the token's owner.
        self.depositors = self.keys[3:3 + accounts]
        self.depositor_addrs = [self.cast("wallet", "address", "--private-key", k).lower() for k in self.depositors]
        for who in self.depositor_addrs:
            self.cast("send", "--rpc-url", self.env["ZL_RPC_URLS"], "--private-key", self.keys[0], self.token,
                      "mint(address,uint256)", who, str(10**30))

    def add_users(self, n: int, tag: str = "user") -> list[str]:
        """n users with fresh deposit addresses (addresses only: the platform
        would hold their keys; nothing here spends from them)."""
        added = []
        for i in range(n):
            addr = "0x" + secrets.token_hex(20)
            user = f"{tag}-{len(self.deposit_addrs):04d}"
            run([self.bin / "zl-address", "add", addr, user], env=self.env)
            self.deposit_addrs.append(addr)
            self.user_of[addr] = user
            added.append(addr)
        return added

    # ------------------------------------------------------------ workers
    def worker_env(self, name: str) -> dict:
        env = dict(self.env)
        env.update({
            "ZL_HTTP_PORT_FILE": str(self.local / "run" / f"{name}.port"),
            "ZL_TOKEN_ADDRESS": self.token,
            "ZL_NFT_ADDRESS": self.nft,
            "ZL_NFT_FROM_BLOCK": self.nft_from_block,
            "ZL_CHAIN_ID": self.env["ZL_CHAIN_ID"],
            "ZL_MINT_CHAIN_ID": self.env["ZL_CHAIN_ID"],
            "ZL_SIGNER_KEY_FILE": str(self.deployer_key),
            "ZL_CONFIRMATIONS": "2",
            "ZL_DETECT_LAG_BLOCKS": "0",
            "ZL_DETECT_START_BLOCK": self.nft_from_block,
            "ZL_DETECT_POLL_MS": "250",
            "ZL_NFT_IMAGE_FILE": str(REPO / "deploy" / "assets" / "receipt.svg"),
            "ZL_AUDIT_RPC_URLS": self.env["ZL_RPC_URLS"],
            # Broadcast, then defer to the delay tiers instead of holding the
            # partition for each receipt: many mints share a block.
            "ZL_MINT_RECEIPT_WAIT_MS": "200",
            # Short delay tiers: a local run should not wait a minute on a defer.
            "ZL_RETRY_TIERS_MS": "1000,2000,5000",
            # Static group membership, as in deploy/k8s: the worker's name is
            # unique per live copy (start_workers) and the same after a
            # restart, so a SIGKILLed copy restarted under it takes its
            # partitions back at once instead of after the session timeout.
            # Binaries without a Kafka consumer ignore it.
            "ZL_GROUP_INSTANCE_ID": name,
        })
        env.update(self.worker_overrides)
        for prefix, extra in self.name_overrides.items():
            if name.startswith(prefix):
                env.update(extra)
        return env

    def start(self, name: str, binary: str) -> subprocess.Popen:
        run_dir = self.local / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        # A pid file per worker, so whoever cleans up after a killed run
        # (tests/run-all) can find and stop what is left, by pid.
        p = spawn([self.bin / binary], run_dir / f"{name}.log", self.worker_env(name), run_dir / f"{name}.pid")
        p.zl_name, p.zl_binary = name, binary
        with self._procs_lock:
            self.procs.append((name, p))
        return p

    def start_workers(self, plan) -> None:
        """plan: [(binary, copies)]; the copies of binary b are named b-0,
        b-1, ..., skipping names of copies still alive (the name is the
        copy's static group member id: two live copies under one name would
        fence each other)."""
        for binary, copies in plan:
            i = 0
            for _ in range(copies):
                while self.alive(f"{binary}-{i}"):
                    i += 1
                self.start(f"{binary}-{i}", binary)
                i += 1
        self.log("workers: " + ", ".join(f"{b} x{c}" for b, c in plan))

    def alive(self, name: str) -> bool:
        p = self.worker(name)
        return p is not None and p.poll() is None

    def supervise(self) -> None:
        """Restarts, in a background thread until stop_workers(), every
        worker that exits with RESTARTABLE_EXIT on its own, as Kubernetes
        and deploy/local/stack's supervisord do: a fenced static member exits
        1 for its supervisor to restart it (at most SUPERVISE_RESTARTS_MAX
        times per name). A worker stopped by a signal
        (kill(), stop_workers()) or exiting otherwise is left alone; each
        restart is recorded in self.restarts and logged."""
        if self._supervisor is not None:
            return
        self._supervising.set()
        self._supervisor = threading.Thread(target=self._supervise_loop, name="zl-supervise", daemon=True)
        self._supervisor.start()

    def _supervise_loop(self) -> None:
        while self._supervising.is_set():
            with self._procs_lock:
                latest = {n: p for n, p in self.procs}  # the newest process under each name
            for name, p in latest.items():
                done = sum(n == name for n, _ in self.restarts)
                if p.poll() == RESTARTABLE_EXIT and self._supervising.is_set() and done < SUPERVISE_RESTARTS_MAX:
                    self.log(f"{name} exited {RESTARTABLE_EXIT}: restarted")
                    self.restarts.append((name, RESTARTABLE_EXIT))
                    self.start(name, p.zl_binary)
            time.sleep(SUPERVISE_POLL_S)

    def worker(self, name: str) -> subprocess.Popen | None:
        for n, p in reversed(self.procs):
            if n == name:
                return p
        return None

    def kill(self, name: str) -> bool:
        """SIGKILL a worker (no drain: a crash). False when it was not running."""
        p = self.worker(name)
        if p is None or p.poll() is not None:
            return False
        kill(p)
        return True

    def restart(self, name: str) -> subprocess.Popen:
        """Starts the worker again unless a copy under that name is alive
        (two overlapping kill/restart faults must not leave two copies with
        one name: with static membership the broker fences one of them)."""
        p = self.worker(name)
        if p.poll() is None:
            return p
        return self.start(name, p.zl_binary)

    def stop_workers(self) -> None:
        if self._supervisor is not None:
            self._supervising.clear()
            self._supervisor.join()
            self._supervisor = None
        for _, p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for name, p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log(f"{name} ignored SIGTERM for {STOP_GRACE_S} s: SIGKILL")
                p.kill()
                p.wait()

    def sanitizer_reports(self) -> list[str]:
        """Worker logs holding an AddressSanitizer/UBSan report."""
        bad = []
        for f in sorted((self.local / "run").glob("*.log")):
            if sanitizer_report(f.read_text(errors="replace")):
                bad.append(str(f))
        return bad

    # ------------------------------------------------------------ deposits
    def make_deposits(self, n: int, addrs: list[str] | None = None, amount_of=None) -> int:
        """Sends n transfers, spread over the depositor accounts, as
        eth_sendTransaction calls in JSON-RPC batches (the depositors are
        anvil's unlocked dev accounts; a cast process per transfer would cap
        a run at a few dozen deposits a second). Returns how many the node
        admitted; failures are logged, not raised."""
        addrs = addrs or self.deposit_addrs
        amount_of = amount_of or (lambda j: (1 + j % 50) * 10**18)  # 1..50 USDT
        rpc = Rpc(self.env["ZL_RPC_URLS"])
        if not hasattr(self, "nonces"):
            self.nonces = {}
        senders = self.depositor_addrs
        # --async-style sending never waits for mining, so the pending nonce
        # is stale: number each account's transfers ourselves.
        for who in senders:
            if who not in self.nonces:
                self.nonces[who] = int(rpc.call("eth_getTransactionCount", who, "pending"), 16)
        sent = 0
        errors = []
        for first in range(0, n, SEND_BATCH_MAX):
            calls = []
            for j in range(first, min(n, first + SEND_BATCH_MAX)):
                who = senders[j % len(senders)]
                data = transfer_data(addrs[j % len(addrs)], amount_of(j))
                calls.append(("eth_sendTransaction", [{
                    "from": who, "to": self.token, "gas": hex(TRANSFER_GAS), "nonce": hex(self.nonces[who]),
                    "maxFeePerGas": hex(DEPOSIT_MAX_FEE_WEI), "maxPriorityFeePerGas": hex(10**9), "data": data}]))
                self.nonces[who] += 1
            try:
                sent += len(rpc.batch(calls))
            except (RpcError, OSError) as e:
                # A nonce handed out but not admitted would leave a gap the
                # node waits on forever: re-read them from the node.
                errors.append(str(e))
                for who in senders:
                    self.nonces[who] = int(rpc.call("eth_getTransactionCount", who, "pending"), 16)
        rpc.close()
        if errors:
            self.log(f"{len(errors)} batches of transfers failed to send: {errors[0]}")
        self.sent += sent
        return sent

    def pool_drained(self, timeout_s: float = 180) -> dict:
        """Waits until the node's pool is empty (every deposit sent is mined
        or dropped); returns its last txpool_status, pending/queued as ints."""
        rpc = Rpc(self.env["ZL_RPC_URLS"])
        try:
            return wait_pool_empty(rpc, timeout_s)[0]
        finally:
            rpc.close()

    # ------------------------------------------------------------ state
    def counts(self, addrs: list[str] | None = None) -> dict[str, int]:
        """Rows per state, over every deposit or those to `addrs`."""
        if addrs is None:
            rows = self.psql("SELECT state, count(*) FROM deposits GROUP BY state")
        else:
            rows = self.psql("SELECT state, count(*) FROM deposits WHERE to_addr = ANY (string_to_array(:'v1', ','))"
                             " GROUP BY state", ",".join(a.lower() for a in addrs))
        c = {s: 0 for s in STATES}
        c.update({r[0]: int(r[1]) for r in rows})
        return c

    def latency_s(self) -> tuple[float, float]:
        """detect -> credited p50 and p99, from the state table's history."""
        lat = self.psql(
            "SELECT coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY s), 0),"
            " coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY s), 0) FROM ("
            " SELECT extract(epoch FROM h.at - d.created_at) AS s FROM deposits d"
            " JOIN deposit_history h ON h.deposit_id = d.deposit_id AND h.to_state = 'credited') x")[0]
        return float(lat[0]), float(lat[1])

    def audit(self) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bin / "zl-audit")], env=self.worker_env("audit"), capture_output=True,
                              text=True, timeout=600)


@contextlib.contextmanager
def scratch_pipeline(tag: str, kafka_nodes: int = 1):
    """A LocalPipeline of its own for one test, up, under REPO/.local (not
    pytest's tmp folder: PostgreSQL runs as its own user, who cannot enter
    it); its workers stopped, its services down and its folder removed
    afterwards, whether the test passed or not. kafka_nodes: as up()."""
    local = REPO / ".local" / f"test-{tag}-{uuid.uuid4().hex[:8]}"
    p = LocalPipeline(local, log=lambda _m: None)
    try:
        p.up(kafka_nodes=kafka_nodes)
        yield p
    finally:
        p.stop_workers()
        p.down()
        shutil.rmtree(local, ignore_errors=True)


# A second credit of a deposit, if one were coming, lands within this.
SECOND_CREDIT_WAIT_S = 3


def assert_credited_once(p: LocalPipeline, addr: str, eggs: str) -> None:
    """The one deposit to addr is credited exactly once: one row, credited,
    and one user credit of `eggs` in the ledger (checked again after a
    pause, so a late second credit is seen)."""
    time.sleep(SECOND_CREDIT_WAIT_S)
    c = p.counts([addr])
    assert sum(c.values()) == 1 and c["credited"] == 1, c
    entries = p.psql("SELECT e.amount FROM ledger_entries e JOIN deposits d USING (deposit_id)"
                     " WHERE d.to_addr = :'v1' AND e.kind = 'user_credit'", addr)
    assert entries == [[eggs]], f"expected one credit of {eggs} eggs, got {entries}"

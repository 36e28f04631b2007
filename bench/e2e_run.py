#!/usr/bin/env python3
"""bench/e2e_run.py: the trials of bench/e2e.sh (issue 10, end to end).

Every stage runs on this machine against real services: this run's Kafka,
PostgreSQL and Kubo (bench/run starts them) and a private anvil started here
(automine, so a mint's receipt exists as soon as it is sent; its own port,
stopped by pid). Each trial gets a fresh database (created, migrated, 100
deposit addresses COPYed, a credit rate; dropped afterwards), a fresh topic
prefix with BENCH_E2E_PARTITIONS partitions, and detect starting at the head,
so no trial sees another's deposits.

Trials, in this order:
  rate R     (for R in BENCH_E2E_RATES) one copy per stage; R transfers/s for
             BENCH_E2E_RATE_S seconds (e2e_load.py, open loop), then up to
             BENCH_E2E_DRAIN_S for the rest to be credited. Latency per deposit:
             deposits.created_at (detect's insert, i.e. detected) ->
             deposit_history 'credited'.at, both PostgreSQL now() on this
             host; also sent (the node admitted the transfer) -> credited.
  saturation C  (for C in BENCH_E2E_COPIES) BENCH_E2E_N transfers put on the
             chain first, then detect x1 and C copies of every other stage
             start; throughput = N / (workers started -> all credited), and
             steady = credits between the 10th and 90th percentile of credit
             times / that span.
  recovery   one copy per stage, BENCH_E2E_RECOVERY_RATE transfers/s going
             on; each stage in turn is SIGKILLed and restarted at once; the
             figure is restart (spawn) -> its first processed message (its
             /metrics counter zl_messages_total{outcome="ok"|"done"}, or
             zl_detect_deposits_total for detect, leaves 0). Run twice:
             default (dynamic) group membership and static membership
             (ZL_GROUP_INSTANCE_ID=<stage>-<copy>, as deploy/k8s and the harness set it).
While a trial runs, a sampler records every second: each worker's VmRSS and
VmHWM (/proc/<pid>/status), the rows per state (the queue in front of each
stage), and each worker's zl_consumer_lag. RSS figures are taken from the
rate trials (steady state).

Writes $BENCH_WORK/e2e.json, e2e.md, e2e/trials.jsonl and the series, and
calls bench/plot.py for the PNGs (bench/results/<date>-e2e-*.png).
"""
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "lib"))  # the harness
from zlharness import pg, web  # noqa: E402
from zlharness.chain import ANVIL_KEY0, Anvil, deploy_contracts, rpc_call  # noqa: E402
from zlharness.env import write_secret  # noqa: E402
from zlharness.kafka import create_topics  # noqa: E402
from zlharness.procs import run  # noqa: E402

BUILD = Path(os.environ.get("ZL_BUILD_DIR", REPO / "build" / "release"))
BIN = BUILD / "bin"
E = os.environ
E.setdefault("ZL_BIN_DIR", str(BIN))
WORK = Path(E["BENCH_WORK"]) / "e2e"
PIDS_FILE = E.get("BENCH_PIDS_FILE", "")
STAGES = ["detect", "verify", "ipfs-upload", "mint", "credit"]
STATES = ["detected", "verified", "pinned", "mint_submitted", "minted", "credited", "dead", "reorged", "below_minimum"]
DEPLOYER_KEY = ANVIL_KEY0


def knob(name, default):
    return E.get(name, default)


RATES = [float(x) for x in knob("BENCH_E2E_RATES", "10 100 500").split()]
RATE_S = float(knob("BENCH_E2E_RATE_S", "20"))
DRAIN_S = float(knob("BENCH_E2E_DRAIN_S", "60"))
COPIES = [int(x) for x in knob("BENCH_E2E_COPIES", "1 2 4").split()]
N_SAT = int(knob("BENCH_E2E_N", "2000"))
N_SINGLE = int(knob("BENCH_E2E_N_SINGLE", "300"))   # the ZL_MINT_BATCH_MAX=1 trial (one tx per deposit)
RATE_DEPOSITS_MAX = int(knob("BENCH_E2E_RATE_DEPOSITS_MAX", "5000"))  # caps seconds x rate
SAT_TIMEOUT_S = float(knob("BENCH_E2E_SAT_TIMEOUT_S", "150"))
PARTS = int(knob("BENCH_E2E_PARTITIONS", "8"))
SENDERS = int(knob("BENCH_E2E_SENDERS", "100"))
RECOVERY = knob("BENCH_E2E_RECOVERY", "1") == "1"
RECOVERY_RATE = float(knob("BENCH_E2E_RECOVERY_RATE", "20"))
RECOVERY_TIMEOUT_S = 30.0     # restart -> first processed, per stage
READY_TIMEOUT_S = 60.0        # workers' /health/ready after start
SAMPLE_INTERVAL_S = 1.0
KICK_INTERVAL_S = 0.05        # pool check of the chain's straggler miner
STOP_TIMEOUT_S = 20.0
DETECT_POLL_MS = knob("BENCH_E2E_DETECT_POLL_MS", "100")


def say(msg):
    print(f"bench: e2e: {msg}", file=sys.stderr, flush=True)


def die(msg):
    say("error: " + msg)
    sys.exit(1)


def now_ms():
    return int(time.time() * 1000)


def remember_pid(pid):
    if PIDS_FILE:
        with open(PIDS_FILE, "a") as f:
            f.write(f"{pid}\n")


def psql(dsn, sql, timeout=120):
    return pg.psql(sql, dsn=dsn, timeout=timeout)


def http_get(url, timeout=2.0):
    code, body = web.http_get(url, timeout)
    return code, body.decode(errors="replace")


def proc_status(pid):
    """VmHWM, VmRSS and RssAnon in KiB. VmRSS counts the shared libraries'
    pages too (about 12 MiB here: libcrypto, libc, librdkafka, gnutls, ...),
    which every worker on the host shares; RssAnon is the worker's own."""
    try:
        txt = open(f"/proc/{pid}/status").read()
    except OSError:
        return 0, 0, 0
    vals = []
    for field in ("VmHWM", "VmRSS", "RssAnon"):
        m = re.search(field + r":\s+(\d+)", txt)
        vals.append(int(m.group(1)) if m else 0)
    return tuple(vals)


def cpu_s(pid):
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return 0.0
    f = stat.rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid, depth=2):
    """CPU seconds of pid, of its children it reaped (cutime/cstime: e.g.
    PostgreSQL backends that exited) and of its live descendants (the
    backends still connected), depth levels down."""
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    total = sum(int(x) for x in f[11:15]) / os.sysconf("SC_CLK_TCK")
    if depth > 0:
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                g = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(g[1]) == pid:
                total += tree_cpu_s(int(d), depth - 1)
    return total


def machine_busy_s():
    """(busy, total) CPU seconds of the whole machine since boot, /proc/stat."""
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(v[:8]) - idle) / hz, sum(v[:8]) / hz


def service_pid(name):
    try:
        return int(open(Path(E["ZL_LOCAL_DIR"]) / name / f"{name}.pid").read().split()[0])
    except (OSError, KeyError, ValueError, IndexError):
        return None


class CpuMeter:
    """Where a trial's CPU went: each service (with its children), each
    stage's workers, and the machine as a whole; the rest (the load
    generator, this script, the OS) is the machine minus the named parts."""

    def __init__(self, chain, trial):
        self.chain, self.trial = chain, trial
        self.start = self._read()

    def _read(self):
        parts = {}
        for svc in ("kafka", "postgres", "ipfs"):
            pid = service_pid(svc)
            parts[svc] = tree_cpu_s(pid) if pid else 0.0
        parts["anvil"] = tree_cpu_s(self.chain.proc.pid, 0)
        for w in self.trial.workers:
            parts[w.stage] = parts.get(w.stage, 0.0) + cpu_s(w.proc.pid)
        busy, total = machine_busy_s()
        return {"parts": parts, "busy": busy, "total": total, "t": time.monotonic()}

    def result(self, deposits):
        end = self._read()
        wall = end["t"] - self.start["t"]
        parts = {k: round(end["parts"].get(k, 0.0) - v, 2) for k, v in self.start["parts"].items()}
        busy = end["busy"] - self.start["busy"]
        named = sum(parts.values())
        return {"wall_s": round(wall, 1), "cores": os.cpu_count(), "busy_s": round(busy, 2),
                "busy_share": round(busy / ((end["total"] - self.start["total"]) or 1), 3),
                "parts_s": parts, "other_s": round(busy - named, 2),
                "ms_per_deposit": {k: round(v * 1000 / deposits, 2) for k, v in parts.items()} if deposits else {},
                "busy_ms_per_deposit": round(busy * 1000 / deposits, 2) if deposits else None}


def metric_sum(text, name, label_filter=None):
    total, seen = 0.0, False
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        m = re.match(r"^([a-zA-Z_:]+)(\{[^}]*\})?\s+([-0-9.eE+]+)", line)
        if not m or m.group(1) != name:
            continue
        if label_filter and not any(lf in (m.group(2) or "") for lf in label_filter):
            continue
        total += float(m.group(3))
        seen = True
    return total if seen else None


def pctl(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


# ---------------------------------------------------------------- the chain
class Chain:
    def __init__(self, block_time_s=None, gas_limit=1_000_000_000):
        # Automine (block_time_s None): a transfer or a mint is mined as soon
        # as the node admits it; else a block every block_time_s seconds, as
        # on a real chain (bench/e2e_chain.py). 101 dev accounts: 0 deploys
        # and signs the mints, 1..100 deposit. Its state spill stays in the
        # bench folder (HOME, see Anvil).
        timed = [] if block_time_s is None else ["--block-time", str(block_time_s)]
        self.block_time_s = block_time_s
        self.anvil = Anvil(WORK, *timed, "--accounts", str(SENDERS + 1), "--balance", "1000000",
                           "--gas-limit", str(gas_limit),
                           # No historical states: beyond its in-memory window anvil wrote
                           # the whole state (~4 MB of JSON) to disk for every block, 14 GB
                           # and 3,600 files per suite, and its CPU per block grew with the
                           # chain (241 ms per single mint late in the suite). Nothing here
                           # reads state at an old block.
                           "--prune-history")
        self.proc = self.anvil.proc
        self.rpc = self.anvil.url
        remember_pid(self.proc.pid)
        self.keyfile = write_secret(WORK / "signer.key", DEPLOYER_KEY)
        addrs = deploy_contracts(self.rpc, self.keyfile)
        self.token, self.nft = addrs["ZL_TOKEN_ADDRESS"].lower(), addrs["ZL_NFT_ADDRESS"].lower()
        self.nft_block = self.block_number()
        self.timed = [] if block_time_s is None else ["--timed"]
        run([sys.executable, REPO / "bench" / "e2e_load.py", "fund", self.rpc, self.token, SENDERS, *self.timed],
            timeout=120)
        self.addrs_csv = WORK / "addresses.csv"
        with open(self.addrs_csv, "w") as f:
            for i in range(100):
                f.write(f"31337,0x{secrets.token_hex(20)},bench-u{i:03d}\n")
        # Anvil's automine can leave a transaction admitted while a block is
        # being mined in the pool until the next arrival (seen: mint txs
        # waiting seconds). A block is mined whenever the pool holds one,
        # checked every KICK_INTERVAL_S: a fast chain, never an idle wait.
        # A timed chain mines on its clock only.
        self.kicks = 0
        self._stop_kick = threading.Event()
        if block_time_s is None:
            self._kicker = threading.Thread(target=self._kick, daemon=True)
            self._kicker.start()
        say(f"chain {self.rpc}: token {self.token}, NFT {self.nft}, {SENDERS} funded senders")

    def _rpc(self, method, *params):
        return rpc_call(self.rpc, method, *params)

    def _kick(self):
        while not self._stop_kick.wait(KICK_INTERVAL_S):
            try:
                st = self._rpc("txpool_status")
                if int(st["pending"], 16) > 0:
                    self._rpc("evm_mine")
                    self.kicks += 1
            except Exception:
                pass

    def block_number(self):
        return self.anvil.block_number()

    def load(self, out_csv, rate=0.0, seconds=0.0, count=0):
        args = [sys.executable, REPO / "bench" / "e2e_load.py", "send", self.rpc, self.token, SENDERS, self.addrs_csv,
                out_csv, "--rate", rate, "--seconds", seconds, "--count", count, *self.timed]
        return json.loads(run(args, timeout=max(600, seconds * 3)).strip().splitlines()[-1])

    def stop(self):
        self._stop_kick.set()
        self.anvil.stop(signal.SIGTERM)


# ---------------------------------------------------------------- a trial
class Worker:
    def __init__(self, trial, stage, copy, static_member):
        self.trial, self.stage, self.copy, self.static = trial, stage, copy, static_member
        self.name = f"{stage}-{copy}"
        self.proc = None
        self.port = None
        self.restarts = 0

    def start(self):
        t = self.trial
        self.port_file = t.dir / f"{self.name}.{self.restarts}.port"
        env = dict(t.worker_env(), ZL_HTTP_PORT_FILE=str(self.port_file))
        args = [BIN / self.stage]
        if self.static and self.stage != "detect":
            # As deploy/k8s and the harness set it (KIP-345's group.instance.id).
            env["ZL_GROUP_INSTANCE_ID"] = self.name
        log = open(t.dir / f"{self.name}.log", "ab")
        self.started_ms = now_ms()
        self.proc = subprocess.Popen([str(a) for a in args], env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()
        remember_pid(self.proc.pid)
        self.port = None

    def url(self, path):
        if self.port is None:
            try:
                self.port = int(self.port_file.read_text().strip())
            except (OSError, ValueError):
                return None
        return f"http://127.0.0.1:{self.port}{path}"

    def metrics(self):
        u = self.url("/metrics")
        if u is None:
            return None
        code, body = http_get(u)
        return body if code == 200 else None

    def processed(self):
        m = self.metrics()
        if m is None:
            return None
        if self.stage == "detect":
            return metric_sum(m, "zl_detect_deposits_total")
        return metric_sum(m, "zl_messages_total", ['outcome="ok"', 'outcome="done"'])

    def ready(self):
        u = self.url("/health/ready")
        return u is not None and http_get(u)[0] == 200

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


class Trial:
    def __init__(self, chain, label, copies, static_member=False, extra_env=None):
        self.chain, self.label, self.copies = chain, label, copies
        self.tag = f"{int(time.time()) % 100000:05d}{secrets.token_hex(2)}"
        self.dir = WORK / f"{label}-{self.tag}"
        self.dir.mkdir(parents=True)
        self.db = f"zl_e2e_{self.tag}"
        self.dsn = pg.dsn_for(self.db)
        self.prefix = f"e2e.{self.tag}."
        self.extra_env = extra_env or {}
        self.static = static_member
        self.samples = []
        self._stop_sampler = threading.Event()
        pg.create_database(self.db)
        psql(self.dsn, f"\\copy deposit_addresses (chain_id, address, user_id) FROM '{chain.addrs_csv}' "
                       "WITH (FORMAT csv)")
        psql(self.dsn, f"INSERT INTO credit_rates (token, rate, note) VALUES ('{chain.token}', 100, 'bench e2e')")
        create_topics(dict(E, ZL_TOPIC_PREFIX=self.prefix), partitions=PARTS)
        self.start_block = chain.block_number() + 1
        self.workers = [Worker(self, "detect", 0, static_member)]
        for s in STAGES[1:]:
            self.workers += [Worker(self, s, i, static_member) for i in range(copies)]

    def worker_env(self):
        c = self.chain
        env = dict(E)
        env.update({
            "ZL_PG_DSN": self.dsn, "ZL_TOPIC_PREFIX": self.prefix, "ZL_HTTP_PORT": "0",
            "ZL_RPC_URLS": c.rpc, "ZL_CHAIN_ID": "31337", "ZL_MINT_CHAIN_ID": "31337",
            "ZL_TOKEN_ADDRESS": c.token, "ZL_NFT_ADDRESS": c.nft, "ZL_NFT_FROM_BLOCK": str(c.nft_block),
            "ZL_SIGNER_KEY_FILE": str(c.keyfile), "ZL_CONFIRMATIONS": "0", "ZL_DETECT_LAG_BLOCKS": "0",
            "ZL_DETECT_START_BLOCK": str(self.start_block), "ZL_DETECT_POLL_MS": DETECT_POLL_MS,
            "ZL_NFT_IMAGE_FILE": str(REPO / "deploy" / "assets" / "receipt.svg"),
            "ZL_MINT_RECEIPT_WAIT_MS": "200", "ZL_RETRY_TIERS_MS": "1000,2000,5000",
        })
        env.update(self.extra_env)
        return env

    def start_workers(self):
        self.t_start_ms = now_ms()
        for w in self.workers:
            w.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        pending = list(self.workers)
        while pending:
            pending = [w for w in pending if not w.ready()]
            dead = [w for w in self.workers if w.proc.poll() is not None]
            if dead:
                die(f"{self.label}: {dead[0].name} exited with {dead[0].proc.returncode} "
                    f"(log {self.dir / (dead[0].name + '.log')})")
            if time.monotonic() > deadline:
                die(f"{self.label}: not ready after {READY_TIMEOUT_S} s: {[w.name for w in pending]}")
            time.sleep(0.1)
        self.t_ready_ms = now_ms()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def counts(self):
        c = {s: 0 for s in STATES}
        for st, n in psql(self.dsn, "SELECT state, count(*) FROM deposits GROUP BY state"):
            c[st] = int(n)
        return c

    def _sample(self):
        while not self._stop_sampler.is_set():
            t = now_ms()
            s = {"t_ms": t, "states": self.counts(), "workers": {}}
            for w in self.workers:
                if w.proc.poll() is not None:
                    continue
                hwm, rss, anon = proc_status(w.proc.pid)
                m = w.metrics()
                lag = metric_sum(m, "zl_consumer_lag") if m else None
                s["workers"][w.name] = {"hwm_kib": hwm, "rss_kib": rss, "anon_kib": anon, "lag": lag, "cpu_s": round(cpu_s(w.proc.pid), 2)}
            self.samples.append(s)
            self._stop_sampler.wait(SAMPLE_INTERVAL_S)

    def wait_credited(self, n, timeout_s):
        deadline = time.monotonic() + timeout_s
        while True:
            c = self.counts()
            done = c["credited"] + c["dead"] + c["reorged"] + c["below_minimum"]
            if done >= n:
                return c, True
            if time.monotonic() > deadline:
                return c, False
            for w in self.workers:
                if w.proc.poll() is not None:
                    say(f"{self.label}: {w.name} exited with {w.proc.returncode}")
            time.sleep(0.5)

    def consumer_groups(self):
        """kafka-consumer-groups.sh's view (lag per group, this trial's topics
        only) while running. One JVM: it costs a core for a few seconds."""
        # The distribution's bin/kafka-consumer-groups.sh runs this class;
        # the local install has only the jars.
        home = Path(E.get("ZL_KAFKA_HOME", ""))
        if not (home / "lib").is_dir():
            return "Kafka jars not found (ZL_KAFKA_HOME)"
        cmd = ["java", "-Xmx256m", "-cp", f"{home}/lib/*"]
        log4j = Path(E.get("ZL_LOCAL_DIR", "")) / "kafka" / "log4j.properties"
        if log4j.exists():
            cmd.append(f"-Dlog4j.configuration=file:{log4j}")
        cmd += ["org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "--bootstrap-server",
                E["ZL_KAFKA_BROKERS"], "--describe", "--all-groups"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        lag = {}
        for line in p.stdout.splitlines():
            f = line.split()
            # GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG ...
            if len(f) >= 6 and f[1].startswith(self.prefix) and f[5].isdigit():
                key = f"{f[0]} on {f[1][len(self.prefix):]}"
                lag[key] = lag.get(key, 0) + int(f[5])
        (self.dir / "consumer-groups.txt").write_text(p.stdout + p.stderr)
        return "; ".join(f"{k}: lag {v}" for k, v in sorted(lag.items()) if v) or "no lag"

    def stop_workers(self):
        self._stop_sampler.set()
        if hasattr(self, "_sampler"):
            self._sampler.join(5)
        self.exit_codes = {}
        for w in self.workers:
            self.exit_codes[w.name] = w.stop()

    def latencies(self, sent_csv=None):
        rows = psql(self.dsn,
                    "SELECT d.tx_hash, extract(epoch FROM d.created_at) * 1000,"
                    " (SELECT extract(epoch FROM max(h.at)) * 1000 FROM deposit_history h"
                    "   WHERE h.deposit_id = d.deposit_id AND h.to_state = 'credited'),"
                    " (SELECT extract(epoch FROM max(h.at)) * 1000 FROM deposit_history h"
                    "   WHERE h.deposit_id = d.deposit_id AND h.to_state = 'verified'),"
                    " (SELECT extract(epoch FROM max(h.at)) * 1000 FROM deposit_history h"
                    "   WHERE h.deposit_id = d.deposit_id AND h.to_state = 'pinned'),"
                    " (SELECT extract(epoch FROM max(h.at)) * 1000 FROM deposit_history h"
                    "   WHERE h.deposit_id = d.deposit_id AND h.to_state = 'minted')"
                    " FROM deposits d")
        sent = {}
        if sent_csv and Path(sent_csv).exists():
            for line in open(sent_csv):
                h, _, ms = line.strip().partition(",")
                sent[h] = int(ms)
        out = {"n": len(rows)}
        f = lambda v: float(v) if v else None
        det = [(f(r[1]), f(r[2]), f(r[3]), f(r[4]), f(r[5]), sent.get(r[0])) for r in rows]
        cred = [x for x in det if x[1] is not None]
        out["credited"] = len(cred)

        def q(xs):
            xs = [x / 1000 for x in xs if x is not None]
            if not xs:
                return None
            return {"n": len(xs), "p50": round(pctl(xs, .5), 3), "p95": round(pctl(xs, .95), 3),
                    "p99": round(pctl(xs, .99), 3), "max": round(max(xs), 3), "mean": round(statistics.mean(xs), 3)}
        out["detected_to_credited_s"] = q([c - d for d, c, *_ in cred])
        out["sent_to_credited_s"] = q([c - s for d, c, v, p, m, s in cred if s is not None])
        out["sent_to_detected_s"] = q([d - s for d, c, v, p, m, s in det if s is not None])
        # Per stage: the time a deposit spent from the previous state's
        # transition to this stage's (queue + work).
        out["stage_s"] = {
            "verify (detected->verified)": q([v - d for d, c, v, p, m, s in cred if v]),
            "ipfs-upload (verified->pinned)": q([p - v for d, c, v, p, m, s in cred if p and v]),
            "mint (pinned->minted)": q([m - p for d, c, v, p, m, s in cred if m and p]),
            "credit (minted->credited)": q([c - m for d, c, v, p, m, s in cred if m]),
        }
        # Per stage: deposits it moved / (its first -> last transition): a
        # stage cannot beat the one before it, so the first big drop along
        # the pipeline is the limit.
        def rate(ts):
            ts = sorted(t for t in ts if t is not None)
            return round((len(ts) - 1) / ((ts[-1] - ts[0]) / 1000), 1) if len(ts) > 1 and ts[-1] > ts[0] else None
        out["stage_rate_per_s"] = {"detect": rate([x[0] for x in det]), "verify": rate([x[2] for x in det]),
                                   "ipfs-upload": rate([x[3] for x in det]), "mint": rate([x[4] for x in det]),
                                   "credit": rate([x[1] for x in det])}
        ct = sorted(c for _, c, *_ in cred)
        out["first_detected_ms"] = min((d for d, *_ in det), default=None)
        out["last_credited_ms"] = ct[-1] if ct else None
        if len(ct) >= 10:
            lo, hi = ct[len(ct) // 10], ct[(len(ct) * 9) // 10]
            k = (len(ct) * 9) // 10 - len(ct) // 10
            out["steady_credited_per_s"] = round(k / ((hi - lo) / 1000), 1) if hi > lo else None
        return out

    def rss(self):
        """Per stage: the largest VmRSS and VmHWM seen of any copy, over the
        second half of the samples (steady state)."""
        res = {}
        half = self.samples[len(self.samples) // 2:]
        for w in self.workers:
            rs = [s["workers"][w.name]["rss_kib"] for s in half if w.name in s["workers"]]
            hs = [s["workers"][w.name]["hwm_kib"] for s in self.samples if w.name in s["workers"]]
            an = [s["workers"][w.name].get("anon_kib", 0) for s in half if w.name in s["workers"]]
            if rs:
                r = res.setdefault(w.stage, {"rss_kib": 0, "hwm_kib": 0, "anon_kib": 0})
                r["rss_kib"] = max(r["rss_kib"], max(rs))
                r["hwm_kib"] = max(r["hwm_kib"], max(hs))
                r["anon_kib"] = max(r["anon_kib"], max(an))
        return res

    def queue_peaks(self):
        """Per state: the most rows that waited in it at one sample (the queue
        in front of the next stage), and consumer lag peaks per stage."""
        peaks = {st: max((s["states"][st] for s in self.samples), default=0) for st in STATES}
        lag = {}
        for s in self.samples:
            for name, v in s["workers"].items():
                st = name.rsplit("-", 1)[0]
                if v["lag"] is not None:
                    lag.setdefault(st, {})
                    lag[st][s["t_ms"]] = lag[st].get(s["t_ms"], 0) + v["lag"]
        return peaks, {st: max(d.values()) for st, d in lag.items()}

    def cleanup(self):
        (self.dir / "samples.json").write_text(json.dumps(self.samples))
        pg.drop_database(self.db)


# ---------------------------------------------------------------- trials
def record(rec):
    with open(WORK / "trials.jsonl", "a") as f:
        f.write(json.dumps(rec, sort_keys=True) + "\n")


def rate_trial(chain, rate, extra_env=None, label_extra=""):
    t = Trial(chain, f"rate{int(rate)}{label_extra}", 1, extra_env=extra_env)
    try:
        t.start_workers()
        sent_csv = t.dir / "sent.csv"
        load = chain.load(sent_csv, rate=rate, seconds=min(RATE_S, RATE_DEPOSITS_MAX / rate))
        t_sent = now_ms()
        c, complete = t.wait_credited(load["sent"], DRAIN_S)
        t_done = now_ms()
        t.stop_workers()
        lat = t.latencies(sent_csv)
        peaks, lag_peaks = t.queue_peaks()
        span_s = (lat["last_credited_ms"] - lat["first_detected_ms"]) / 1000 if lat.get("last_credited_ms") else 0
        rec = {"kind": "rate", "label": t.label, "offered_per_s": rate, "load": load, "copies": 1, "states": c,
               "complete": complete, "drain_after_send_s": round((t_done - t_sent) / 1000, 1), "latency": lat,
               "credited_per_s": round(lat["credited"] / span_s, 1) if span_s > 0 else 0,
               "rss": t.rss(), "queue_peaks": peaks, "lag_peaks": lag_peaks, "exit_codes": t.exit_codes,
               "extra_env": extra_env or {}, "load1": os.getloadavg()[0], "dir": str(t.dir)}
        record(rec)
        d = lat["detected_to_credited_s"] or {}
        say(f"rate {rate}/s: sent {load['sent']} at {load['achieved_rate']}/s, credited {lat['credited']}"
            f"{'' if complete else ' (INCOMPLETE)'}, detected->credited p50 {d.get('p50')} p99 {d.get('p99')} s")
        return rec
    finally:
        t.stop_workers()
        t.cleanup()


def saturation_trial(chain, copies, n, extra_env=None, label_extra="", ask_groups=False):
    t = Trial(chain, f"sat{copies}{label_extra}", copies, extra_env=extra_env)
    try:
        sent_csv = t.dir / "sent.csv"
        load = chain.load(sent_csv, count=n)
        t.start_workers()
        cpu = CpuMeter(chain, t)
        # Half-way, Kafka's own view of the lag per group (slow: a JVM).
        groups = None
        mid, complete = None, False
        deadline = time.monotonic() + SAT_TIMEOUT_S
        while time.monotonic() < deadline:
            c = t.counts()
            if c["credited"] + c["dead"] + c["reorged"] + c["below_minimum"] >= n:
                complete = True
                break
            if ask_groups and groups is None and now_ms() - t.t_ready_ms > 3000:
                groups = t.consumer_groups()
                mid = c
            time.sleep(0.5)
        t_done = now_ms()
        c = t.counts()
        cpu_use = cpu.result(c["credited"])
        t.stop_workers()
        lat = t.latencies(sent_csv)
        peaks, lag_peaks = t.queue_peaks()
        wall_s = (t_done - t.t_start_ms) / 1000
        rec = {"kind": "saturation", "label": t.label, "copies": copies, "n": n, "load": load, "states": c,
               "complete": complete, "wall_s": round(wall_s, 1),
               "wall_credited_per_s": round(c["credited"] / wall_s, 1),
               "steady_credited_per_s": lat.get("steady_credited_per_s"), "latency": lat, "rss": t.rss(),
               "queue_peaks": peaks, "lag_peaks": lag_peaks, "consumer_groups_mid": groups, "states_mid": mid,
               "exit_codes": t.exit_codes, "extra_env": extra_env or {}, "load1": os.getloadavg()[0],
               "cpu": cpu_use, "dir": str(t.dir)}
        record(rec)
        say(f"saturation x{copies}: {c['credited']}/{n} credited in {wall_s:.1f} s "
            f"({rec['wall_credited_per_s']}/s wall, {rec['steady_credited_per_s']}/s steady)"
            f"{'' if complete else ' (INCOMPLETE)'}; groups mid-run: {groups}")
        return rec
    finally:
        t.stop_workers()
        t.cleanup()


def recovery_trial(chain, static_member, extra_env=None, rate=RECOVERY_RATE):
    t = Trial(chain, "recovery-static" if static_member else "recovery-dynamic", 1, static_member=static_member,
              extra_env=extra_env)
    results = {}
    stop_load = threading.Event()
    sent_total = [0]

    def loader():
        i = 0
        while not stop_load.is_set():
            r = chain.load(t.dir / f"sent.{i}.csv", rate=rate, seconds=5)
            sent_total[0] += r["sent"]
            i += 1

    try:
        t.start_workers()
        th = threading.Thread(target=loader, daemon=True)
        th.start()
        time.sleep(3)
        for w in [w for w in t.workers if w.copy == 0]:
            base = w.processed() or 0
            killed_ms = now_ms()
            w.stop(signal.SIGKILL)
            w.restarts += 1
            w.start()
            t0 = w.started_ms
            first_ms = ready_ms = None
            while now_ms() - t0 < RECOVERY_TIMEOUT_S * 1000:
                if ready_ms is None and w.ready():
                    ready_ms = now_ms() - t0
                p = w.processed()
                if p is not None and p > 0:
                    first_ms = now_ms() - t0
                    break
                if w.proc.poll() is not None:
                    break
                time.sleep(0.05)
            if ready_ms is None and w.ready():
                ready_ms = now_ms() - t0
            results[w.stage] = {"first_processed_s": None if first_ms is None else round(first_ms / 1000, 2),
                                "killed_to_first_processed_s":
                                    None if first_ms is None else round((t0 + first_ms - killed_ms) / 1000, 2),
                                "ready_s": None if ready_ms is None else round(ready_ms / 1000, 2),
                                "processed_before_kill": base}
            say(f"{t.label}: {w.stage} restart -> first processed {results[w.stage]['first_processed_s']} s, "
                f"ready {results[w.stage]['ready_s']} s")
            time.sleep(2)
        stop_load.set()
        th.join(60)
        c, complete = t.wait_credited(sent_total[0], DRAIN_S)
        t.stop_workers()
        dup = psql(t.dsn, "SELECT count(*) FROM (SELECT deposit_id FROM deposit_history WHERE to_state = 'credited'"
                          " GROUP BY deposit_id HAVING count(*) > 1) x")[0][0]
        rec = {"kind": "recovery", "label": t.label, "static_membership": static_member, "results": results,
               "sent": sent_total[0], "states": c, "complete": complete, "credited_twice": int(dup),
               "exit_codes": t.exit_codes, "load1": os.getloadavg()[0], "dir": str(t.dir)}
        record(rec)
        return rec
    finally:
        stop_load.set()
        t.stop_workers()
        t.cleanup()


def mint_batch_supported():
    p = subprocess.run([str(BIN / "mint"), "--help"], capture_output=True, text=True, timeout=10)
    return "ZL_MINT_BATCH_MAX" in (p.stdout + p.stderr)


def main():
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "trials.jsonl").write_text("")
    for b in STAGES + ["zl-migrate", "zl-topics"]:
        if not (BIN / b).exists():
            die(f"{BIN / b} missing: run make first")
    t0 = time.monotonic()
    chain = Chain()
    meta = {"rates": RATES, "rate_s": RATE_S, "copies": COPIES, "n_saturation": N_SAT, "partitions": PARTS,
            "senders": SENDERS, "rate_deposits_max": RATE_DEPOSITS_MAX, "n_single": N_SINGLE, "detect_poll_ms": int(DETECT_POLL_MS), "mint_batch_supported": mint_batch_supported(),
            "chain": "anvil automine (private, this run)", "straggler_check_ms": int(KICK_INTERVAL_S * 1000), "confirmations": 0, "mint_receipt_wait_ms": 200}
    out = {"meta": meta, "rate": [], "saturation": [], "recovery": []}
    try:
        # The headline: the stages' defaults, 1, 2, 4 copies.
        for c in COPIES:
            out["saturation"].append(saturation_trial(chain, c, N_SAT, ask_groups=(c == COPIES[0])))
        # Beside it, mint without batching (one tx per deposit), when mint
        # has the setting at all.
        if meta["mint_batch_supported"] and N_SINGLE > 0:
            out["saturation"].append(saturation_trial(chain, COPIES[0], N_SINGLE, {"ZL_MINT_BATCH_MAX": "1"}, "-mb1"))
        for r in RATES:
            out["rate"].append(rate_trial(chain, r))
        if RECOVERY:
            out["recovery"].append(recovery_trial(chain, False))
            out["recovery"].append(recovery_trial(chain, True))
    finally:
        chain.stop()
        meta["duration_s"] = round(time.monotonic() - t0)
        meta["straggler_blocks"] = chain.kicks
        (Path(E["BENCH_WORK"]) / "e2e.raw.json").write_text(json.dumps(out, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

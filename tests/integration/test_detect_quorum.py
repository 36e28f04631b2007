"""Two sources agree before detect records a range (issue 18), against a
private anvil, the real database and broker.

An endpoint that lies about eth_getLogs (drops every log, or invents a
Transfer to one of our addresses) sits in front of anvil beside honest ones.
With k = 2 (ZL_RPC_QUORUM=2, which ZL_DETECT_CONFIRM_K defaults to) detect
reads each range from the endpoints until two give the same digest: a
disagreement holds the range (the cursor stays) and shows in
zl_detect_range_disagreements_total and the log; nothing is skipped, nothing
invented is recorded.
"""
import json
import re
import secrets
import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from chain_helpers import Chain, Workers, chain, dep_id, register_addresses, rows_for, wait_until, workers  # noqa: F401
from runtime_helpers import psql
from zlharness.chain import rpc_call
from zlharness.rpc_fault_proxy import rewrite_answers
from zlharness.web import http_get

TRANSFER_TOPIC0 = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


class _LyingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):
        proxy = self.server.proxy
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        req = urllib.request.Request(proxy.upstream, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            answer = r.read()
        if proxy.mode != "ok":
            answer = json.dumps(rewrite_answers(json.loads(body), json.loads(answer), proxy.rewrite)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


class LyingProxy:
    """TEST CODE: forwards to anvil and rewrites eth_getLogs answers (single
    calls and batches). Modes: ok; drop (every log list is []); invent (a
    Transfer of `token` to `fake_to` in block `fake_block` is added to every
    answer whose range holds that block)."""

    def __init__(self, upstream: str, mode: str = "ok"):
        self.upstream = upstream
        self.mode = mode
        self.token = ""
        self.fake_to = ""
        self.fake_block = -1
        self.fake_tx = "0x" + secrets.token_hex(32)
        self.lied = 0
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _LyingHandler)
        self._server.daemon_threads = True
        self._server.proxy = self
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def rewrite(self, call: dict, answer: dict) -> dict:
        if call.get("method") != "eth_getLogs" or not isinstance(answer.get("result"), list):
            return answer
        if self.mode == "drop" and answer["result"]:
            self.lied += 1
            return dict(answer, result=[])
        if self.mode == "cosmetic":
            # What two honest nodes may differ in: order of the list and of
            # the fields, extra fields, hex case, a reorged log still shown.
            out = []
            for log in reversed(answer["result"]):
                data = "0x" + log["data"][2:].upper()
                out.append(dict(reversed(list(log.items())), blockTimestamp="0x1", data=data))
            if out:
                out.append(dict(out[0], transactionHash="0x" + "cd" * 32, removed=True))
            return dict(answer, result=out)
        if self.mode == "invent":
            f = call["params"][0]
            lo, hi = int(f["fromBlock"], 16), int(f["toBlock"], 16)
            topics = f.get("topics", [])
            to_topic = "0x" + "00" * 12 + self.fake_to[2:]
            if lo <= self.fake_block <= hi and (len(topics) < 3 or topics[2] in (None, to_topic)):
                self.lied += 1
                fake = {"address": self.token, "topics": [TRANSFER_TOPIC0, "0x" + "00" * 12 + "66" * 20, to_topic],
                        "data": "0x" + f"{10**21:064x}", "blockNumber": hex(self.fake_block),
                        "blockHash": "0x" + "ab" * 32, "transactionHash": self.fake_tx,
                        "transactionIndex": "0x0", "logIndex": "0x0", "removed": False}
                return dict(answer, result=answer["result"] + [fake])
        return answer

    def close(self):
        self._server.shutdown()
        self._server.server_close()


def disagreements(workers: Workers, outcome: str) -> float:
    text = http_get(f"http://127.0.0.1:{workers.http_port('detect')}/metrics")[1].decode()
    m = re.search(rf'^zl_detect_range_disagreements_total{{outcome="{outcome}"}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def cursor_of(token: str) -> int:
    rows = psql("SELECT block_number FROM detector_cursor WHERE token = :'v1'", token)
    return int(rows[0][0]) if rows else -1


def block_of_tx(chain: Chain, tx: str) -> int:
    return int(rpc_call(chain.url, "eth_getTransactionReceipt", tx)["blockNumber"], 16)


def test_an_endpoint_dropping_logs_holds_the_range_until_it_is_confirmed(chain, workers):
    """Guards against one endpoint's empty eth_getLogs answer moving the
    cursor past deposits for good: with k = 2 the range is held (cursor
    stays, disagreement counted and logged) and the deposit is recorded once
    the endpoints agree."""
    addrs = list(register_addresses(2))
    tx = chain.transfer(0, addrs[0], 1234)
    chain.mine(2)
    block = block_of_tx(chain, tx)
    liar, honest = LyingProxy(chain.url, "drop"), LyingProxy(chain.url)
    try:
        workers.start("detect", "detect", ZL_RPC_URLS=f"{liar.url},{honest.url}", ZL_RPC_QUORUM="2")
        wait_until(lambda: disagreements(workers, "held") > 0, 30, "a held range on /metrics")
        time.sleep(2)
        assert liar.lied > 0
        assert dep_id(tx, 0) not in rows_for(chain.token)
        assert cursor_of(chain.token) < block, "the cursor moved past a range the endpoints disagree on"
        log = workers.log("detect")
        assert "range held" in log and "digests" in log, log[-3000:]
        assert f"{block}" in log
        liar.mode = "ok"  # the disagreement clears: the deposit is recorded
        wait_until(lambda: dep_id(tx, 0) in rows_for(chain.token), 30, "the held deposit recorded")
        assert list(rows_for(chain.token)) == [dep_id(tx, 0)]
    finally:
        liar.close()
        honest.close()


def test_an_endpoint_dropping_logs_is_outvoted_by_two_honest_ones(chain, workers):
    """Guards against a liar deciding a range when k honest endpoints agree:
    the honest answer is confirmed by a third endpoint, the deposit recorded
    while the liar still lies, and the disagreement counted."""
    addrs = list(register_addresses(2))
    tx = chain.transfer(0, addrs[1], 777)
    chain.mine(2)
    liar, a, b = LyingProxy(chain.url, "drop"), LyingProxy(chain.url), LyingProxy(chain.url)
    try:
        workers.start("detect", "detect", ZL_RPC_URLS=f"{liar.url},{a.url},{b.url}", ZL_RPC_QUORUM="1",
                      ZL_DETECT_CONFIRM_K="2")
        wait_until(lambda: dep_id(tx, 0) in rows_for(chain.token), 30, "the deposit recorded")
        assert liar.lied > 0
        wait_until(lambda: disagreements(workers, "outvoted") > 0, 10, "the outvoted liar on /metrics")
        assert "outvoted" in workers.log("detect")
    finally:
        liar.close()
        a.close()
        b.close()


def test_an_invented_transfer_is_never_recorded(chain, workers):
    """Guards against a fabricated log to a registered address becoming a
    deposit (and then a mint and a credit): with k = 2 the honest endpoint
    does not confirm it, so no row is recorded for it, and the real deposit
    in the same range is recorded once the liar stops."""
    addrs = list(register_addresses(2))
    tx = chain.transfer(0, addrs[0], 4321)
    chain.mine(2)
    liar, honest = LyingProxy(chain.url, "invent"), LyingProxy(chain.url)
    liar.token, liar.fake_to, liar.fake_block = chain.token, addrs[1], block_of_tx(chain, tx)
    fake_id = dep_id(liar.fake_tx, 0)
    try:
        workers.start("detect", "detect", ZL_RPC_URLS=f"{liar.url},{honest.url}", ZL_RPC_QUORUM="2")
        wait_until(lambda: disagreements(workers, "held") > 0, 30, "a held range on /metrics")
        time.sleep(2)
        assert liar.lied > 0
        assert fake_id not in rows_for(chain.token)
        liar.mode = "ok"
        wait_until(lambda: dep_id(tx, 0) in rows_for(chain.token), 30, "the real deposit recorded")
        time.sleep(1)
        assert set(rows_for(chain.token)) == {dep_id(tx, 0)}
        assert psql("SELECT count(*) FROM deposits WHERE tx_hash = :'v1'", liar.fake_tx) == [["0"]]
    finally:
        liar.close()
        honest.close()


def test_honest_endpoints_that_differ_only_in_form_agree(chain, workers):
    """Guards against the confirmation holding ranges on harmless
    differences between honest nodes (log order, field order, extra fields,
    hex case, a reorged log still listed with removed: true): every deposit
    is recorded and no disagreement is counted."""
    addrs = list(register_addresses(3))
    chain.automine(False)
    txs = [chain.transfer(i, addrs[i], 100 + i, wait=False) for i in range(3)]
    chain.mine(1)
    chain.automine(True)
    chain.mine(2)
    odd, plain = LyingProxy(chain.url, "cosmetic"), LyingProxy(chain.url)
    want = {dep_id(tx, li) for tx, li in chain.transfers_to(set(addrs))}
    assert len(want) == 3 and {w.split(":")[1] for w in want} == {t.lower() for t in txs}
    try:
        workers.start("detect", "detect", ZL_RPC_URLS=f"{odd.url},{plain.url}", ZL_RPC_QUORUM="2")
        wait_until(lambda: set(rows_for(chain.token)) == want, 30, "every deposit recorded")
        text = http_get(f"http://127.0.0.1:{workers.http_port('detect')}/metrics")[1].decode()
        assert 'zl_detect_range_disagreements_total{outcome="held"} 0' in text, "confirmation not on"
        assert 'zl_detect_range_disagreements_total{outcome="outvoted"} 0' in text
    finally:
        odd.close()
        plain.close()


def test_more_confirmations_than_endpoints_or_plain_http_off_loopback_refuse_to_start(chain, workers):
    """Guards against a k no set of endpoints can reach (every range held
    forever, silently) and against plain http to another machine, whose
    answers anyone on the path could change: both are configuration errors
    naming the setting."""
    p = workers.start("detect", "detect-k", ZL_DETECT_CONFIRM_K="2")
    assert p.wait(timeout=30) == 2
    assert "ZL_DETECT_CONFIRM_K" in workers.log("detect-k")
    p = workers.start("detect", "detect-http", ZL_RPC_URLS=f"{chain.url},http://rpc.example.invalid:8545")
    assert p.wait(timeout=30) == 2
    log = workers.log("detect-http")
    assert "http://rpc.example.invalid:8545" in log and "ZL_RPC_ALLOW_HTTP" in log, log[-2000:]

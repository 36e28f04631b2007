"""TEST CODE: a JSON-RPC HTTP proxy in front of anvil that misbehaves on
command, for the failover tests. Runs in the pytest process on threads.

Modes (set proxy.mode at any time):
  ok       forward to the upstream
  dead     refuse connections (the listening socket is closed)
  429      HTTP 429 with Retry-After: 1
  500      HTTP 500
  garbage  HTTP 200 with a body that is not JSON
  stall    hold the request for stall_s, then answer (hedging bait)
  32005    JSON-RPC error -32005 "limit exceeded" (rate limited)
and two that lie (issue 18: a second endpoint must outvote or hold them):
  drop_logs   every eth_getLogs answer is [] (hides deposits)
  head_ahead  the head (eth_blockNumber, eth_getBlockByNumber "latest") is
              ahead_blocks blocks ahead (would pass deposits early)
"""
import json
import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


LYING_MODES = ("drop_logs", "head_ahead")
AHEAD_BLOCKS = 1000


def rewrite_answers(calls, answers, rewrite):
    """Applies rewrite(call, answer) -> answer to one JSON-RPC answer or to
    each answer of a batch (matched to its call by id). Returns the result."""
    if isinstance(calls, list) and isinstance(answers, list):
        by_id = {c.get("id"): c for c in calls}
        return [rewrite(by_id.get(a.get("id"), {}), a) for a in answers]
    if isinstance(calls, dict) and isinstance(answers, dict):
        return rewrite(calls, answers)
    return answers


def lie(mode: str, ahead_blocks: int, call: dict, answer: dict) -> dict:
    """The answer a lying endpoint in `mode` gives to `call`."""
    res = answer.get("result")
    method = call.get("method")
    if mode == "drop_logs" and method == "eth_getLogs" and isinstance(res, list):
        return dict(answer, result=[])
    if mode == "head_ahead":
        if method == "eth_blockNumber" and isinstance(res, str):
            return dict(answer, result=hex(int(res, 16) + ahead_blocks))
        if (method == "eth_getBlockByNumber" and (call.get("params") or [None])[0] == "latest"
                and isinstance(res, dict)):
            return dict(answer, result=dict(res, number=hex(int(res["number"], 16) + ahead_blocks)))
    return answer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; with Nagle on, the body waits
    # for the client's delayed ACK of the headers (40 ms on Linux), which
    # made every proxied call take 40 ms and a 2,000-deposit chaos schedule
    # spend minutes in verify.
    disable_nagle_algorithm = True

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body: bytes, extra: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        proxy = self.server.proxy
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        proxy.hits += 1
        mode = proxy.mode
        try:
            if mode == "429":
                return self._send(429, b"{}", {"Retry-After": "1"})
            if mode == "500":
                return self._send(500, b"internal error")
            if mode == "garbage":
                return self._send(200, b"<html>definitely not json")
            if mode == "32005":
                return self._send(200, b'{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"limit exceeded"}}')
            if mode == "stall":
                time.sleep(proxy.stall_s)
            req = urllib.request.Request(proxy.upstream, data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as r:
                answer = r.read()
            if mode in LYING_MODES:
                honest = json.loads(answer)
                told = rewrite_answers(json.loads(body), honest, lambda c, a: lie(mode, proxy.ahead_blocks, c, a))
                proxy.lies += told != honest
                answer = json.dumps(told).encode()
            return self._send(200, answer)
        except (BrokenPipeError, ConnectionResetError):
            pass


class FaultProxy:
    def __init__(self, upstream: str, mode: str = "ok", stall_s: float = 3.0, ahead_blocks: int = AHEAD_BLOCKS):
        self.upstream = upstream
        self.ahead_blocks = ahead_blocks
        self.mode = mode
        self.stall_s = stall_s
        self.hits = 0
        self.lies = 0  # answers a lying mode changed
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = None
        if mode != "dead":
            self._start()

    def _start(self):
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        self._server.daemon_threads = True
        self._server.proxy = self
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def set_mode(self, mode: str):
        if mode == "dead" and self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        elif mode != "dead" and self._server is None:
            self._start()
        self.mode = mode

    def close(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

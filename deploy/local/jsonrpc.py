"""A JSON-RPC client for the local chain: one kept-alive HTTP connection,
calls sent in batches. A cast process per call costs 50-100 ms; a batch of a
hundred calls on this connection costs a few ms. Used by the deposit senders
of the local pipeline (deploy/local/pipeline.py) and the benchmark load
generator (bench/e2e_load.py). Limits: HTTP_TIMEOUT_S per request.
"""
import http.client
import json
import urllib.parse

HTTP_TIMEOUT_S = 60


class RpcError(Exception):
    """The node answered a call with an error; the message holds it."""


class Rpc:
    """One kept-alive HTTP connection; batches in, results out in call order
    (an error in any call raises RpcError). Not thread-safe: one per thread."""

    def __init__(self, url: str):
        u = urllib.parse.urlparse(url.split(",")[0])
        self.host, self.port, self.path = u.hostname, u.port or 80, u.path or "/"
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=HTTP_TIMEOUT_S)
        self.next_id = 1

    def batch(self, calls):
        reqs = []
        for method, params in calls:
            reqs.append({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
            self.next_id += 1
        body = json.dumps(reqs)
        # One retry on a fresh connection: the node closes idle keep-alives.
        for attempt in range(2):
            try:
                self.conn.request("POST", self.path, body, {"Content-Type": "application/json"})
                out = json.loads(self.conn.getresponse().read())
                break
            except (http.client.HTTPException, ConnectionError):
                if attempt:
                    raise
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=HTTP_TIMEOUT_S)
        if isinstance(out, dict):
            out = [out]
        out.sort(key=lambda o: o.get("id", 0))
        bad = [o for o in out if "error" in o]
        if bad:
            raise RpcError(f"rpc error: {bad[0]['error']}")
        return [o["result"] for o in out]

    def call(self, method, *params):
        return self.batch([(method, list(params))])[0]

    def close(self) -> None:
        self.conn.close()


def word(x: int) -> str:
    """x as one 32-byte ABI word, hex without 0x."""
    return hex(x)[2:].rjust(64, "0")

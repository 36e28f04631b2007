"""A JSON-RPC client for the local chain: one kept-alive HTTP connection,
calls sent in batches. A cast process per call costs 50-100 ms; a batch of a
hundred calls on this connection costs a few ms. Used by the deposit senders
of the local pipeline (zlharness/pipeline.py) and the benchmark load
generator (bench/e2e_load.py). Limits: HTTP_TIMEOUT_S per request.
"""
import http.client
import json
import time
import urllib.parse

HTTP_TIMEOUT_S = 60
# Between two looks at the node's pool while waiting for it to empty.
POOL_POLL_S = 0.02
TRANSFER_SELECTOR = "0xa9059cbb"  # transfer(address,uint256)


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


def transfer_data(to: str, amount: int) -> str:
    """Calldata of ERC-20 transfer(to, amount)."""
    return TRANSFER_SELECTOR + word(int(to, 16)) + word(amount)


def wait_pool_empty(rpc: Rpc, timeout_s: float, mine: bool = False) -> tuple[dict, float]:
    """Waits until the node's pool holds nothing (every tx sent is mined or
    dropped). mine: also ask for a block while it does not (under automine a
    tx admitted before the one with its previous nonce can stay in the pool
    until the next arrival). Returns txpool_status (pending/queued as ints)
    and the seconds waited; the pool may still hold txs after timeout_s."""
    t0 = time.monotonic()
    while True:
        st = {k: int(v, 16) for k, v in rpc.call("txpool_status").items()}
        waited = time.monotonic() - t0
        if st["pending"] + st["queued"] == 0 or waited > timeout_s:
            return st, waited
        if mine:
            rpc.call("evm_mine")
        time.sleep(POOL_POLL_S)

"""A webhook subscriber for the notify stage (issue 21), in this process:
checks each delivery's signature with the documented recipe
(docs/architecture.md, "Notify": ZL-Signature t=<unix>,v1=<hex
HMAC-SHA256(secret, "<t>.<body>")>) and counts, per credited deposit, how
often each delivery id came. Used by the chaos suite and the demo."""
import hashlib
import hmac
import http.server
import json
import threading
import time

# A signature older or newer than this is refused, as a receiver should.
TOLERANCE_S = 300


class WebhookReceiver:
    """notify's one subscriber: checks each delivery's signature with the
    documented recipe (docs/architecture.md, "notify") and counts, per
    credited deposit, how often each delivery id came."""

    def __init__(self, secret: str):
        self.secret = secret.encode()
        self.lock = threading.Lock()
        self.by_deposit: dict[str, dict[str, int]] = {}
        self.bad = 0
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = rec.take(self.headers.get("ZL-Signature", ""), self.headers.get("ZL-Delivery-Id", ""), body)
                self.send_response(200 if ok else 400)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self, sig: str, delivery_id: str, body: bytes) -> bool:
        parts = sig.split(",")
        try:
            t = int(parts[0].removeprefix("t="))
            dep = json.loads(body)["deposit_id"]
        except (ValueError, KeyError, TypeError):
            t, dep = 0, ""
        want = hmac.new(self.secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        ok = bool(dep) and abs(time.time() - t) <= TOLERANCE_S and any(
            hmac.compare_digest(want, p[3:]) for p in parts[1:] if p.startswith("v1="))
        with self.lock:
            if not ok:
                self.bad += 1
                return False
            ids = self.by_deposit.setdefault(dep, {})
            ids[delivery_id] = ids.get(delivery_id, 0) + 1
        return True

    def delivered(self) -> set[str]:
        with self.lock:
            return set(self.by_deposit)

    def judge(self, credited: set[str]) -> dict:
        """missing: credits never delivered; two_ids: credits delivered under
        more than one id; duplicates: repeats of one id (at least once)."""
        with self.lock:
            seen = {d: dict(ids) for d, ids in self.by_deposit.items() if d in credited}
            bad = self.bad
        return {"missing": sorted(credited - set(seen)), "two_ids": sorted(d for d, i in seen.items() if len(i) > 1),
                "deliveries": sum(sum(i.values()) for i in seen.values()),
                "duplicates": sum(n - 1 for i in seen.values() for n in i.values()), "bad_signatures": bad}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

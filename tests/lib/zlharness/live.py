"""The live updates server (common/live.h) from the outside: the runner
(tests/c/live_server), tokens minted by the documented recipe, a
Server-Sent Events client, and headless Chromium driven over the DevTools
protocol (--remote-debugging-pipe: the standard library is enough, no
websocket package)."""
import hashlib
import hmac
import http.client
import json
import os
import select
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

from .env import need_env, write_secret
from .procs import free_port, sanitizer_report, spawn, stop, wait_until
from .web import http_get

# How long the runner may take to listen.
START_TIMEOUT_S = 20
# A DevTools command's answer comes within this.
CDP_TIMEOUT_S = 30


def mint_token(secret: str, user_id: str, expiry_unix: int) -> str:
    """The token recipe of docs/operations.md, as an operator's backend would
    write it: <user_id>.<expiry>.<hex HMAC-SHA256(secret, "<user_id>.<expiry>")>."""
    signed = f"{user_id}.{expiry_unix}"
    return signed + "." + hmac.new(secret.encode(), signed.encode(), hashlib.sha256).hexdigest()


class LiveServer:
    """tests/c/live_server against dsn on a free port, with a fresh secret;
    or, with binary, that binary (the notify stage, which serves it)."""

    def __init__(self, workdir: Path, dsn: str, env: dict | None = None, pid_file: Path | None = None,
                 binary: Path | None = None, **settings):
        """pid_file: where tests/run-all finds it if pytest is killed (a
        LocalPipeline's run folder)."""
        self.workdir = workdir
        self.pid_file = pid_file
        self.secret = os.urandom(16).hex()
        self.secret_file = write_secret(workdir / "live.secret", self.secret)
        self.port = free_port()
        self.env = dict(env or os.environ, ZL_PG_DSN=dsn, ZL_LIVE_PORT=str(self.port),
                        ZL_LIVE_TOKEN_SECRET_FILE=str(self.secret_file), ZL_LIVE_POLL_INTERVAL_MS="100",
                        ZL_LIVE_KEEPALIVE_MS="1000")
        self.env.update({k: str(v) for k, v in settings.items()})
        self.binary = binary or Path(need_env("ZL_BUILD_DIR", self.env)) / "tests" / "live_server"
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "LiveServer":
        self.proc = spawn([self.binary], self.workdir / "live.log", self.env, self.pid_file)
        wait_until(lambda: http_get(self.url + "/", timeout=2)[0] == 200 or self.proc.poll() is not None,
                   START_TIMEOUT_S, "the live server to answer")
        assert self.proc.poll() is None, f"live_server exited: {self.log()[-2000:]}"
        return self

    def stop(self) -> int:
        """SIGTERM, then its exit code; a sanitizer report in its log (make
        check runs the ASan build) is a failure."""
        rc = stop(self.proc) if self.proc is not None else 0
        report = sanitizer_report(self.log())
        assert report is None, f"sanitizer report in live_server's log:\n{report}"
        return rc

    def log(self) -> str:
        f = self.workdir / "live.log"
        return f.read_text(errors="replace") if f.exists() else ""

    def token(self, user_id: str, ttl_s: int = 3600) -> str:
        return mint_token(self.secret, user_id, int(time.time()) + ttl_s)


class SseClient:
    """One /events stream read on a thread of its own; events() is what has
    arrived so far, each {"id": ..., "data": {...}}."""

    def __init__(self, base_url: str, token: str | None = None, last_event_id: str | None = None,
                 via_query: bool = False, query: str = ""):
        host_port = base_url.split("//", 1)[1]
        self.conn = http.client.HTTPConnection(host_port, timeout=60)
        headers = {"Accept": "text/event-stream"}
        path = "/events" + query
        if token is not None and via_query:
            path += ("&" if "?" in path else "?") + "token=" + token
        elif token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.conn.request("GET", path, headers=headers)
        # The response keeps the socket after the connection lets go of it
        # (a stream ends with the connection): close() shuts this down.
        self.sock = self.conn.sock
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.lock = threading.Lock()
        self._events: list[dict] = []
        self.ended = False
        self.thread = None
        if self.status == 200:
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()
        else:
            self.body = self.resp.read().decode(errors="replace")

    def _read(self) -> None:
        ev = {}
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    break
                line = line.decode().rstrip("\n")
                if line == "":
                    if "data" in ev:
                        with self.lock:
                            self._events.append({"id": ev.get("id"), "data": json.loads(ev["data"])})
                    ev = {}
                elif line.startswith(":"):
                    continue
                else:
                    name, _, value = line.partition(":")
                    ev[name] = value[1:] if value.startswith(" ") else value
        except Exception:  # noqa: BLE001 - close() from another thread breaks the read in many ways
            pass
        self.ended = True

    def events(self) -> list[dict]:
        with self.lock:
            return list(self._events)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.resp.close()
        self.conn.close()
        if self.thread is not None:
            self.thread.join(timeout=5)


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Chromium:
    """Headless Chromium with one page, driven through the DevTools protocol
    on a pipe (commands on the child's fd 3, answers on fd 4, each a JSON
    message ended by a NUL byte)."""

    def __init__(self, workdir: Path, pid_file: Path | None = None):
        binary = chromium_path()
        assert binary, "chromium is not installed: deploy/local/deps apt installs it"
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--no-default-browser-check", f"--user-data-dir={workdir / 'chromium-profile'}",
                "--remote-debugging-pipe", "about:blank"]
        # bash (dash takes single-digit fds only) puts the pipe ends where
        # Chromium looks for them.
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{to_child_r} 4>&{from_child_w}', binary, *args],
            pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL,
            stdout=open(workdir / "chromium.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        os.close(to_child_r)
        os.close(from_child_w)
        if pid_file is not None:
            pid_file.write_text(f"{self.proc.pid}\n")
        self._buf = b""
        self._next_id = 0
        self.session = None

    def _send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + CDP_TIMEOUT_S
        while time.monotonic() < deadline:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                answer = json.loads(raw)
                if answer.get("id") == self._next_id:
                    if "error" in answer:
                        raise AssertionError(f"DevTools {method}: {answer['error']}")
                    return answer.get("result", {})
            ready, _, _ = select.select([self._from_child], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(self._from_child, 65536)
            if not chunk:
                raise AssertionError(f"Chromium closed its DevTools pipe (exit {self.proc.poll()})")
            self._buf += chunk
        raise AssertionError(f"DevTools {method}: no answer in {CDP_TIMEOUT_S} s")

    def open(self, url: str) -> None:
        target = self._send("Target.createTarget", {"url": url})["targetId"]
        self.session = self._send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def evaluate(self, expression: str):
        """expression's value in the page (JSON-able), None when it threw."""
        r = self._send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, self.session)
        if "exceptionDetails" in r:
            return None
        return r.get("result", {}).get("value")

    def close(self) -> None:
        try:
            self._send("Browser.close")
        except (AssertionError, OSError):
            pass
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        stop(self.proc, timeout=10)

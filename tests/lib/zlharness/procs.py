"""Processes: free ports, one-shot commands, workers started in their own
session and stopped by pid, waits, and the sanitizer check of worker logs."""
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from .env import HarnessError

# What ASan/LSan/UBSan write into a log: a finding must fail the run, not
# hide in a log (make check runs everything under the sanitizers).
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
# How much of a sanitizer report an error message carries.
SANITIZER_EXCERPT_CHARS = 3000
# How long a killed process may take to be reaped.
REAP_TIMEOUT_S = 10


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, env=None, timeout: float = 300, check: bool = True, input=None) -> str:
    """Runs cmd to its end; its stdout. check: a non-zero exit raises
    HarnessError with the command and its stderr."""
    out = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True, timeout=timeout, input=input)
    if check and out.returncode != 0:
        raise HarnessError(f"{' '.join(map(str, cmd[:3]))} failed ({out.returncode}):\n{out.stderr.strip()[-2000:]}")
    return out.stdout


def spawn(cmd, log: Path, env: dict, pid_file: Path | None = None) -> subprocess.Popen:
    """Starts cmd in the background in its own session (a signal to the
    caller's group never reaches it), output appended to log."""
    with open(log, "ab") as f:
        p = subprocess.Popen([str(c) for c in cmd], env=env, stdout=f, stderr=f, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    if pid_file is not None:
        pid_file.write_text(f"{p.pid}\n")
    return p


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    """Sends sig, waits up to timeout, then SIGKILL; the exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            return proc.wait(timeout=REAP_TIMEOUT_S)
    return proc.returncode


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL (a crash, no drain) and reap."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=REAP_TIMEOUT_S)


@contextmanager
def running(service):
    """service.start(), then service itself; service.stop() on the way out,
    also when start() or the body failed (a half-started server is stopped
    by pid too)."""
    try:
        service.start()
        yield service
    finally:
        service.stop()


def wait_until(pred, timeout_s: float, what: str, interval_s: float = 0.25):
    """pred()'s first truthy value; AssertionError naming `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def sanitizer_report(text: str) -> str | None:
    """The start of the first sanitizer report in a log, or None."""
    for marker in SANITIZER_MARKERS:
        if marker in text:
            at = text.index(marker)
            return text[at:at + SANITIZER_EXCERPT_CHARS]
    return None


class ProcessGroup:
    """Workers of one test or trial in `workdir`: name.log, name.port (the
    worker's ZL_HTTP_PORT_FILE), killed by pid in stop_all(). Subclasses
    (dataclasses) give workdir and procs."""

    workdir: Path
    procs: list

    def launch(self, name: str, cmd, env: dict) -> subprocess.Popen:
        env = dict(env, ZL_HTTP_PORT_FILE=str(self.workdir / f"{name}.port"))
        p = spawn(cmd, self.workdir / f"{name}.log", env)
        p.zl_name = name
        self.procs.append(p)
        return p

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def http_port(self, name: str, timeout_s: float = 20) -> int:
        path = self.workdir / f"{name}.port"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if path.exists() and path.read_text().strip():
                return int(path.read_text())
            time.sleep(0.1)
        raise AssertionError(f"{name} wrote no HTTP port file")

    def stop_all(self) -> None:
        """Kills every worker still running, then fails if any worker's log
        shows a sanitizer report."""
        for p in self.procs:
            kill(p)
        for p in self.procs:
            report = sanitizer_report(self.log(p.zl_name))
            if report:
                raise AssertionError(f"sanitizer report in {p.zl_name}'s log:\n{report}")

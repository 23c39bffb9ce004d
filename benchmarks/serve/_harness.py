"""Shared plumbing for the serve benchmarks: server subprocesses, wrk runs, cleanup.

Not a benchmark itself.  ``Server`` starts one server script in its own session
(process group), collects its output in a thread, waits for its ``READY`` line and
for HTTP 200, and on ``stop()`` shuts it down: SIGINT to the main process (the script
then calls ``serve.shutdown()`` and ``shutdown()``), then SIGTERM and SIGKILL to its
process group, then SIGKILL by pid to any process that was a descendant of it or in
its session when the stop began (checked by start time, so a reused pid is never hit).
``run_wrk`` runs wrk once (closed-loop keep-alive HTTP/1.1) and parses its output.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # benchmarks/: the shared child_runs module

from child_runs import DEFAULT_RAY_PYTHON, REPO_ROOT, alive, family  # noqa: E402,F401

WRK = os.environ.get("WRK", "wrk")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env["PYTHONUNBUFFERED"] = "1"
    return env


# ----------------------------------------------------------------------------- processes
class Server:
    """One server script run as ``python SCRIPT ARGS`` in a new session."""

    def __init__(self, python: str, script: str, args: list[str], name: str = "server"):
        self.cmd = [python, os.path.join(HERE, script), *[str(a) for a in args]]
        self.name = name
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []
        self.info: dict = {}
        self.leftovers = 0
        self.known: dict[int, int] = {}  # {pid: start time} seen in its family
        self.stopped_by = None  # how it ended: "self", "SIGINT" or a group kill

    def start(self) -> "Server":
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True, errors="replace",
                                     start_new_session=True, env=server_env())
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.lines[-n:])

    def wait_line(self, prefix: str, timeout: float) -> str:
        """The rest of the first output line starting with prefix (waits for it)."""
        deadline = time.monotonic() + timeout
        while True:
            exited = self.proc.poll() is not None
            if exited:
                time.sleep(0.3)  # let the reader thread drain the pipe
            for line in list(self.lines):
                if line.startswith(prefix):
                    self.known.update(family(self.proc.pid))  # what it has started so far
                    return line[len(prefix):]
            if exited:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}) before "
                                   f"{prefix.strip()!r}; output:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: no {prefix.strip()!r} after {timeout:.0f} s; "
                                   f"output:\n{self.tail()}")
            time.sleep(0.05)

    def wait_ready(self, url: str, timeout: float = 300.0) -> dict:
        t0 = time.monotonic()
        rest = self.wait_line("READY", timeout).strip()
        self.info = json.loads(rest) if rest.startswith("{") else {}
        wait_http(url, timeout=max(10.0, timeout - (time.monotonic() - t0)))
        return self.info

    def stop(self, wait_exit: float = 0.0, grace: float = 60.0) -> None:
        """Stop the server and everything it started; safe to call twice."""
        if self.proc is None:
            return
        pid, self.proc, proc = self.proc.pid, None, self.proc
        procs = {**self.known, **family(pid)}
        try:
            proc.wait(wait_exit)  # a script that exits by itself (startup mode)
            self.stopped_by = "self"
        except subprocess.TimeoutExpired:
            try:
                proc.send_signal(signal.SIGINT)
                proc.wait(grace)
                self.stopped_by = "SIGINT"
            except subprocess.TimeoutExpired:
                self.stopped_by = "SIGTERM/SIGKILL of the group"
        procs.update({p: s for p, s in family(pid).items() if p != pid})
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pid, sig)
            except OSError:
                pass
            left = alive(procs)
            for p in left:
                try:
                    os.kill(p, sig)
                except OSError:
                    pass
            deadline = time.monotonic() + wait
            while left and time.monotonic() < deadline:
                time.sleep(0.1)
                left = alive(procs)
            if not left:
                break
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.leftovers = len(alive(procs))
        if self.leftovers:
            print(f"warning: {self.leftovers} process(es) of {self.name} survived SIGKILL",
                  file=sys.stderr)

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_http(url: str, timeout: float = 60.0, body: bytes | None = None) -> bytes:
    """Poll url (GET, or POST of a JSON body) until it answers 200; return the body."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        req = urllib.request.Request(url, data=body,
                                     headers={"Content-Type": "application/json"} if body else {})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                if resp.status == 200:
                    return resp.read()
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}"
        except OSError as e:
            last = repr(e)
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer 200 within {timeout:.0f} s (last: {last})")


# ----------------------------------------------------------------------------- wrk
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_TIME = r"([\d.]+)(us|ms|s|m|h)"


def parse_wrk(text: str) -> dict:
    """rps, latency percentiles (ms), request count and errors from `wrk --latency` output."""
    out: dict = {}
    m = re.search(r"Requests/sec:\s*([\d.]+)", text)
    if not m:
        raise ValueError(f"cannot parse wrk output:\n{text}")
    out["rps"] = float(m.group(1))
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s*{pct}(?:\.0+)?%\s+{_TIME}", text, re.M)
        out[f"p{pct}_ms"] = float(m.group(1)) * _UNITS[m.group(2)] if m else None
    m = re.search(r"(\d+) requests in", text)
    out["requests"] = int(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    out["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = sum(int(g) for g in m.groups()) if m else 0
    return out


def run_wrk(url: str, connections: int, duration: int, threads: int = 1,
            script: str | None = None, timeout_s: int = 10) -> dict:
    cmd = [WRK, f"-t{max(1, min(threads, connections))}", f"-c{connections}",
           f"-d{int(duration)}s", "--latency", f"--timeout={timeout_s}s"]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + timeout_s + 30)
    if res.returncode != 0:
        raise RuntimeError(f"wrk failed ({res.returncode}): {res.stderr or res.stdout}")
    return parse_wrk(res.stdout)


def fmt(x, digits: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)

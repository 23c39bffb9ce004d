"""Starting worker processes and forwarding their output.

Workers are started with ``python -m skate.core.worker``; each connects back
and registers. Their stdout/stderr are pipes read by one thread (selectors),
which hands whole lines to ``on_lines(worker, stream, lines)`` for the
drivers (Ray's ``log_to_driver``).

The same thread waits on each process itself (a pidfd in the selector), not
only on its socket: a worker killed before it registered has no socket to
close, and its node manager must still learn that it is gone. It reaps the
process and calls ``on_exit(worker)`` (outside the pump lock, so the callback
may take the node manager's lock while ``drain`` runs under it).
"""

from __future__ import annotations

import logging
import os
import selectors
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from skate.core.config import OMP_BY_SKATE_ENV

if TYPE_CHECKING:
    from skate.core.node_manager.server import Lease

log = logging.getLogger(__name__)


@dataclass
class WorkerProc:
    worker_id: str
    env_key: str
    proc: subprocess.Popen
    started: float = field(default_factory=time.monotonic)
    conn: object = None  # its connection, once registered
    address: str = ""
    lease: Lease | None = None  # the lease it serves, or None when idle
    dedicated: bool = False  # actor workers are never reused
    name: str = ""  # actor class name, for log prefixes
    idle_since: float = 0.0
    dead: bool = False  # killed by us, or gone: never leased again
    culled: bool = False  # stopped by us as surplus idle: what it created outlives it
    registered: bool = False  # it connected back and registered
    death_handled: bool = False  # its lease and the control store were told (once)
    returncode: int | None = None  # set once the process has exited and been reaped
    stderr_tail: list = field(default_factory=list)  # its last stderr lines (start failures)

    @property
    def pid(self) -> int:
        return self.proc.pid


class WorkerPool:
    def __init__(self, argv_base: list, session_dir: str, on_lines, on_exit=None):
        self.argv_base = argv_base
        self.session_dir = session_dir
        self.on_lines = on_lines
        self.on_exit = on_exit
        self.workers: dict[str, WorkerProc] = {}
        self._sel = selectors.DefaultSelector()
        self._sel_lock = threading.Lock()
        self._partial: dict = {}
        self._wake_r, self._wake_w = os.pipe()
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._stopped = False
        self._stopping = False  # stop() began: exits are expected, not reported
        self.uses_pidfds = hasattr(os, "pidfd_open")
        self._spawner = ThreadPoolExecutor(1, "skate-spawner")
        self._pump_lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, name="skate-worker-logs", daemon=True)
        self._thread.start()

    def start(self, worker_id: str, env_key: str, env_vars: dict | None) -> WorkerProc:
        # Workers die with the *thread* that started them (PR_SET_PDEATHSIG), so they are
        # all started from one thread that lives as long as this process.
        return self._spawner.submit(self._start, worker_id, env_key, env_vars).result()

    def _start(self, worker_id: str, env_key: str, env_vars: dict | None) -> WorkerProc:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        if env_vars:
            env.update({k: str(v) for k, v in env_vars.items()})
        if "OMP_NUM_THREADS" not in env:  # the user did not choose: one per CPU held
            env["OMP_NUM_THREADS"] = "1"
            env[OMP_BY_SKATE_ENV] = "1"
        proc = subprocess.Popen(
            self.argv_base + ["--worker-id", worker_id],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        assert proc.stdout is not None and proc.stderr is not None  # both are PIPEs
        os.set_blocking(proc.stdout.fileno(), False)
        os.set_blocking(proc.stderr.fileno(), False)
        w = WorkerProc(worker_id, env_key, proc)
        self.workers[worker_id] = w
        with self._sel_lock:
            self._sel.register(proc.stdout, selectors.EVENT_READ, (w, "stdout"))
            self._sel.register(proc.stderr, selectors.EVENT_READ, (w, "stderr"))
            try:
                pidfd = os.pidfd_open(proc.pid)
            except (AttributeError, OSError):  # no pidfds: check_exits() polls instead
                pidfd = None
                self.uses_pidfds = False
            if pidfd is not None:
                self._sel.register(pidfd, selectors.EVENT_READ, (w, "exit"))
        os.write(self._wake_w, b"x")
        return w

    def _pump(self) -> None:
        while not self._stopped:
            try:
                events = self._sel.select(timeout=1.0)
            except (OSError, ValueError):
                if self._stopped:
                    return
                continue
            exits = [key for key, _ in events if key.data is not None and key.data[1] == "exit"]
            with self._pump_lock:
                self._handle_events([e for e in events if e[0] not in exits])
            for key in exits:
                self._exited(key)

    def _exited(self, key) -> None:
        w = key.data[0]
        with self._sel_lock:
            try:
                self._sel.unregister(key.fileobj)
            except (KeyError, ValueError):
                pass
        os.close(key.fileobj)
        self.drain()  # its last output (a failed start's traceback) before its exit is handled
        self._reaped(w)

    def _reaped(self, w: WorkerProc) -> None:
        try:
            w.returncode = w.proc.wait(timeout=5)  # the pidfd said it exited: this reaps it
        except subprocess.TimeoutExpired:  # cannot happen for an exited child
            log.error("worker %s (pid %d) signalled exit but was not reaped", w.worker_id, w.pid)
            return
        if self.workers.pop(w.worker_id, None) is None:
            return  # already handled (a poll and the pidfd both saw it)
        if self.on_exit is not None and not self._stopping:
            try:
                self.on_exit(w)
            except Exception:
                log.exception("handling the exit of worker %s failed", w.worker_id)

    def check_exits(self) -> None:
        """Without pidfds: notice exited workers by polling (the housekeeping tick calls this)."""
        for w in list(self.workers.values()):
            if w.returncode is None and w.proc.poll() is not None:
                self._reaped(w)

    def drain(self) -> None:
        """Forward everything workers have written so far (before a driver leaves)."""
        with self._pump_lock:
            for _ in range(1000):
                try:
                    events = [e for e in self._sel.select(timeout=0)
                              if e[0].data is not None and e[0].data[1] != "exit"]
                except (OSError, ValueError):
                    return
                if not events:
                    return
                self._handle_events(events)

    def _handle_events(self, events) -> None:
        for key, _ in events:
            if key.data is None:
                try:
                    os.read(self._wake_r, 4096)
                except OSError:
                    pass
                continue
            w, stream = key.data
            try:
                chunk = os.read(key.fd, 65536)
            except BlockingIOError:
                continue  # drained meanwhile by drain()
            except OSError:
                chunk = b""
            if not chunk:
                with self._sel_lock:
                    try:
                        self._sel.unregister(key.fileobj)
                    except (KeyError, ValueError):
                        pass
                rest = self._partial.pop((w.worker_id, stream), b"")
                if rest:
                    self._emit(w, stream, [rest])
                try:
                    key.fileobj.close()
                except OSError:
                    pass
                continue
            buf = self._partial.pop((w.worker_id, stream), b"") + chunk
            *lines, tail = buf.split(b"\n")
            if tail:
                self._partial[(w.worker_id, stream)] = tail
            if lines:
                self._emit(w, stream, lines)

    def _emit(self, w: WorkerProc, stream: str, lines: list) -> None:
        text = [ln.decode("utf-8", "replace") for ln in lines]
        if stream == "stderr" and not w.registered:  # kept to explain a failed start
            w.stderr_tail = (w.stderr_tail + text)[-20:]
        try:
            self.on_lines(w, stream, text)
        except Exception:
            log.exception("forwarding worker output failed")

    def kill(self, w: WorkerProc) -> None:
        try:
            w.proc.kill()
        except OSError:
            pass

    def stop(self) -> None:
        self._stopping = True
        for w in list(self.workers.values()):
            try:
                w.proc.kill()
            except OSError:
                pass
        deadline = time.monotonic() + 5
        for w in list(self.workers.values()):
            try:
                w.proc.wait(max(0.01, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        self._stopped = True
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=2)


def worker_argv(raylet_address: str, gcs_address: str, session_dir: str, node_id: str,
                arena_path: str, capacity: int, node_ip: str) -> list:
    return [
        sys.executable, "-m", "skate.core.worker",
        "--raylet", raylet_address, "--gcs", gcs_address, "--session-dir", session_dir,
        "--node-id", node_id, "--arena", arena_path, "--capacity", str(capacity),
        "--node-ip", node_ip,
    ]

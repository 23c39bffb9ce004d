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
from typing import cast

from skate.core.config import OMP_BY_SKATE_ENV, PLACEMENT_GROUP_ENV, worker_preload_modules

log = logging.getLogger(__name__)


class ForkedProc:
    """The ``Popen`` face of a worker the zygote forked: its exit code comes from the
    zygote (its parent), which reports every exit on its event socket."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None
        self._done = threading.Event()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0)
        return self.returncode  # type: ignore[return-value]

    def kill(self) -> None:
        try:
            os.kill(self.pid, 9)
        except ProcessLookupError:
            pass

    def exited(self, code: int) -> None:
        self.returncode = code
        self._done.set()


class Zygote:
    """The node's zygote process (see skate/core/worker/zygote.py): ``fork`` asks it for a
    worker, or returns None while it is not ready (still importing) or gone."""

    def __init__(self, argv_base: list, env: dict):
        import socket

        self._requests, req_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.events, evt_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(
            [argv_base[0], "-m", "skate.core.worker.zygote", str(req_child.fileno()),
             str(evt_child.fileno())], pass_fds=(req_child.fileno(), evt_child.fileno()),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env)
        req_child.close()
        evt_child.close()
        self.ready = False
        self.gone = False

    def fork(self, argv: list, env: dict, out_fd: int, err_fd: int) -> int | None:
        import json
        import socket

        if self.gone or not self.ready:
            return None
        try:
            self._requests.settimeout(10)
            socket.send_fds(self._requests, [json.dumps({"argv": argv, "env": env}).encode()],
                            [out_fd, err_fd])
            return int(self._requests.recv(32))
        except (OSError, ValueError) as e:
            log.warning("the zygote failed (%s); workers start as new processes", e)
            self.gone = True
            return None

    def stop(self) -> None:
        self.gone = True
        try:
            self.proc.kill()
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self._requests.close()


@dataclass
class WorkerProc:
    worker_id: str
    env_key: str
    proc: subprocess.Popen | ForkedProc
    started: float = field(default_factory=time.monotonic)
    conn: object = None  # its connection, once registered
    address: str = ""
    name: str = ""  # actor class name, for log prefixes
    forked: bool = False  # forked by the zygote (its exit comes from the zygote)
    registered: bool = False  # it connected back and registered
    returncode: int | None = None  # set once the process has exited and been reaped
    stderr_tail: list = field(default_factory=list)  # its last stderr lines (start failures)

    @property
    def pid(self) -> int:
        return self.proc.pid


class WorkerPool:
    def __init__(self, argv_base: list, session_dir: str, on_lines, on_exit=None,
                 on_zygote_ready=None):
        """``on_zygote_ready()``: called (from the pump thread) once a zygote, when this
        node has one, has imported everything and forks workers."""
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
        self.on_zygote_ready = on_zygote_ready
        self.zygote: Zygote | None = None
        preload = worker_preload_modules()
        if preload:  # from the spawner thread, like the workers: it dies with that thread
            self.zygote = self._spawner.submit(Zygote, argv_base,
                                               self._env(None, preload)).result()
            self._sel.register(self.zygote.events, selectors.EVENT_READ, (None, "zygote"))
        self._thread = threading.Thread(target=self._pump, name="skate-worker-logs", daemon=True)
        self._thread.start()

    @staticmethod
    def _env(env_vars: dict | None, preload: list | None = None) -> dict:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        if env_vars:
            env.update({k: str(v) for k, v in env_vars.items()})
        if "OMP_NUM_THREADS" not in env:  # the user did not choose: one per CPU held
            env["OMP_NUM_THREADS"] = "1"
            env[OMP_BY_SKATE_ENV] = "1"
        if preload:
            env["SKATE_WORKER_PRELOAD"] = ",".join(preload)
        return env

    def start(self, worker_id: str, env_key: str, env_vars: dict | None) -> WorkerProc:
        # Workers die with the *thread* that started them (PR_SET_PDEATHSIG), so they are
        # all started from one thread that lives as long as this process.
        return self._spawner.submit(self._start, worker_id, env_key, env_vars).result()

    def _start(self, worker_id: str, env_key: str, env_vars: dict | None) -> WorkerProc:
        env = self._env(env_vars)
        argv = self.argv_base + ["--worker-id", worker_id]
        # the zygote serves workers whose own environment is read only at run time (a
        # placement group's); others (a runtime_env's variables, which modules may read
        # as they are imported) start as new interpreters
        forkable = not env_vars or set(env_vars) <= {PLACEMENT_GROUP_ENV}
        proc = self._fork(argv, env) if self.zygote is not None and forkable else None
        if proc is not None:
            w = WorkerProc(worker_id, env_key, proc[0], forked=True)
            stdout, stderr = proc[1], proc[2]
        else:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, close_fds=True)
            assert popen.stdout is not None and popen.stderr is not None  # both are PIPEs
            w = WorkerProc(worker_id, env_key, popen)
            stdout, stderr = popen.stdout, popen.stderr
        os.set_blocking(stdout.fileno(), False)
        os.set_blocking(stderr.fileno(), False)
        self.workers[worker_id] = w
        with self._sel_lock:
            self._sel.register(stdout, selectors.EVENT_READ, (w, "stdout"))
            self._sel.register(stderr, selectors.EVENT_READ, (w, "stderr"))
            pidfd = None
            if not w.forked:  # a forked worker's exit comes from the zygote
                try:
                    pidfd = os.pidfd_open(w.pid)
                except (AttributeError, OSError):  # no pidfds: check_exits() polls instead
                    self.uses_pidfds = False
            if pidfd is not None:
                self._sel.register(pidfd, selectors.EVENT_READ, (w, "exit"))
        os.write(self._wake_w, b"x")
        return w

    def _fork(self, argv: list, env: dict):
        """(ForkedProc, stdout reader, stderr reader) from the zygote, or None."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            # the zygote runs the worker's main itself: its arguments without "python -m ..."
            pid = self.zygote.fork(argv[3:], env, out_w, err_w) if self.zygote else None
        finally:
            os.close(out_w)
            os.close(err_w)
        if pid is None:
            os.close(out_r)
            os.close(err_r)
            return None
        return ForkedProc(pid), os.fdopen(out_r, "rb", buffering=0), \
            os.fdopen(err_r, "rb", buffering=0)

    def _zygote_events(self) -> None:
        """Exits the zygote reports; when it is gone, every worker it forked is too."""
        z = self.zygote
        if z is None:
            return
        try:
            data = z.events.recv(64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        forked = {w.pid: w for w in list(self.workers.values()) if w.forked}
        if not data:
            with self._sel_lock:
                try:
                    self._sel.unregister(z.events)
                except (KeyError, ValueError):
                    pass
            z.gone = True
            for w in forked.values():
                # their reaper is gone: stop them (not left to PR_SET_PDEATHSIG, which was
                # seen not to reach a forked worker here) and count them as killed
                w.proc.kill()
                cast(ForkedProc, w.proc).exited(-9)
                self._reaped(w)
            return
        if data == b"ready":
            z.ready = True
            if self.on_zygote_ready is not None:
                try:
                    self.on_zygote_ready()
                except Exception:
                    log.exception("starting workers through the zygote failed")
            return
        pid, code = (int(x) for x in data.split())
        gone = forked.get(pid)
        if gone is not None:
            cast(ForkedProc, gone.proc).exited(code)
            self.drain()  # its last output before its exit is handled
            self._reaped(gone)

    def _pump(self) -> None:
        while not self._stopped:
            try:
                events = self._sel.select(timeout=1.0)
            except (OSError, ValueError):
                if self._stopped:
                    return
                continue
            exits = [key for key, _ in events if key.data is not None and key.data[1] == "exit"]
            zygote = [key for key, _ in events if key.data is not None
                      and key.data[1] == "zygote"]
            with self._pump_lock:
                self._handle_events([e for e in events if e[0] not in exits
                                     and e[0] not in zygote])
            for key in exits:
                self._exited(key)
            if zygote:
                self._zygote_events()

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
                              if e[0].data is not None and e[0].data[1] not in
                              ("exit", "zygote")]
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
        if self.zygote is not None:
            self.zygote.stop()


def worker_argv(raylet_address: str, gcs_address: str, session_dir: str, node_id: str,
                arena_path: str, capacity: int, node_ip: str) -> list:
    return [
        sys.executable, "-m", "skate.core.worker",
        "--raylet", raylet_address, "--gcs", gcs_address, "--session-dir", session_dir,
        "--node-id", node_id, "--arena", arena_path, "--capacity", str(capacity),
        "--node-ip", node_ip,
    ]

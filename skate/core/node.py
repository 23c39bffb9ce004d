"""Starting and stopping the processes of a node on this machine.

``start_head`` makes a session directory (sockets, logs, spill files), then
starts the control store and the node manager side by side (the node manager
retries its connection to the control store) and waits until both say
``ready`` on stdout. Nothing here is imported by workers.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from skate.core.config import (
    GCS_RECONNECT_ENV,
    SHM_DIR,
    TEMP_DIR,
    WORKER_PRELOAD_ENV,
    NodeConfig,
)
from skate.core.ids import random_id
from skate.core.leftovers import hold_session, mark_kept
from skate.core.pids import alive as _alive
from skate.exceptions import RaySystemError


@dataclass
class LocalNode:
    """Processes of one node started by this process, and how to reach them."""

    session_dir: str
    gcs_address: str
    raylet_address: str
    node_id: str
    arena_path: str
    procs: list = field(default_factory=list)
    token: str = ""
    lock_fd: int = -1  # this process's share in owning the session folder (leftovers.py)

    def stop(self, timeout: float = 5.0) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM)
                except OSError:
                    pass
        deadline = time.monotonic() + timeout
        for p in self.procs:
            try:
                p.wait(max(0.01, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for path in (self.arena_path,):
            try:
                os.unlink(path)
            except OSError:
                pass
        shutil.rmtree(self.session_dir, ignore_errors=True)
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1


def new_session_dir(path: str | None = None) -> str:
    """Make (or, given ``path``, reuse) a session directory."""
    if path:
        for sub in ("", "sockets", "logs", "spill"):
            os.makedirs(os.path.join(path, sub), exist_ok=True)
        return os.path.abspath(path)
    os.makedirs(TEMP_DIR, exist_ok=True)
    # short names: Unix socket paths are limited to 107 bytes
    # the creating pid in the name tells whose leftovers a file is (tests check their own)
    path = os.path.join(TEMP_DIR, f"s{time.strftime('%m%d%H%M%S')}-p{os.getpid()}-"
                                  f"{random_id(3).hex()}")
    for sub in ("", "sockets", "logs", "spill"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    return path


def new_token(session_dir: str) -> str:
    """A fresh cluster token, saved as ``<session>/token`` readable by this user only."""
    return save_token(session_dir, secrets.token_hex(16))


def check_token(token: str) -> None:
    if not token or len(token) > 1024 or any(c.isspace() for c in token):
        raise ValueError("A cluster token is a non-empty string without spaces (at most 1024 "
                         "characters), e.g. the output of `openssl rand -hex 16`.")


def save_token(session_dir: str, token: str) -> str:
    """Save ``token`` as ``<session>/token``, readable by this user only; returns it."""
    check_token(token)
    path = os.path.join(session_dir, "token")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    return token


def read_token(session_dir: str) -> str | None:
    try:
        with open(os.path.join(session_dir, "token")) as f:
            return f.read().strip()
    except OSError:
        return None


def start_head(resources: dict, object_store_memory: int, owner_pid: int = 0,
               node_ip: str = "127.0.0.1", gcs_port: int | None = None,
               session_dir: str | None = None, reachable: bool = False,
               worker_preload: list | None = None, token: str | None = None) -> LocalNode:
    """Start a control store and a node manager; with ``owner_pid`` they die with that process.
    ``worker_preload``: modules the node's workers start with (a zygote forks them;
    default: ``SKATE_WORKER_PRELOAD``). ``token``: the cluster token to use (machines that
    join were given it), saved in the session directory; else the session's, else new.

    Given an existing ``session_dir`` (a head restart), its token and the control
    store's database are reused.
    """
    if token:
        check_token(token)  # before anything is made
    session_dir = new_session_dir(session_dir)
    lock_fd = hold_session(session_dir)
    if not owner_pid:
        mark_kept(session_dir)  # `skate start`: its folder outlives its processes
    token = (save_token(session_dir, token) if token else None) or read_token(session_dir) \
        or new_token(session_dir)
    node_id = random_id(14).hex()
    gcs_address = f"unix:{os.path.join(session_dir, 'gcs.sock')}"
    arena = os.path.join(SHM_DIR, f"skate-{os.path.basename(session_dir)}-{node_id[:8]}")
    cfg = NodeConfig(session_dir=session_dir, node_id=node_id, gcs_address=gcs_address,
                     resources=resources, object_store_memory=object_store_memory,
                     arena_path=arena, node_ip=node_ip, owner_pid=owner_pid,
                     prestart_workers=max(1, min(int(resources.get("CPU", 1)), 8)))
    env = dict(os.environ, PYTHONUNBUFFERED="1", SKATE_TOKEN=token)
    if owner_pid:  # a private head is never restarted: its processes need not wait for one
        env[GCS_RECONNECT_ENV] = "0"
    if worker_preload is not None:
        env[WORKER_PRELOAD_ENV] = ",".join(worker_preload)
    if reachable:  # other machines will join: every process listens on TCP too
        env["SKATE_NODE_TCP_HOST"] = node_ip
    procs = []
    logs = os.path.join(session_dir, "logs")
    # stderr to files: a head started by `skate start` must not hold the caller's pipes open
    gcs_err = open(os.path.join(logs, "gcs.err"), "ab")
    raylet_err = open(os.path.join(logs, f"raylet-{node_id[:8]}.err"), "ab")
    try:
        procs.append(_popen_control_store(session_dir, gcs_address, owner_pid,
                                          f"{node_ip}:{gcs_port}" if gcs_port is not None
                                          else None, gcs_err, env))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "skate.core.node_manager", "--config", cfg.to_json()],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=raylet_err, env=env,
            start_new_session=True))
        for p, what in zip(procs, ("control store", "node manager")):
            assert p.stdout is not None  # started with stdout=PIPE
            line = p.stdout.readline()
            if line.strip() != b"ready":
                raise RaySystemError(
                    f"The {what} did not start (exit code {p.poll()}); see its log in "
                    f"{os.path.join(session_dir, 'logs')}.")
            p.stdout.close()
    except BaseException:
        node = LocalNode(session_dir, gcs_address, "", node_id, arena, procs, lock_fd=lock_fd)
        node.stop(timeout=1)
        raise
    finally:
        gcs_err.close()
        raylet_err.close()
    return LocalNode(session_dir, gcs_address,
                     f"unix:{os.path.join(session_dir, 'raylet.sock')}", node_id, arena, procs,
                     token, lock_fd)


def _popen_control_store(session_dir: str, gcs_address: str, owner_pid: int, tcp: str | None,
                         err, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "skate.core.control_store", "--address", gcs_address,
         "--session-dir", session_dir, "--owner-pid", str(owner_pid)]
        + (["--tcp", tcp] if tcp else []),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env,
        start_new_session=True)


def restart_control_store(info: dict) -> int:
    """Start the control store of the running head ``info`` (``read_current()``'s) again,
    its node manager having outlived it: same session, socket and TCP port; the node
    managers, workers and drivers waiting for it reconnect, and it adopts the actors they
    still run. Returns its pid; records it as the head's."""
    session_dir = info["session_dir"]
    tcp = info.get("tcp_address", "")
    tcp = tcp[len("grpc:"):] if tcp.startswith("grpc:") else None
    env = dict(os.environ, PYTHONUNBUFFERED="1", SKATE_TOKEN=read_token(session_dir) or "")
    with open(os.path.join(session_dir, "logs", "gcs.err"), "ab") as err:
        proc = _popen_control_store(session_dir, info["gcs_address"], 0, tcp, err, env)
    assert proc.stdout is not None  # started with stdout=PIPE
    line = proc.stdout.readline()
    proc.stdout.close()
    if line.strip() != b"ready":
        raise RaySystemError(f"The control store did not start (exit code {proc.poll()}); "
                             f"see {os.path.join(session_dir, 'logs')}.")
    info = dict(info, pids=[proc.pid] + list(info["pids"][1:]))
    tmp = CURRENT + ".tmp"
    with open(tmp, "w") as f:
        json.dump(info, f)
    os.replace(tmp, CURRENT)
    return proc.pid


def start_worker_node(gcs_address: str, resources: dict, object_store_memory: int,
                      token: str, owner_pid: int = 0, node_ip: str = "127.0.0.1",
                      parent_dir: str | None = None, reachable: bool = False) -> LocalNode:
    """Start a node manager that joins the cluster whose control store is ``gcs_address``."""
    node_id = random_id(14).hex()
    base = parent_dir or new_session_dir()
    lock_fd = hold_session(base)
    if not owner_pid and not parent_dir:
        mark_kept(base)
    session_dir = os.path.join(base, f"n{node_id[:6]}")
    for sub in ("", "sockets", "logs", "spill"):
        os.makedirs(os.path.join(session_dir, sub), exist_ok=True)
    arena = os.path.join(SHM_DIR, f"skate-{os.path.basename(base)}-{node_id[:8]}")
    cfg = NodeConfig(session_dir=session_dir, node_id=node_id, gcs_address=gcs_address,
                     resources=resources, object_store_memory=object_store_memory,
                     arena_path=arena, node_ip=node_ip, owner_pid=owner_pid,
                     prestart_workers=max(1, min(int(resources.get("CPU", 1)), 8)), is_head=False)
    env = dict(os.environ, PYTHONUNBUFFERED="1", SKATE_TOKEN=token)
    if owner_pid:
        env[GCS_RECONNECT_ENV] = "0"
    if reachable:
        env["SKATE_NODE_TCP_HOST"] = node_ip
    with open(os.path.join(session_dir, "logs", f"raylet-{node_id[:8]}.err"), "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "skate.core.node_manager", "--config", cfg.to_json()],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env,
            start_new_session=True)
    node = LocalNode(session_dir, gcs_address, f"unix:{os.path.join(session_dir, 'raylet.sock')}",
                     node_id, arena, [proc], token, lock_fd)
    assert proc.stdout is not None  # started with stdout=PIPE
    line = proc.stdout.readline()
    proc.stdout.close()
    if line.strip() != b"ready":
        node.stop(timeout=1)
        raise RaySystemError(f"The node manager did not start (exit code {proc.poll()}); see "
                             f"{os.path.join(session_dir, 'logs')}.")
    return node


def start_metrics_exporter(session_dir: str, gcs_address: str, token: str,
                           host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
    """Start the head's Prometheus endpoint (``python -m skate.core.metrics_export``: read-only,
    so it needs no token from its clients; it has the cluster token to read the control
    store) and return (its URL, its pid) once it listens. Its log is
    ``<session_dir>/logs/metrics_export.log``. RaySystemError, saying why, if it cannot
    start (prometheus_client missing, the port taken)."""
    import importlib.util

    if importlib.util.find_spec("prometheus_client") is None:
        raise RaySystemError("The metrics exporter needs the prometheus_client package: "
                             "pip install prometheus-client.")
    log = os.path.join(session_dir, "logs", "metrics_export.log")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1", SKATE_TOKEN=token)
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "skate.core.metrics_export", "--port", str(port),
             "--host", host, "--address", gcs_address],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env,
            start_new_session=True)
    assert proc.stdout is not None  # started with stdout=PIPE
    line = proc.stdout.readline().decode(errors="replace").strip()  # "ready URL", or EOF
    proc.stdout.close()  # it prints nothing else
    if not line.startswith("ready "):
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with open(log, errors="replace") as f:
            why = ([ln.strip() for ln in f if ln.strip()] or ["no output"])[-1]
        raise RaySystemError(f"The metrics exporter did not start: {why} (see {log}).")
    return line.split(" ", 1)[1], proc.pid


CURRENT = os.path.join(TEMP_DIR, "current.json")


def write_current(node: LocalNode, extra: dict) -> None:
    """Record a long-running head so ``init(address="auto")`` and ``skate stop`` find it."""
    info = {"session_dir": node.session_dir, "gcs_address": node.gcs_address,
            "raylet_address": node.raylet_address, "node_id": node.node_id,
            "arena_path": node.arena_path, "pids": [p.pid for p in node.procs], **extra}
    tmp = CURRENT + ".tmp"
    with open(tmp, "w") as f:
        json.dump(info, f)
    os.replace(tmp, CURRENT)


def clear_current(session_dir: str) -> None:
    """Forget the recorded head if it is the one of ``session_dir`` (it is stopping)."""
    info = None
    try:
        with open(CURRENT) as f:
            info = json.load(f)
    except (OSError, ValueError):
        return
    if info.get("session_dir") == session_dir:
        try:
            os.unlink(CURRENT)
        except OSError:
            pass


def read_current() -> dict | None:
    try:
        with open(CURRENT) as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    if not any(_alive(pid) for pid in info.get("pids", [])):
        return None
    return info


NODES_DIR = os.path.join(TEMP_DIR, "nodes")


def record_joined_node(node: LocalNode) -> None:
    """Remember a node started by ``skate start --address`` so ``skate stop`` stops it."""
    os.makedirs(NODES_DIR, exist_ok=True)
    with open(os.path.join(NODES_DIR, f"{node.node_id}.json"), "w") as f:
        json.dump({"pids": [p.pid for p in node.procs], "arena_path": node.arena_path,
                   "session_dir": node.session_dir}, f)


def forget_joined_node(node: LocalNode) -> None:
    """A joined node stopped by its own ``skate start --block``: no record left behind."""
    try:
        os.unlink(os.path.join(NODES_DIR, f"{node.node_id}.json"))
    except OSError:
        pass


def stop_joined_nodes(timeout: float = 5.0) -> int:
    stopped = 0
    try:
        names = os.listdir(NODES_DIR)
    except OSError:
        return 0
    for name in names:
        path = os.path.join(NODES_DIR, name)
        try:
            with open(path) as f:
                info = json.load(f)
        except (OSError, ValueError):
            continue
        _terminate(info.get("pids", []), timeout)
        try:
            os.unlink(info.get("arena_path", ""))
        except OSError:
            pass
        os.unlink(path)
        stopped += 1
    return stopped


def _terminate(pids: list, timeout: float) -> None:
    """SIGTERM, wait up to ``timeout`` for them to go, then SIGKILL what is left."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop_current(timeout: float = 5.0) -> bool:
    """Stop the head this machine started with ``skate start --head``; False if none."""
    try:
        with open(CURRENT) as f:
            info = json.load(f)
    except (OSError, ValueError):
        return False
    pids = info.get("pids", [])
    helpers = [info[k] for k in ("dashboard_pid", "metrics_export_pid") if info.get(k)]
    if helpers:
        # the dashboard (and the metrics exporter) before the cluster: the dashboard stops
        # its jobs' drivers while they can still leave the cluster cleanly
        _terminate(helpers, timeout)
    # the control store first (pids[0]): it must not record the actors dying with the node
    # manager as deaths, or a restarted head would forget its detached actors
    _terminate(pids[:1], timeout)
    _terminate(pids[1:], timeout)
    try:
        os.unlink(info.get("arena_path", ""))
    except OSError:
        pass
    # the session directory stays (logs, token, the control store's database), so that
    # `skate start --head --session-dir` can bring the same cluster state back
    shutil.rmtree(os.path.join(info.get("session_dir", "/nonexistent"), "spill"),
                  ignore_errors=True)
    os.unlink(CURRENT)
    return True



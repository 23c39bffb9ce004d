"""Starting and stopping the processes of a node on this machine.

``start_head`` makes a session directory (sockets, logs, spill files), then
starts the control store and the node manager side by side (the node manager
retries its connection to the control store) and waits until both say
``ready`` on stdout. Nothing here is imported by workers.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from skate.core.config import SHM_DIR, TEMP_DIR, NodeConfig
from skate.core.ids import random_id
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


def new_session_dir() -> str:
    os.makedirs(TEMP_DIR, exist_ok=True)
    # short names: Unix socket paths are limited to 107 bytes
    path = os.path.join(TEMP_DIR, f"s{time.strftime('%m%d%H%M%S')}-{random_id(3).hex()}")
    for sub in ("", "sockets", "logs", "spill"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    return path


def start_head(resources: dict, object_store_memory: int, owner_pid: int = 0,
               node_ip: str = "127.0.0.1") -> LocalNode:
    session_dir = new_session_dir()
    node_id = random_id(14).hex()
    gcs_address = f"unix:{os.path.join(session_dir, 'gcs.sock')}"
    arena = os.path.join(SHM_DIR, f"skate-{os.path.basename(session_dir)}-{node_id[:8]}")
    cfg = NodeConfig(session_dir=session_dir, node_id=node_id, gcs_address=gcs_address,
                     resources=resources, object_store_memory=object_store_memory,
                     arena_path=arena, node_ip=node_ip, owner_pid=owner_pid,
                     prestart_workers=max(1, min(int(resources.get("CPU", 1)), 8)))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    procs = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "skate.core.control_store", "--address", gcs_address,
             "--session-dir", session_dir, "--owner-pid", str(owner_pid)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env, start_new_session=True))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "skate.core.node_manager", "--config", cfg.to_json()],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env, start_new_session=True))
        for p, what in zip(procs, ("control store", "node manager")):
            line = p.stdout.readline()
            if line.strip() != b"ready":
                raise RaySystemError(
                    f"The {what} did not start (exit code {p.poll()}); see its log in "
                    f"{os.path.join(session_dir, 'logs')}.")
            p.stdout.close()
    except BaseException:
        node = LocalNode(session_dir, gcs_address, "", node_id, arena, procs)
        node.stop(timeout=1)
        raise
    return LocalNode(session_dir, gcs_address,
                     f"unix:{os.path.join(session_dir, 'raylet.sock')}", node_id, arena, procs)

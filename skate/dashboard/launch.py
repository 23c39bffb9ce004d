"""Starting the dashboard process for a head: what ``skate start --head`` calls.

The caller binds the listening socket itself and hands it to the child
(``pass_fds``), so ``start_dashboard`` returns as soon as the process is
spawned -- it never waits for the dashboard's imports -- yet the port is
known (port 0 picks a free one), a port in use is an error right here, and a
client that connects before the dashboard is up waits in the socket's
backlog instead of being refused.

>>> import skate
>>> from skate.dashboard import start_dashboard
>>> ctx = skate.init(num_cpus=1)
>>> dash = start_dashboard(ctx["session_dir"], ctx["gcs_address"], port=0)
>>> dash.url.startswith("http://127.0.0.1:")
True
>>> dash.stop(); skate.shutdown()
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass

from skate.dashboard.config import DEFAULT_HOST, DEFAULT_PORT


class DashboardUnavailable(RuntimeError):
    """The dashboard cannot start here (a missing package, a port in use); the message says
    what to do. The cluster itself does not need it."""


@dataclass
class DashboardProcess:
    """A dashboard this process started: its address and its process."""

    url: str  #: e.g. http://127.0.0.1:8265
    pid: int
    proc: subprocess.Popen

    def stop(self, timeout: float = 8.0) -> None:
        """SIGTERM (it stops its jobs first), then SIGKILL after ``timeout``."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_dashboard(session_dir: str, cluster_address: str, host: str = DEFAULT_HOST,
                    port: int = DEFAULT_PORT, read_token: bool = False, owner_pid: int = 0,
                    token: str | None = None) -> DashboardProcess:
    """Spawn the dashboard of the cluster whose control store is ``cluster_address`` and
    return at once. Its log is ``<session_dir>/logs/dashboard.log``. Raises
    ``DashboardUnavailable`` when starlette/uvicorn are missing or the port is taken."""
    missing = [m for m in ("starlette", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise DashboardUnavailable(
            f"The dashboard needs {' and '.join(missing)}: pip install 'skate[dashboard]' "
            f"(or start with --include-dashboard false).")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=128)
    except OSError as e:
        raise DashboardUnavailable(
            f"The dashboard could not listen on {host}:{port}: {e.strerror or e}. Pick another "
            f"port with --dashboard-port (0: any free one).") from None
    bound = sock.getsockname()[1]
    url = f"http://[{host}]:{bound}" if family == socket.AF_INET6 else f"http://{host}:{bound}"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if token:
        env["SKATE_TOKEN"] = token
    logs = os.path.join(session_dir, "logs")
    os.makedirs(logs, exist_ok=True)
    args = [sys.executable, "-m", "skate.dashboard", "--session-dir", session_dir,
            "--address", cluster_address, "--fd", str(sock.fileno()), "--url", url,
            "--owner-pid", str(owner_pid)] + (["--read-token"] if read_token else [])
    try:
        with open(os.path.join(logs, "dashboard.log"), "ab") as out:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=env, pass_fds=(sock.fileno(),),
                                    start_new_session=True)
    finally:
        sock.close()  # the child has its own copy
    return DashboardProcess(url, proc.pid, proc)


"""The dashboard process: serves the app over the cluster's state, supervises the jobs.

Run by ``launch.start_dashboard`` as ``python -m skate.dashboard --fd N ...``
(the socket already bound), or by hand with ``--host/--port``. It lives until
SIGTERM (``skate stop``), until its owner process exits (``--owner-pid``: a
private cluster's driver), or until the cluster has been unreachable for five
samples in a row; then it stops its jobs (TERM, KILL after the grace period)
and exits. It does not join the cluster: it reads through the state API with
the control store's address and the cluster token (``SKATE_TOKEN``), a
connection per call, which keeps it light (no driver runtime, no job).
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import socket
import threading
import time

log = logging.getLogger("skate.dashboard")


#: How long the cluster may be unreachable before the dashboard leaves.
GIVE_UP_S = 75.0

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m skate.dashboard",
                                description="Skate's dashboard and jobs API.")
    p.add_argument("--session-dir", required=True, help="the head's session directory")
    p.add_argument("--address", required=True, help="the control store's address")
    p.add_argument("--fd", type=int, default=None, help="an inherited listening socket")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8265)
    p.add_argument("--url", default=None, help="how clients reach it (for the job records)")
    p.add_argument("--read-token", action="store_true", help="reads need the token too")
    p.add_argument("--owner-pid", type=int, default=0, help="exit when this process exits")
    return p


def _token(session_dir: str) -> str:
    token = os.environ.get("SKATE_TOKEN")
    if token:
        return token
    with open(os.path.join(session_dir, "token")) as f:
        return f.read().strip()


def _lean_malloc() -> None:
    """Two malloc arenas instead of eight per core, set before any thread starts: each
    thread-pool thread that served a large answer would otherwise keep an arena of its
    own, whose pages stay resident. With ``trim_memory`` after each sample, the RSS the
    footprint benchmark leaves behind fell from 61.5 to 57.6-58.6 MiB
    (benchmarks/dashboard/footprint.py, docs/performance.md)."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass  # not glibc: its defaults stay


def trim_memory() -> None:
    """Give freed heap pages back to the system (after large answers), where glibc can."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def main(argv=None) -> int:
    _lean_malloc()
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn

    import skate
    from skate.dashboard.app import Context, create_app
    from skate.dashboard.cluster import LiveCluster
    from skate.dashboard.config import DashboardConfig
    from skate.dashboard.history import ResourceHistory, Sampler
    from skate.dashboard.jobs.lifecycle import Settings
    from skate.dashboard.jobs.runner import JobRunner
    from skate.dashboard.metric_history import MetricHistory

    config = DashboardConfig(session_dir=args.session_dir, cluster_address=args.address,
                             host=args.host, port=args.port, read_token=args.read_token,
                             owner_pid=args.owner_pid)
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
    else:
        sock = socket.create_server((config.host, config.port), backlog=128)
    url = args.url or f"http://{config.host}:{sock.getsockname()[1]}"
    token = _token(config.session_dir)
    os.environ["SKATE_TOKEN"] = token  # what the state API connects with
    cluster = LiveCluster(config.cluster_address)
    history = ResourceHistory(config.history_s, config.sample_interval_s)
    metric_history = MetricHistory(config.history_s, config.sample_interval_s)
    runner = JobRunner(config.session_dir, config.cluster_address, token,
                       Settings(config.stop_grace_s, url, cluster.head_node_id()))
    runner.start()
    app = create_app(Context(cluster, history, runner, token, config.read_token,
                             skate.__version__, metric_history))
    # h11, not httptools: its bound on a request's head (64 KiB here) keeps a client from
    # making the dashboard buffer an endless header; its speed does not matter here
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           lifespan="off", timeout_graceful_shutdown=2,
                                           http="h11", h11_max_incomplete_event_size=64 << 10))

    def leave(why: str) -> None:
        log.info("exiting: %s", why)
        server.should_exit = True

    # the head's control store may be restarted under a running cluster, which waits up to
    # a minute for it (SKATE_GCS_RECONNECT_TIMEOUT_S): so does the dashboard, a bit longer
    sampler = Sampler(cluster, history, metric_history,
                      on_lost=lambda: leave("the cluster is unreachable"),
                      give_up=max(5, int(GIVE_UP_S / config.sample_interval_s)),
                      after_sample=trim_memory)
    sampler.start()
    if config.owner_pid:
        threading.Thread(target=_watch_owner, args=(config.owner_pid, leave), daemon=True,
                         name="skate-dashboard-owner").start()
    # uvicorn re-raises the signal it caught once it has shut down; with the default
    # handler that would end the process before the jobs are stopped below
    signal.signal(signal.SIGTERM, lambda *_: None)
    log.info("dashboard at %s for the cluster at %s", url, config.cluster_address)
    try:
        server.run(sockets=[sock])
    finally:
        sampler.stop()
        runner.close()
    return 0


def _watch_owner(pid: int, leave) -> None:
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            leave(f"its owner (pid {pid}) exited")
            return
        except PermissionError:
            pass
        time.sleep(0.5)

"""The zygote: a process that imports the worker runtime once and forks workers from it.

Opt-in (``SKATE_WORKER_PRELOAD=torch,torch._dynamo``, or ``init(_system_config=
{"worker_preload_modules": [...]})``): a node manager then starts one zygote,
which imports what every worker imports plus the listed modules, and starts
default-environment workers by ``fork()`` instead of a new interpreter. A
forked worker has torch (say) already imported -- the 1.5-2 s an import takes
here is paid once per node, not once per worker -- and shares those pages
with the zygote copy-on-write. Workers asked for before the zygote is ready,
and workers with a runtime_env of their own, start the usual way.

Protocol, over two ``SOCK_SEQPACKET`` socket pairs the node manager made:

- requests (node manager -> zygote -> node manager): for each
  ``{"argv": [...], "env": {...}}`` message carrying the worker's stdout and
  stderr pipe ends (``SCM_RIGHTS``), the reply ``b"<pid>"``;
- events (zygote -> node manager): ``b"ready"`` once its imports are done (the
  node manager then starts its pool of idle workers through it), then
  ``b"<pid> <exit code>"`` when a worker ends (the code as ``Popen`` gives it:
  negative for a signal). The zygote is the
  workers' parent, so it reaps them; when it dies the node manager (seeing its
  event socket close) kills every worker it forked and counts them as gone.

The zygote stays single-threaded (a fork copies only the calling thread), and
a child reseeds what a copy would share: ids, numpy's and torch's global
generators, torch's thread count from its own ``OMP_NUM_THREADS``.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import selectors
import signal
import socket
import sys


def _child(request: dict, out_fd: int, err_fd: int, closing: list) -> None:
    """In the forked process: become a worker (never returns). ``closing``: the
    zygote's sockets and descriptors, which a worker must not hold."""
    try:
        for c in closing:
            c.close() if hasattr(c, "close") else os.close(c)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        for fd in (devnull, out_fd, err_fd):
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        if "torch" in sys.modules:
            torch = sys.modules["torch"]
            torch.seed()
            from skate.core.config import omp_num_threads

            torch.set_num_threads(max(1, int(omp_num_threads() or 1)))
        sys.argv = ["skate-worker", *request["argv"]]
        from skate.core.worker import __main__ as worker_main

        parent = os.getppid()
        worker_main._die_with_parent()
        if os.getppid() != parent:  # the zygote died before the line above
            os._exit(1)
        worker_main.main()
    except BaseException:  # noqa: BLE001 - a failed start: say why on its stderr
        import traceback

        traceback.print_exc()
    os._exit(1)


def _reap(events: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        try:
            events.send(f"{pid} {os.waitstatus_to_exitcode(status)}".encode())
        except OSError:
            return


def main() -> None:
    from skate.core.worker import __main__ as worker_main

    worker_main._die_with_parent()
    requests = socket.socket(fileno=int(sys.argv[1]))
    events = socket.socket(fileno=int(sys.argv[2]))
    # what every worker imports, then what this node was asked to preload
    for name in ("skate.core.kill_points", "skate.core.rpc", "skate.core.worker.core_worker",
                 "skate.core.worker.executor"):
        importlib.import_module(name)
    from skate.core.config import worker_preload_modules

    for name in worker_preload_modules():
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - a module that will not import is skipped
            logging.getLogger("skate.zygote").warning("could not preload %r: %s", name, e)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the select below
    sel = selectors.DefaultSelector()
    sel.register(requests, selectors.EVENT_READ)
    sel.register(wake_r, selectors.EVENT_READ)
    events.send(b"ready")
    while True:
        for key, _ in sel.select(timeout=1.0):
            if key.fileobj == wake_r:
                os.read(wake_r, 4096)
                continue
            msg, fds, _, _ = socket.recv_fds(requests, 1 << 20, 2)
            if not msg:  # the node manager is gone
                os._exit(0)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child(json.loads(msg), fds[0], fds[1], [requests, events, sel, wake_r, wake_w])
            for fd in fds:
                os.close(fd)
            requests.send(str(pid).encode())
        _reap(events)


if __name__ == "__main__":
    main()

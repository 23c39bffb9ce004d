"""Worker process entry point: ``python -m skate.core.worker ...`` (started by a node manager)."""

import argparse
import ctypes
import logging
import os
import signal
import sys


def _die_with_parent() -> None:
    # A worker must not outlive its node manager, even if that one is killed -9.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def main() -> None:
    _die_with_parent()
    p = argparse.ArgumentParser(prog="skate-worker")
    for flag in ("--raylet", "--gcs", "--session-dir", "--node-id", "--arena", "--node-ip",
                 "--worker-id"):
        p.add_argument(flag, required=True)
    p.add_argument("--capacity", type=int, required=True)
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    from skate.core import kill_points, rpc
    from skate.core.config import token_from_env
    from skate.core.worker.core_worker import CoreWorker

    kill_points.reached("start")

    rpc.set_token(token_from_env())
    from skate.core.worker.executor import Executor

    ex = Executor()
    core = CoreWorker(mode="worker", session_dir=a.session_dir, raylet_address=a.raylet,
                      gcs_address=a.gcs, node_id=a.node_id, node_ip=a.node_ip,
                      worker_id=a.worker_id, handlers=ex.handlers(), arena_path=a.arena,
                      capacity=a.capacity)
    ex.core = core
    kill_points.reached("registered")
    assert isinstance(core.raylet.conn, rpc.Connection)  # a node manager is not restarted
    core.raylet.conn.on_close = lambda c: os._exit(0)
    code = 0
    try:
        ex.run()
    except BaseException:  # a bug in the runtime itself: say so before leaving, never silently
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        core.flush_background()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    main()

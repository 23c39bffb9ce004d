"""Helpers shared by the core end-to-end tests.

Everything here is importable from worker processes too (workers import
``tests.core.utils`` when they unpickle a function that refers to it).
"""

import os
import subprocess
import sys
import textwrap
import time

from tests._skate_alias import AGAINST_RAY

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def wait_for_condition(predicate, timeout=10, retry_interval_ms=20, **kwargs):
    """Poll ``predicate(**kwargs)`` until it returns truthy or ``timeout`` passes.

    Exceptions raised by the predicate count as "not yet".  Raises
    AssertionError (with the last exception, if any) on timeout.
    """
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            if predicate(**kwargs):
                return True
        except Exception as e:  # noqa: BLE001 - keep polling
            last_exc = e
        if time.monotonic() >= deadline:
            break
        time.sleep(retry_interval_ms / 1000.0)
    msg = f"condition {getattr(predicate, '__name__', predicate)!r} not met within {timeout}s"
    if last_exc is not None:
        msg += f"; last exception: {type(last_exc).__name__}: {last_exc}"
    raise AssertionError(msg)


def rendezvous(directory, name, n, timeout=30):
    """Cross-process barrier built on the filesystem, for use inside tasks.

    Creates ``directory/name`` then waits (deadline loop) until ``n`` entries
    exist.  Unlike a barrier actor + ``get``, this keeps the calling task
    *running* (not blocked in ``get``), so the task keeps holding its
    resources: it proves that ``n`` tasks really run at the same time.
    Returns the number of entries seen; raises TimeoutError.
    """
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "w"):
        pass
    deadline = time.monotonic() + timeout
    while True:
        count = len(os.listdir(directory))
        if count >= n:
            return count
        if time.monotonic() >= deadline:
            raise TimeoutError(f"only {count}/{n} participants arrived in {directory}")
        time.sleep(0.01)


def driver_import_line():
    """The import a standalone driver script uses to get ``skate``."""
    return "import ray as skate" if AGAINST_RAY else "import skate"


def run_driver(code, timeout=90):
    """Run ``code`` as a separate driver process; return CompletedProcess.

    ``code`` may use ``skate`` (already imported).  stdout/stderr are captured
    as text.
    """
    script = driver_import_line() + "\n" + textwrap.dedent(code)
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def wait_for_file(path, timeout=30):
    """Deadline loop until ``path`` exists (usable inside tasks/actors).

    Lets a test hold a task *running* until the driver releases it by
    creating the file.  Raises TimeoutError.
    """
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{path} did not appear within {timeout}s")
        time.sleep(0.01)
    return True


def touch(path):
    with open(path, "a"):
        pass

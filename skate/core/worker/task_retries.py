"""What becomes of a task whose push failed: retried, failed, or out of memory.

Pure functions of the task's record (``submission.TaskRecord``) and the
failure, called by the submitter's I/O shell (``task_submitter.py``) without
its lock: deciding on an application error may unpickle it.

Retries. A lost connection retries the task up to ``max_retries`` times
(-1: forever); an application error only if ``retry_exceptions`` says so
(True, or a list of exception classes the error's cause must be one of).

Out of memory. A worker the node's memory monitor killed is not a crash
(Ray 2.x's retry policy): the shell asks that node manager why the worker
went (only then, on the failure path) and hands the cause to ``settle``. The
task fails with OutOfMemoryError when ``max_retries`` is 0 or the monitor
said not to retry (it was its caller's last task running there); otherwise
it runs again after ``oom_retry_delay`` (1 s doubling to 60 s) without
spending ``max_retries``: such retries are counted in ``oom_retries``.

Verdicts of ``settle``: RETRY (attempt + 1), COMPLETE (hand the user's error
over), CANCELLED (fail with TaskCancelledError), CRASHED (fail with
``crash_error``), OOM_RETRY (attempt + 1 and oom_retries + 1, queued again
after ``oom_retry_delay``), OOM (fail with ``oom_error``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from skate import exceptions as exc
from skate.core import serialization
from skate.core.protocol import INLINE

if TYPE_CHECKING:
    from skate.core.worker.submission import TaskRecord

#: A killed worker's cause, as its node manager tells it (``worker_exit_cause``)
OUT_OF_MEMORY = "OUT_OF_MEMORY"
#: Retries of tasks the memory monitor killed: 1 s, doubling, at most 60 s (Ray's)
OOM_RETRY_BASE_S = 1.0
OOM_RETRY_MAX_S = 60.0

RETRY, COMPLETE, CANCELLED, CRASHED = "retry", "complete", "cancelled", "crashed"
OOM_RETRY, OOM = "oom_retry", "oom"

def retries_left(task: TaskRecord) -> bool:
    return task.max_retries == -1 or task.attempt - task.oom_retries < task.max_retries


def settle(task: TaskRecord, ok: bool, value, cause: tuple | None = None) -> str:
    """What to do with a task whose push FAILED: RETRY, COMPLETE, CANCELLED, CRASHED,
    OOM_RETRY or OOM. ``cause``: why its worker's node manager killed the worker, if it did
    (``(kind, message, retry)``, asked only when the connection was lost).

    Called without the lock: deciding on an application error may unpickle it.
    """
    if not ok:
        if task.cancelled:
            return CANCELLED
        if cause is not None and cause[0] == OUT_OF_MEMORY:
            return OOM_RETRY if task.max_retries != 0 and cause[2] else OOM
        return RETRY if retries_left(task) else CRASHED
    if not task.cancelled and _retry_app_error(task, value[1]):
        return RETRY
    return COMPLETE


def _retry_app_error(task: TaskRecord, returns) -> bool:
    rx = task.retry_exceptions
    if not rx or not retries_left(task):
        return False
    if isinstance(rx, bool):  # a truthy bool: True
        return True
    r = returns[0]
    err = serialization.loads(r[2], r[3]) if r[0] == INLINE else None
    cause = getattr(err, "cause", err)
    return isinstance(cause, tuple(rx))


def oom_retry_delay(task: TaskRecord) -> float:
    """Seconds before the next attempt of a task the memory monitor killed (``oom_retries``
    already counts this kill): 1, 2, 4, ... at most 60."""
    return min(OOM_RETRY_BASE_S * 2 ** max(task.oom_retries - 1, 0), OOM_RETRY_MAX_S)


def oom_error(task: TaskRecord, cause: tuple) -> exc.OutOfMemoryError:
    """The error of a task the memory monitor killed, not to be retried."""
    why = "max_retries=0" if task.max_retries == 0 else "it was its caller's last task there"
    return exc.OutOfMemoryError(
        f"Task {task.fn_name} (id {task.task_id.hex()}) failed: {cause[1]} It was tried "
        f"{task.attempt + 1} time(s) and is not retried ({why}).")


def crash_error(task: TaskRecord, node_id: str, node_died: bool, reason) -> BaseException:
    """The error of a task whose worker was lost (``reason``) and that has no retries left."""
    if node_died:
        return exc.NodeDiedError(
            f"Task {task.fn_name} (id {task.task_id.hex()}) failed because the node it was "
            f"running on ({node_id}) died; it was tried {task.attempt + 1} time(s) "
            f"(max_retries={task.max_retries}).")
    return exc.WorkerCrashedError(
        f"The worker running task {task.fn_name} (id {task.task_id.hex()}) died unexpectedly "
        f"({reason}); it was tried {task.attempt + 1} time(s) (max_retries={task.max_retries}).")

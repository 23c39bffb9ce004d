"""Recording what this process sees of tasks, for the state API and the timeline.

The hot paths only append a small tuple to a deque -- ``(task, attempt, state,
time, extra)`` where ``task`` is a task id, or the submitter's own record of a
normal task -- so recording costs one ``time.time()`` and one append (~0.3 us).
The housekeeping thread drains the deque every ``FLUSH_S`` (``batch``), turns
what is not wire-ready yet into plain values, and sends the batch to the
control store in one one-way message (``control_store/tasks.py`` keeps it,
bounded). Measured here for 20,000 actor calls: recording 0.7 us per call,
the batch, pickling and unpickling it and applying it at the control store
about 4 us per call in all.

Who records what (Ray's task states):

* the owner: PENDING_ARGS_AVAIL (submitted), PENDING_NODE_ASSIGNMENT (its
  arguments exist: it waits for a worker), SUBMITTED_TO_WORKER (pushed), and
  FINISHED or FAILED (with the error's type and message) when the reply comes;
* the worker running it: RUNNING when it starts (with the node, worker and
  pid), RUNNING_IN_RAY_GET / RUNNING_IN_RAY_WAIT while it blocks in get/wait,
  RUNNING again after, and its end (for the timeline's slice).

The deque is bounded (``MAX_BUFFERED``): if the control store cannot be told
for a long while, the oldest events are lost rather than memory growing.
"""

from __future__ import annotations

import collections
import time

FLUSH_S = 0.2
MAX_BUFFERED = 200_000


class TaskEvents:
    """This process's buffer of task events (see the module docstring)."""

    __slots__ = ("enabled", "_q", "append", "last_flush")

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._q: collections.deque = collections.deque(maxlen=MAX_BUFFERED)
        #: recorders call ``append((task, attempt, state, time.time(), extra))`` directly
        self.append = self._q.append if enabled else _ignore
        self.last_flush = 0.0

    def due(self, now: float) -> bool:
        return bool(self._q) and now - self.last_flush >= FLUSH_S

    def batch(self, describe) -> list:
        """Drain the buffer into wire events ``(task_id, attempt, state, time_s, info)``.

        Events recorded wire-ready (an id, and a dict or None: workers' and actor calls')
        go as they are; the others (an owner's task record, a lease, an error) pass
        through ``describe(task, attempt, state, time, extra, memo)``, where ``memo`` lets
        it build each task's info once per batch. Shared info dicts stay shared objects,
        so pickle sends each once."""
        q = self._q
        out = []
        memo: dict = {}
        for _ in range(len(q)):  # only what is there now: appends may go on meanwhile
            item = q.popleft()
            extra = item[4]
            if type(item[0]) is bytes and (extra is None or type(extra) is dict):
                out.append(item)
            else:
                out.append(describe(*item, memo))
        self.last_flush = time.monotonic()
        return out


def _ignore(_item) -> None:
    """Recording turned off (``SKATE_TASK_EVENTS=0``)."""


#: Ray's error_type for the errors a task can end with (the state API's names)
ERROR_TYPES = {
    "RayTaskError": "TASK_EXECUTION_EXCEPTION", "WorkerCrashedError": "WORKER_DIED",
    "NodeDiedError": "NODE_DIED", "TaskCancelledError": "TASK_CANCELLED",
    "ActorDiedError": "ACTOR_DIED", "ObjectLostError": "OBJECT_LOST",
    "OwnerDiedError": "OWNER_DIED", "TaskUnschedulableError": "TASK_UNSCHEDULABLE_ERROR",
    "WorkerStartupError": "RUNTIME_ENV_SETUP_FAILED", "ConnectionClosed": "WORKER_DIED",
}
MAX_ERROR_MESSAGE = 4000


def error_info(error: BaseException) -> dict:
    """``error_type`` (Ray's name) and a bounded ``error_message`` of a task's error."""
    kind = ERROR_TYPES.get(type(error).__name__)
    if kind is None:
        kind = ERROR_TYPES["RayTaskError"] if hasattr(error, "cause") else \
            type(error).__name__
    return {"error_type": kind, "error_message": str(error)[:MAX_ERROR_MESSAGE]}

"""Leasing workers and pushing tasks to them (Ray's direct task calls): the I/O shell.

The policy -- scheduling keys, lease requests, pipelining, SPREAD dealing,
spillback, retries, idle leases -- is the state machine in ``submission.py``
(read its docstring first). This shell owns what it must not: the lock,
argument resolution, the RPCs (``NodeManagerClient.request_lease`` /
``return_lease`` / ``kill_worker``, ``WorkerClient.push_task`` /
``cancel_task``), the retry timers, and handing results or errors to the
caller's object table through ``self.core``.

Every event runs the state machine under ``self.lock`` and executes the I/O
commands it returns there, in order (pushes to one worker keep the order
they were decided in); failures and results are handed over after the lock
is let go. In the common case, a successful reply, that is one pass under
the lock, and the next push goes out before the results are handed over.

A task waits here until its top-level ObjectRef arguments exist, then is
queued under its key. A worker that dies mid-task fails the push with
ConnectionClosed: the task is retried (``max_retries``) or fails with
WorkerCrashedError (NodeDiedError when its node died). Before deciding, the
node manager that granted the lease is asked whether it killed the worker
itself (``worker_exit_cause``: its memory monitor); if so the task is retried
after a delay or fails with OutOfMemoryError (``task_retries.settle``).
"""

from __future__ import annotations

import logging
import threading
import time

from skate import exceptions as exc
from skate.core.protocol import (
    ERROR,
    FAILED,
    FINISHED,
    PENDING_ARGS_AVAIL,
    PENDING_NODE_ASSIGNMENT,
    SPILL,
    STORED,
    SUBMITTED_TO_WORKER,
    LeaseGrant,
)
from skate.core.worker.submission import (
    DONE,
    PUSH,
    REQUEST_LEASE,
    REQUEUED,
    RETRY_LATER,
    RETRY_LEASE_S,
    RETURN_LEASE,
    Lease,
    Request,
    Submission,
    TaskRecord,
)
from skate.core.worker.task_retries import (
    CANCELLED,
    COMPLETE,
    OOM,
    OOM_RETRY,
    RETRY,
    crash_error,
    oom_error,
    oom_retry_delay,
    retries_left,
    settle,
)

__all__ = ["TaskRecord", "TaskSubmitter"]

log = logging.getLogger(__name__)
_now = time.time  # task events carry wall-clock times (the state API shows them as ms)


class TaskSubmitter:
    """Submits normal tasks for ``core`` (a CoreWorker) and owns their leases."""

    def __init__(self, core):
        self.core = core
        self.lock = threading.RLock()  # guards the state machine and the two maps below
        self.state = Submission(core.node_id)
        self.by_task: dict[bytes, TaskRecord] = {}  # task id -> task not finished
        self.children: dict[bytes, list] = {}  # running task here -> tasks it submitted
        # lease requests sent to other nodes (the housekeeper checks them for dead nodes)
        self.remote_requests: dict[int, Request] = self.state.remote_requests
        self._event = core.task_events.append  # (task, attempt, state, time, extra)

    # -- submission ----------------------------------------------------------
    def submit(self, task: TaskRecord) -> None:
        parent = self.core.current_task
        if task.deps:  # it waits for its arguments first (without any, it is queued at once)
            self._event((task, task.attempt, PENDING_ARGS_AVAIL, _now(),
                         parent[0] if parent is not None else None))
        elif parent is not None:
            task.parent_task = parent[0]
        with self.lock:
            self.by_task[task.task_id] = task
            if parent is not None:  # remembered so cancel(recursive=True) reaches children
                self.children.setdefault(parent[0], []).append(task.task_id)
        self._resolve_deps(task)

    def _resolve_deps(self, task: TaskRecord) -> None:
        deps = task.deps
        if not deps:
            task.resolved = []
            self._enqueue(task)
            return
        remaining = [len(deps)]
        resolved: list = [None] * len(deps)
        lock = threading.Lock()

        def one_ready(i, entry):
            resolved[i] = entry
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                task.resolved = resolved
                task.preferred_node = _largest_holder(resolved)
                failed = next((e for e in resolved if e[0] == ERROR), None)
                if failed is not None:
                    self._finish_all(task, failed[1])
                else:
                    self._enqueue(task)

        for i, ref in enumerate(deps):
            self.core.resolve_dependency(ref, lambda entry, i=i: one_ready(i, entry))

    def _enqueue(self, task: TaskRecord) -> None:
        self._event((task, task.attempt, PENDING_NODE_ASSIGNMENT, _now(), task.parent_task))
        out: list = []
        with self.lock:
            self.state.enqueue(task, time.monotonic(), out)
            if out:
                self._execute(out)  # enqueueing fails nothing: no commands come back

    # -- executing commands ----------------------------------------------------
    def _execute(self, out: list) -> list | None:
        """Run the I/O commands in ``out`` (under the lock); the FAILs, to run after it.

        A command may append more (a request to an unreachable node asks again later);
        the loop picks those up too.
        """
        later = None
        for c in out:
            tag = c[0]
            if tag is PUSH:
                task, w, blob = c[1], c[2], c[3]
                core = self.core
                # a protocol.TaskSpec, built as the plain tuple it travels as (field order)
                spec = (task.task_id, task.fn_key, blob, task.fn_name, task.args_blob,
                        task.resolved, task.return_ids, core.address, w.gpu_ids,
                        task.resources, task.max_calls, task.attempt,
                        (core.job_id, core.namespace))
                # recorded before the push: the worker's RUNNING must not come first in time
                self._event((task, task.attempt, SUBMITTED_TO_WORKER, _now(), w))
                w.conn.push_task(spec, lambda ok, v, task=task, w=w: self._replied(task, w, ok, v))
            elif tag is RETURN_LEASE:
                c[1].return_lease(c[2], c[3])
            elif tag is REQUEST_LEASE:
                self._request_lease(c[1], out)
            elif tag is RETRY_LATER:
                t = threading.Timer(RETRY_LEASE_S, self._retry_lease, (c[1],))
                t.daemon = True
                t.start()
            else:  # FAIL
                if later is None:
                    later = []
                later.append(c)
        return later

    def _fail(self, later: list | None) -> None:
        for _, task, error in later or ():
            self._finish_all(task, error)

    def _request_lease(self, req: Request, out: list) -> None:
        if req.address is None:
            raylet = self.core.raylet
        else:
            try:
                raylet = self.core.node_manager_at(req.address)
            except OSError:  # that node just died; our views lag by a heartbeat
                self.state.unsent(req, out)
                return
        req.raylet = raylet
        k = req.state
        raylet.request_lease(k.resources, k.env_vars, False, k.strategy, req.preferred,
                             req.hops > 0, callback=lambda ok, v: self._answered(req, ok, v),
                             retriable=req.retriable)

    def _answered(self, req: Request, ok: bool, value) -> None:
        out: list = []
        with self.lock:
            conn = None
            if ok and value is not None and value[0] != SPILL and not req.abandoned:
                try:
                    conn = self.core.worker_at(LeaseGrant.read(value).address)
                except OSError:
                    pass  # the state machine returns the lease with kill
            if not ok and not isinstance(value, (ValueError, exc.WorkerStartupError)):
                log.info("lease request failed (%s); asking again", value)
            self.state.answered(req, ok, value, conn, time.monotonic(), self.core.connected,
                                out, self.core.node_lost)
            later = self._execute(out)
        self._fail(later)

    def _retry_lease(self, key: tuple) -> None:
        out: list = []
        with self.lock:
            self.state.retry_lease(key, time.monotonic(), self.core.connected, out,
                                   self.core.node_lost)
            later = self._execute(out)
        self._fail(later)

    def abandon_requests_to_dead_nodes(self, now: float) -> None:
        """Lease requests waiting on a node that has since died (it hung) are asked again."""
        with self.lock:
            old = self.state.stale_requests(now)
        if not old:
            return
        dead = {r.node for r in old if self.core.node_is_dead(r.node, wait=False)}
        out: list = []
        with self.lock:
            for r in old:
                if r.node in dead:
                    self.state.abandon(r, out)
            later = self._execute(out)
        self._fail(later)

    # -- replies -------------------------------------------------------------
    def _replied(self, task: TaskRecord, w: Lease, ok: bool, value) -> None:
        out: list = []
        later = None
        with self.lock:
            verdict = self.state.replied(task, w, ok, value, time.monotonic(), out)
            if verdict is DONE:
                task.done = True
                self.by_task.pop(task.task_id, None)
            if out:
                later = self._execute(out)  # a FAIL: a bounced task that was cancelled
        if later:
            self._fail(later)
        if verdict is DONE:
            self._event((task, task.attempt, FINISHED, _now(), None))
            self._hand_over(task, value[1])  # PushReply.returns
        elif verdict is not REQUEUED:
            self._settle(task, w, ok, value)

    def _settle(self, task: TaskRecord, w: Lease, ok: bool, value) -> None:
        """A push ended with the connection lost (``value``: the error) or the user's error."""
        cause = self._exit_cause(w) if not ok and not task.cancelled else None
        verdict = settle(task, ok, value, cause)
        if verdict is RETRY:
            # this attempt failed: its own record ends with the reason (an error reply, or
            # the connection's error)
            self._event((task, task.attempt, FAILED, _now(), value[1] if ok else value))
            task.attempt += 1
            for oid in task.return_ids:
                self.core.objects.reset_pending(oid)
            self._enqueue(task)
        elif verdict is COMPLETE:  # the user's error, not retried
            self._event((task, task.attempt, FAILED, _now(), value[1]))
            self._complete(task, value[1])
        elif verdict is CANCELLED:
            self._finish_all(task, exc.TaskCancelledError(task.task_id.hex()))
        elif verdict is OOM_RETRY:
            assert cause is not None  # only a cause makes this verdict
            self._event((task, task.attempt, FAILED, _now(), value))
            task.attempt += 1
            task.oom_retries += 1
            for oid in task.return_ids:
                self.core.objects.reset_pending(oid)
            delay = oom_retry_delay(task)
            log.warning("%s Task %s is retried in %.0f s.", cause[1], task.fn_name, delay)
            t = threading.Timer(delay, self._requeue, (task,))
            t.daemon = True
            t.start()
        elif verdict is OOM:
            assert cause is not None
            self._finish_all(task, oom_error(task, cause))
        else:  # CRASHED
            died = self.core.node_is_dead(w.node_id)
            self._finish_all(task, crash_error(task, w.node_id, died, value))

    def _exit_cause(self, w: Lease) -> tuple | None:
        """Whether ``w``'s node manager killed it itself, and why (the failure path only)."""
        try:
            return w.raylet.worker_exit_cause(w.worker_id, timeout=2.0)
        except Exception:  # that node manager is gone too, or predates the question
            return None

    def _requeue(self, task: TaskRecord) -> None:
        """An OOM retry's delay is over (the task may have been cancelled meanwhile)."""
        if not task.cancelled and not task.done:
            self._enqueue(task)

    def _complete(self, task: TaskRecord, returns) -> None:
        task.done = True
        with self.lock:
            self.by_task.pop(task.task_id, None)
        self._hand_over(task, returns)

    def _hand_over(self, task: TaskRecord, returns) -> None:
        # Results in the store keep their lineage (arguments) alive; otherwise the arguments
        # are let go *before* the caller wakes, so that a ``del`` of them right after its
        # ``get`` frees them at once (and a node that pulled a copy reuses its pages).
        if not any(r[0] == STORED for r in returns):
            task.held = []
        self.core.complete_returns(task.return_ids, returns)

    def reconstruct(self, oid: bytes) -> bool:
        """Re-run the task that made ``oid`` (its stored copy was lost); False if it cannot."""
        obj = self.core.objects.owned(oid)
        task = obj.task if obj is not None else None
        if task is None or not task.done or task.cancelled or not retries_left(task):
            return False
        log.info("object %s was lost; re-running %s to rebuild it", oid.hex(), task.fn_name)
        task.attempt += 1
        task.done = False
        for rid in task.return_ids:
            self.core.objects.reset_pending(rid)
        with self.lock:
            self.by_task[task.task_id] = task
        self._resolve_deps(task)
        return True

    def _finish_all(self, task: TaskRecord, error: BaseException) -> None:
        self._event((task, task.attempt, FAILED, _now(), error))
        task.done = True
        with self.lock:
            self.by_task.pop(task.task_id, None)
        self.core.fail_returns(task.return_ids, error)
        task.held = []

    # -- cancel --------------------------------------------------------------
    def cancel(self, task_id: bytes, force: bool, recursive: bool = True) -> bool:
        """Cancel a task submitted here; False if it is unknown or already finished."""
        with self.lock:
            task = self.by_task.get(task_id)
            if task is None or task.done:
                return False
            w = self.state.cancel(task)
        if w is None:  # queued, or waiting on its arguments
            self._finish_all(task, exc.TaskCancelledError(task_id.hex()))
        elif force:
            task.force_cancelled = True
            w.raylet.kill_worker(w.worker_id)
        else:
            w.conn.cancel_task(task_id, recursive)
        return True

    def cancel_children(self, parent: bytes, force: bool = False) -> None:
        with self.lock:
            kids = self.children.pop(parent, [])
        for child in kids:
            self.cancel(child, force, True)

    def forget_children(self, parent: bytes) -> None:
        with self.lock:
            self.children.pop(parent, None)

    # -- housekeeping ----------------------------------------------------------
    def return_idle_leases(self, now: float) -> bool:
        """Give back leases idle for a while; True if some leases are still held."""
        out: list = []
        with self.lock:
            held = self.state.tick(now, out)
            self._execute(out)
        return held

    def fail_waiting(self, error: BaseException) -> None:
        """Fail every task still waiting for a worker (this process's node is gone)."""
        out: list = []
        with self.lock:
            self.state.fail_queued(error, out)
            later = self._execute(out)
        self._fail(later)

    def return_all_leases(self) -> None:
        out: list = []
        with self.lock:
            self.state.return_all(out)
            self._execute(out)


def _largest_holder(resolved: list) -> str | None:
    """The node holding the most bytes of a task's stored arguments (None if all inline)."""
    by_node: dict = {}
    for entry in resolved:
        if entry[0] == STORED and len(entry) > 3 and entry[2]:
            by_node[entry[2]] = by_node.get(entry[2], 0) + entry[3]
    return max(by_node, key=lambda n: by_node[n]) if by_node else None

"""Leasing workers and pushing tasks to them (Ray's direct task calls).

Tasks with the same *scheduling key* (resources + runtime env) share leases.
A task waits here until its top-level ObjectRef arguments exist; then it is
queued under its key. While a key has queued tasks and fewer leased workers
than it could use, we ask the node manager for more leases. Each leased
worker runs one task at a time; its reply comes back on the connection we
pushed on, so the node manager never sees individual tasks. A lease with no
work is kept for ``IDLE_LEASE_S`` (a loop of submit-then-get reuses it
without asking again) and then given back.

SPREAD tasks share leases too (as in Ray): each *lease request* is placed by
the node managers' SPREAD policy, so a key's leases land on different nodes,
and the submitter deals tasks over them node by node (see
``_dispatch_spread``), so that neither the first lease to come back nor the
node with the most workers runs a whole burst.

A worker that dies mid-task fails the push with ConnectionClosed: the task
is retried (``max_retries``) or fails with WorkerCrashedError.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field

from skate import exceptions as exc
from skate.core import serialization
from skate.core.node_manager.client import NodeManagerClient
from skate.core.worker.client import WorkerClient

log = logging.getLogger(__name__)

IDLE_LEASE_S = 0.02
MAX_LEASE_REQUESTS_PER_KEY = 16
#: Tasks whose average run time is below SHORT_TASK_S are pipelined, up to
#: PIPELINE_DEPTH per worker, so a worker never idles waiting for the next
#: push; longer tasks go one at a time so none waits behind a slow one.
SHORT_TASK_S = 0.002
PIPELINE_DEPTH = 4
RETRY_LEASE_S = 0.2
#: SPREAD: how long a lease request on its way to a node, or a busy node that has not
#: answered, holds back the other nodes; and by how many tasks they may run ahead of a
#: node whose lease is on its way.
SPREAD_WAIT_S = 0.2
SPREAD_SLACK = 1


@dataclass
class TaskRecord:
    task_id: bytes
    key: tuple
    resources: dict
    env_vars: dict | None
    fn_key: bytes
    fn_blob: bytes
    fn_name: str
    args_blob: bytes
    deps: list  # top-level ObjectRefs, in placeholder order
    held: list  # every ObjectRef this task keeps alive (deps, nested refs, big-args ref)
    return_ids: list
    max_retries: int
    retry_exceptions: bool | list | tuple | None  # or exception classes to retry on
    max_calls: int
    strategy: object = None  # None, "SPREAD" or ("node", node_id, soft)
    attempt: int = 0
    resolved: list = field(default_factory=list)
    preferred_node: str | None = None  # the node holding most of its argument bytes
    cancelled: bool = False
    force_cancelled: bool = False
    worker: _Leased | None = None  # while in flight
    done: bool = False


@dataclass
class _Leased:
    lease_id: int
    worker_id: str
    address: str
    conn: WorkerClient
    gpu_ids: list
    raylet: NodeManagerClient  # the node manager that granted it (gets it back)
    node_id: str = ""
    inflight: int = 0
    idle_since: float = 0.0
    dead: bool = False


@dataclass(eq=False)  # compared and hashed by identity
class _Request:
    """One outstanding lease request."""

    key: tuple
    raylet: NodeManagerClient
    node: str | None  # set when it went to another node
    sent: float
    abandoned: bool = False


@dataclass
class _Key:
    queue: collections.deque = field(default_factory=collections.deque)
    workers: list = field(default_factory=list)
    requested: int = 0
    resources: dict = field(default_factory=dict)
    env_vars: dict | None = None
    strategy: object = None
    avg_run_s: float = 1.0  # moving average of run time; starts pessimistic
    # SPREAD only: lease requests not answered yet, and tasks pushed per node since the key
    # was last idle (nothing queued or running)
    pending: set = field(default_factory=set)
    sent: dict = field(default_factory=dict)

    def depth(self) -> int:
        return PIPELINE_DEPTH if self.avg_run_s < SHORT_TASK_S else 1


class TaskSubmitter:
    def __init__(self, core):
        self.core = core
        self.lock = threading.RLock()
        self.keys: dict[tuple, _Key] = {}
        self.fn_sent: dict[str, set] = collections.defaultdict(set)  # worker id -> fn keys it has
        self.by_task: dict[bytes, TaskRecord] = {}
        self.children: dict[bytes, list] = {}  # running task here -> tasks it submitted
        self.remote_requests: dict[int, _Request] = {}  # lease requests sent to other nodes

    # -- submission ----------------------------------------------------------
    def submit(self, task: TaskRecord) -> None:
        parent = self.core.current_task
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
        resolved = [None] * len(deps)
        lock = threading.Lock()

        def one_ready(i, entry):
            resolved[i] = entry
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                task.resolved = resolved
                task.preferred_node = _largest_holder(resolved)
                failed = next((e for e in resolved if e[0] == "err"), None)
                if failed is not None:
                    self._finish_all(task, failed[1])
                else:
                    self._enqueue(task)

        for i, ref in enumerate(deps):
            self.core.resolve_dependency(ref, lambda entry, i=i: one_ready(i, entry))

    def _enqueue(self, task: TaskRecord) -> None:
        with self.lock:
            if task.cancelled:
                return
            k = self.keys.get(task.key)
            if k is None:
                k = self.keys[task.key] = _Key(resources=task.resources, env_vars=task.env_vars,
                                               strategy=task.strategy)
            k.queue.append(task)
            self._dispatch(task.key, k)

    def _dispatch(self, key: tuple, k: _Key) -> None:
        if k.strategy == "SPREAD":
            self._dispatch_spread(k)
        else:
            depth = k.depth()
            for level in range(1, depth + 1):  # fill every worker to one, then to two, ...
                for w in k.workers:
                    if not k.queue:
                        break
                    if w.inflight < level and not w.dead:
                        self._push(k.queue.popleft(), w)
        want = min(len(k.queue), MAX_LEASE_REQUESTS_PER_KEY) - k.requested
        for _ in range(want):
            k.requested += 1
            self._request_lease(key, k, self.core.raylet, hops=0)

    def _dispatch_spread(self, k: _Key) -> None:
        """Deal queued SPREAD tasks node by node: each to the node that has had the fewest.

        A node may run ahead of another by a few tasks only: SPREAD_SLACK ahead of a node
        whose lease is still on its way (for SPREAD_WAIT_S), and two pipelines' worth ahead
        of a leased node that is busy but keeps answering. A node silent for SPREAD_WAIT_S
        holds nobody back, so a straggler delays a burst but never stalls it.
        """
        live = [w for w in k.workers if not w.dead]
        if not (k.queue and live):
            return
        now = time.monotonic()
        sent = k.sent
        depth = k.depth()
        answering: dict = {}  # leased node -> some worker there answered lately
        for w in live:
            lively = not w.inflight or now - w.idle_since < SPREAD_WAIT_S
            answering[w.node_id] = answering.get(w.node_id, False) or lively
        floor = min((sent.get(n, 0) for n, a in answering.items() if a), default=None)
        limit = float("inf") if floor is None else floor + 2 * depth
        if k.pending:
            awaited = {r.node or self.core.node_id for r in k.pending
                       if now - r.sent < SPREAD_WAIT_S} - answering.keys()
            if awaited:
                limit = min(limit, min(sent.get(n, 0) for n in awaited) + SPREAD_SLACK)
        while k.queue:
            best: _Leased | None = None
            best_rank = (0, 0)  # read only once best is set
            for w in live:
                n = sent.get(w.node_id, 0)
                if w.inflight >= depth or n >= limit:
                    continue
                rank = (n, w.inflight)
                if best is None or rank < best_rank:
                    best, best_rank = w, rank
            if best is None:
                return  # a reply, a new lease or the housekeeper's next tick deals the rest
            sent[best.node_id] = best_rank[0] + 1
            self._push(k.queue.popleft(), best)

    def _request_lease(self, key: tuple, k: _Key, raylet: NodeManagerClient, hops: int,
                       node: str | None = None) -> None:
        # locality: ask for a worker near the arguments of the task next in line
        preferred = k.queue[0].preferred_node if k.queue else None
        req = _Request(key, raylet, node, time.monotonic())
        if node is not None:  # another node: watched, in case that node hangs
            self.remote_requests[id(req)] = req
        if k.strategy == "SPREAD":
            k.pending.add(req)
        raylet.request_lease(k.resources, k.env_vars, False, k.strategy, preferred, hops > 0,
                             callback=lambda ok, v: self._answered(req, hops, ok, v))

    def _answered(self, req: "_Request", hops: int, ok: bool, value) -> None:
        with self.lock:
            self.remote_requests.pop(id(req), None)
            k = self.keys.get(req.key)
            if k is not None:
                k.pending.discard(req)
            if req.abandoned:  # its node was declared dead meanwhile; we asked elsewhere
                if ok and value is not None and value[0] != "spill":
                    req.raylet.return_lease(value[0], False)
                return
        self._granted(req.key, req.raylet, hops, ok, value)

    def abandon_requests_to_dead_nodes(self, now: float) -> None:
        """Lease requests waiting on a node that has since died (it hung) are asked again."""
        with self.lock:
            old = [r for r in self.remote_requests.values() if now - r.sent > 1.0]
        if not old:
            return
        dead = {r.node for r in old if self.core.node_is_dead(r.node, wait=False)}
        with self.lock:
            for r in old:
                if r.node in dead and not r.abandoned:
                    r.abandoned = True
                    self.remote_requests.pop(id(r), None)
                    self.keys[r.key].pending.discard(r)
                    self._retry_later(r.key)  # its k.requested slot carries over

    def _granted(self, key: tuple, raylet: NodeManagerClient, hops: int, ok: bool, value) -> None:
        with self.lock:
            k = self.keys[key]
            if ok and value is not None and value[0] == "spill":
                # the node manager sent us to a node with room: ask there instead
                try:
                    target = self.core.node_manager_at(value[1]) if hops < 8 else None
                except OSError:
                    target = None  # that node just died; our views lag by a heartbeat
                if target is not None:
                    self._request_lease(key, k, target, hops + 1, node=value[2])
                else:
                    self._retry_later(key)
                return
            k.requested -= 1
            if not ok or value is None:
                if not ok and isinstance(value, (ValueError, exc.WorkerStartupError)):
                    # unschedulable (e.g. pinned to a dead node), or its workers cannot start
                    failed = list(k.queue)
                    k.queue.clear()
                    for task in failed:
                        self._finish_all(task, value if isinstance(value, exc.WorkerStartupError)
                                         else exc.TaskUnschedulableError(str(value)))
                elif not ok and self.core.connected and k.queue:
                    # that node manager died (or was unreachable): ask again shortly,
                    # once the cluster view no longer lists it
                    log.info("lease request failed (%s); asking again", value)
                    k.requested += 1
                    self._retry_later(key)
                return
            lease_id, worker_id, address, gpu_ids, node_id = value
            try:
                conn = self.core.worker_at(address)
            except OSError:
                raylet.return_lease(lease_id, True)
                self._dispatch(key, k)
                return
            w = _Leased(lease_id, worker_id, address, conn, gpu_ids, raylet=raylet,
                        node_id=node_id, idle_since=time.monotonic())
            if not k.queue:
                raylet.return_lease(lease_id, False)
                return
            k.workers.append(w)
            self._dispatch(key, k)

    def _retry_later(self, key: tuple) -> None:
        t = threading.Timer(RETRY_LEASE_S, self._retry_lease, (key,))
        t.daemon = True
        t.start()

    def _retry_lease(self, key: tuple) -> None:
        with self.lock:
            k = self.keys[key]
            if not self.core.connected or not k.queue:
                k.requested -= 1
                return
            self._request_lease(key, k, self.core.raylet, hops=0)

    def _push(self, task: TaskRecord, w: _Leased) -> None:
        w.inflight += 1
        task.worker = w
        sent = self.fn_sent[w.worker_id]
        blob = None
        if task.fn_key not in sent:
            blob = task.fn_blob
            sent.add(task.fn_key)
        spec = (task.task_id, task.fn_key, blob, task.fn_name, task.args_blob, task.resolved,
                task.return_ids, self.core.address, w.gpu_ids, task.resources, task.max_calls,
                task.attempt, (self.core.job_id, self.core.namespace))
        w.conn.push_task(spec, callback=lambda ok, v: self._replied(task, w, ok, v))

    # -- replies -------------------------------------------------------------
    def _replied(self, task: TaskRecord, w: _Leased, ok: bool, value) -> None:
        retry = False
        if ok and value[0] in ("bounced", "need_function"):
            # bounced: queued behind a slow task, so run it elsewhere;
            # need_function: the push that carried the function never ran there
            with self.lock:
                task.worker = None
                w.inflight -= 1
                k = self.keys[task.key]
                if value[0] == "bounced":
                    k.avg_run_s = max(k.avg_run_s, 10 * SHORT_TASK_S)
                else:
                    self.fn_sent[w.worker_id].discard(task.fn_key)
                if not task.cancelled:
                    k.queue.appendleft(task)
                self._dispatch(task.key, k)
            return
        with self.lock:
            task.worker = None
            k = self.keys[task.key]
            w.inflight -= 1
            w.idle_since = time.monotonic()
            if ok:
                k.avg_run_s = 0.8 * k.avg_run_s + 0.2 * value[4]
            if k.sent and not k.queue and not any(x.inflight for x in k.workers):
                k.sent.clear()  # idle: the next burst is balanced afresh
            if not ok or value[3]:  # connection lost, or the worker exits (max_calls)
                w.dead = True
                if w in k.workers:
                    k.workers.remove(w)
                self.fn_sent.pop(w.worker_id, None)
                if ok:
                    w.raylet.return_lease(w.lease_id, True)
            # the common case, a success: one pass under the lock; the next push goes out
            # before the results are handed over
            done = ok and not value[2]
            if done:
                task.done = True
                self.by_task.pop(task.task_id, None)
                self._dispatch(task.key, k)
        if done:
            self._hand_over(task, value[1])
            return
        if not ok:
            if task.cancelled:
                self._finish_all(task, exc.TaskCancelledError(task.task_id.hex()))
            elif task.max_retries == -1 or task.attempt < task.max_retries:
                retry = True
            elif self.core.node_is_dead(w.node_id):
                self._finish_all(task, exc.NodeDiedError(
                    f"Task {task.fn_name} (id {task.task_id.hex()}) failed because the node it "
                    f"was running on ({w.node_id}) died; it was tried {task.attempt + 1} "
                    f"time(s) (max_retries={task.max_retries})."))
            else:
                self._finish_all(task, exc.WorkerCrashedError(
                    f"The worker running task {task.fn_name} (id {task.task_id.hex()}) died "
                    f"unexpectedly ({value}); it was tried {task.attempt + 1} time(s) "
                    f"(max_retries={task.max_retries})."))
        else:
            _, returns, app_error, _exiting, _run_s = value
            if app_error and not task.cancelled and self._should_retry_app_error(task, returns):
                retry = True
            else:
                self._complete(task, returns)
        if retry:
            task.attempt += 1
            for oid in task.return_ids:
                self.core.objects.reset_pending(oid)
            self._enqueue(task)
        with self.lock:
            k = self.keys[task.key]
            self._dispatch(task.key, k)

    def _should_retry_app_error(self, task: TaskRecord, returns) -> bool:
        rx = task.retry_exceptions
        if not rx or not (task.max_retries == -1 or task.attempt < task.max_retries):
            return False
        if isinstance(rx, bool):  # a truthy bool: True
            return True
        r = returns[0]
        err = serialization.loads(r[2], r[3]) if r[0] == "i" else None
        cause = getattr(err, "cause", err)
        return isinstance(cause, tuple(rx))

    def _complete(self, task: TaskRecord, returns) -> None:
        task.done = True
        with self.lock:
            self.by_task.pop(task.task_id, None)
        self._hand_over(task, returns)

    def _hand_over(self, task: TaskRecord, returns) -> None:
        # Results in the store keep their lineage (arguments) alive; otherwise the arguments
        # are let go *before* the caller wakes, so that a ``del`` of them right after its
        # ``get`` frees them at once (and a node that pulled a copy reuses its pages).
        if not any(r[0] == "s" for r in returns):
            task.held = []
        self.core.complete_returns(task.return_ids, returns)

    def reconstruct(self, oid: bytes) -> bool:
        """Re-run the task that made ``oid`` (its stored copy was lost); False if it cannot."""
        obj = self.core.objects.owned(oid)
        task = obj.task if obj is not None else None
        if task is None or not task.done or task.cancelled:
            return False
        if not (task.max_retries == -1 or task.attempt < task.max_retries):
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
        task.done = True
        with self.lock:
            self.by_task.pop(task.task_id, None)
        self.core.fail_returns(task.return_ids, error)
        task.held = []

    # -- cancel --------------------------------------------------------------
    def cancel(self, task_id: bytes, force: bool, recursive: bool = True) -> bool:
        with self.lock:
            task = self.by_task.get(task_id)
            if task is None or task.done:
                return False
            task.cancelled = True
            k = self.keys.get(task.key)
            if k is not None and task in k.queue:
                k.queue.remove(task)
                queued = True
            else:
                queued = task.worker is None
            w = task.worker
        if queued:
            self._finish_all(task, exc.TaskCancelledError(task_id.hex()))
            return True
        if w is not None:
            if force:
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
        still_idle = False
        with self.lock:
            for k in self.keys.values():
                if k.strategy == "SPREAD" and k.queue:  # held back for balance: maybe no longer
                    self._dispatch_spread(k)
                for w in list(k.workers):
                    if w.inflight or k.queue:
                        still_idle = True
                        continue
                    if now - w.idle_since >= IDLE_LEASE_S:
                        k.workers.remove(w)
                        w.raylet.return_lease(w.lease_id, False)
                    else:
                        still_idle = True
        return still_idle

    def return_all_leases(self) -> None:
        with self.lock:
            for k in self.keys.values():
                for w in k.workers:
                    w.raylet.return_lease(w.lease_id, False)
                k.workers.clear()


def _largest_holder(resolved: list) -> str | None:
    """The node holding the most bytes of a task's stored arguments (None if all inline)."""
    by_node: dict = {}
    for entry in resolved:
        if entry[0] == "s" and len(entry) > 3 and entry[2]:
            by_node[entry[2]] = by_node.get(entry[2], 0) + entry[3]
    return max(by_node, key=lambda n: by_node[n]) if by_node else None

"""How normal tasks are queued, leased workers and pushed: the submitter's policy, sans IO.

Design. ``task_submitter.py`` is the I/O shell: it resolves arguments, holds the
lock, sends RPCs and runs timers. It tells this state machine what happened
(``enqueue``, ``answered``, ``replied``, ``tick``, ``retry_lease``, ``abandon``,
``cancel``) and executes the commands that come back, in order, under its
lock. Time is passed in; nothing here reads a clock, touches a socket or
sleeps, so every path is unit-tested by feeding events
(tests/core/worker/test_submission.py).

Commands are tuples, tag first, appended to a list the caller passes in:
this is the hottest path in Skate (every task goes through it, 10-20k a
second from one client) and a tuple costs a tenth of a frozen dataclass.
``FAIL`` runs after the shell lets go of the lock, the others under it. The
verdict on the task that replied is ``replied``'s return value, so that a
success allocates nothing but the next push.

Keys. Tasks with the same *scheduling key* (resources, runtime env,
strategy) are interchangeable for a worker, so they share one queue and one
set of leased workers (``KeyState``). While a key has queued tasks and fewer
leased workers than it could use, it asks the node manager for more, at most
``MAX_LEASE_REQUESTS_PER_KEY`` at a time: enough to grow fast, few enough
not to flood the node managers with a burst's worth of requests.

Leases. We push tasks to a leased worker directly, so the node manager never
sees individual tasks. A lease with nothing to run is kept ``IDLE_LEASE_S``
(a loop of submit-then-get reuses it) and then returned. A worker that exits
after a reply (``max_calls``) is returned with ``kill``; one whose
connection was lost is only forgotten (the node manager saw it go).

Pipelining. Tasks whose moving-average run time is below ``SHORT_TASK_S``
are pushed up to ``PIPELINE_DEPTH`` per worker, so a worker never idles
waiting for its next push; longer tasks go one at a time so none waits
behind a slow one. The average starts pessimistic (1 s). A pipelined task
stuck behind a slow one comes back ``BOUNCED``: it is queued again at the
front and the key's depth drops to one. A worker that never got the function
(the push that carried it bounced) answers ``NEED_FUNCTION``: the task is
queued at the front and its next push carries the function again.

SPREAD. Each *lease request* of a SPREAD key is placed by the node managers'
SPREAD policy, so its leases land on different nodes; here tasks are dealt
over them node by node, each to the node that has had the fewest since the
key was last idle (``KeyState.sent``). A node may run ahead of another by a
few tasks only: ``SPREAD_SLACK`` ahead of a node whose lease is on its way
(for ``SPREAD_WAIT_S``), two pipelines' worth ahead of a leased node that is
busy but keeps answering. A node silent for ``SPREAD_WAIT_S`` holds nobody
back, so a straggler delays a burst but never stalls it; tasks held back are
dealt on the next reply, grant or ``tick``.

Spillback and retries. A node manager without room answers with another
node to ask (``Spill``); we follow up to ``MAX_SPILL_HOPS`` hops, then ask
our own again after ``RETRY_LEASE_S``. The request's slot in ``requested``
carries over through spills, abandonments (its node died while it waited)
and retries later, so ``requested`` counts every lease request that is in
flight or waiting for its timer. A lease request that fails with ValueError
(unschedulable: e.g. pinned to a dead node) or WorkerStartupError (its
workers cannot start) fails every queued task of the key, since they would
all fail the same way; any other error (the node manager died) is asked
again later.

A failed push's fate (retried, failed, out of memory) is decided by
``task_retries.settle``.

Invariants (checked by ``validate``):

* per key, ``0 <= requested <= MAX_LEASE_REQUESTS_PER_KEY``, and the SPREAD
  requests awaiting an answer (``pending``) are among them;
* a leased worker in ``workers`` is not dead, belongs to that key, and has
  ``0 <= inflight <= PIPELINE_DEPTH`` (at most ``depth``, except for pushes
  made before the depth dropped);
* a task is in at most one place: once in one key's queue, with no worker,
  or in flight on one worker (``task.worker``); inflight counts match;
* ``sent`` (SPREAD only) counts only nodes that had tasks pushed (>= 1);
* ``depth`` is the one ``avg_run_s`` implies;
* ``remote_requests`` holds the live requests sent to another node.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass, field

from skate import exceptions as exc
from skate.core.protocol import BOUNCED, OK, SPILL, LeaseGrant, Spill

IDLE_LEASE_S = 0.02
MAX_LEASE_REQUESTS_PER_KEY = 16
#: Tasks whose average run time is below SHORT_TASK_S are pipelined, up to
#: PIPELINE_DEPTH per worker.
SHORT_TASK_S = 0.002
PIPELINE_DEPTH = 4
RETRY_LEASE_S = 0.2
MAX_SPILL_HOPS = 8
#: SPREAD: how long a lease request on its way to a node, or a busy node that has not
#: answered, holds back the other nodes; and by how many tasks they may run ahead of a
#: node whose lease is on its way.
SPREAD_WAIT_S = 0.2
SPREAD_SLACK = 1
#: A lease request sent to another node unanswered for this long is checked: has it died?
STALE_REQUEST_S = 1.0

# -- commands: tuples, tag first ------------------------------------------------------------
PUSH = "push"  #: (PUSH, task, lease, fn_blob or None): send the task to the worker
REQUEST_LEASE = "request_lease"  #: (REQUEST_LEASE, request): send it (the shell sets .raylet)
RETURN_LEASE = "return_lease"  #: (RETURN_LEASE, raylet, lease_id, kill)
RETRY_LATER = "retry_later"  #: (RETRY_LATER, key): call retry_lease(key) in RETRY_LEASE_S
FAIL = "fail"  #: (FAIL, task, error): fail its returns (after the lock is let go)

# -- verdicts of ``replied``: DONE (hand the returns over), REQUEUED, FAILED (ask
# ``task_retries.settle`` what to do)
DONE, REQUEUED, FAILED = "done", "requeued", "failed"


@dataclass
class TaskRecord:
    """A normal task, from submission until its returns are complete (or failed)."""

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
    worker: Lease | None = None  # while in flight
    done: bool = False
    parent_task: bytes | None = None  # the task that submitted it (for the task history)
    oom_retries: int = 0  # attempts after the memory monitor killed it (not max_retries')


class Lease:
    """A leased worker. ``conn`` and ``raylet`` are the shell's handles, carried opaquely."""

    __slots__ = ("lease_id", "worker_id", "address", "conn", "gpu_ids", "raylet", "node_id",
                 "state", "fn_sent", "inflight", "idle_since", "dead")

    def __init__(self, lease_id, worker_id, address, conn, gpu_ids, raylet, node_id, state,
                 fn_sent, now):
        self.lease_id = lease_id
        self.worker_id = worker_id
        self.address = address
        self.conn = conn
        self.gpu_ids = gpu_ids
        self.raylet = raylet  # the node manager that granted it (gets it back)
        self.node_id = node_id
        self.state: KeyState = state  # the key it runs tasks of
        self.fn_sent: set = fn_sent  # fn keys this worker has (Submission.fn_sent's set)
        self.inflight = 0  # tasks pushed and not answered
        self.idle_since: float = now  # last reply (or the grant)
        self.dead = False  # lost or exiting: no more pushes


class Request:
    """One lease request in flight (or waiting to be sent by the shell)."""

    __slots__ = ("key", "state", "address", "node", "hops", "preferred", "sent", "raylet",
                 "abandoned", "retriable")

    def __init__(self, state, address, node, hops, preferred, now, retriable=True):
        self.key: tuple = state.key
        self.state: KeyState = state
        self.address: str | None = address  # None: our own node manager
        self.node: str | None = node  # set when it went to another node
        self.hops: int = hops  # spills followed so far
        self.preferred: str | None = preferred  # where the next task's arguments are
        self.sent: float = now
        self.raylet = None  # the client the shell sent it through
        self.abandoned = False  # its node died while it waited; asked elsewhere
        # the next task's max_retries != 0, told to the node manager (its memory monitor
        # kills workers of retriable leases first), as Ray's lease carries its task's spec
        self.retriable: bool = retriable


class KeyState:
    """One scheduling key's queue, leases and requests."""

    __slots__ = ("key", "queue", "workers", "requested", "resources", "env_vars", "strategy",
                 "spread", "avg_run_s", "depth", "pending", "sent")

    def __init__(self, key: tuple, task: TaskRecord):
        self.key = key
        self.queue: collections.deque = collections.deque()  # runnable, in order
        self.workers: list[Lease] = []  # live leases
        self.requested = 0  # lease requests in flight or waiting for RETRY_LATER
        self.resources = task.resources
        self.env_vars = task.env_vars
        self.strategy = task.strategy
        self.spread = task.strategy == "SPREAD"
        self.avg_run_s = 1.0  # moving average of run time; starts pessimistic
        self.depth = 1  # pushes per worker: what avg_run_s implies
        # SPREAD only: lease requests not answered yet, and tasks pushed per node since the
        # key was last idle (nothing queued or running)
        self.pending: set[Request] = set()
        self.sent: dict[str, int] = {}

    def set_avg(self, avg: float) -> None:
        self.avg_run_s = avg
        self.depth = PIPELINE_DEPTH if avg < SHORT_TASK_S else 1


class Submission:
    """The queues, leases and lease requests of one submitter; see the module docstring.

    Every event method appends its commands to ``out`` and returns quickly when there is
    nothing to do.
    """

    def __init__(self, local_node: str):
        self.local_node = local_node  # our node's id (where requests with no node go)
        self.keys: dict[tuple, KeyState] = {}
        self.fn_sent: dict[str, set] = {}  # worker id -> fn keys it has (outlives leases)
        self.remote_requests: dict[int, Request] = {}  # id -> request sent to another node

    # ---- events -------------------------------------------------------------------------------

    def enqueue(self, task: TaskRecord, now: float, out: list) -> None:
        """A task's arguments are ready: queue it and dispatch."""
        if task.cancelled:
            return
        k = self.keys.get(task.key)
        if k is None:
            k = self.keys[task.key] = KeyState(task.key, task)
        k.queue.append(task)
        self._dispatch(k, now, out)

    def replied(self, task: TaskRecord, w: Lease, ok: bool, value, now: float,
                out: list) -> str:
        """A push was answered (``ok``: a PushReply, BOUNCED or NEED_FUNCTION; else the
        connection error). Returns DONE, REQUEUED or FAILED (then ask ``settle``)."""
        k = w.state
        task.worker = None
        w.inflight -= 1
        if ok and value[0] != OK:  # BOUNCED or NEED_FUNCTION
            if value[0] == BOUNCED[0]:  # queued behind a slow task: run it elsewhere
                if k.avg_run_s < 10 * SHORT_TASK_S:
                    k.set_avg(10 * SHORT_TASK_S)
            else:  # the push that carried the function never ran there
                w.fn_sent.discard(task.fn_key)
            if task.cancelled:  # cancelled while it waited there: it never ran
                out.append((FAIL, task, exc.TaskCancelledError(task.task_id.hex())))
            else:
                k.queue.appendleft(task)
            self._dispatch(k, now, out)
            return REQUEUED
        w.idle_since = now
        if ok:
            k.set_avg(0.8 * k.avg_run_s + 0.2 * value[4])
        if k.sent and not k.queue and not any(x.inflight for x in k.workers):
            k.sent.clear()  # idle: the next burst is balanced afresh
        if not ok or value[3]:  # connection lost, or the worker exits (max_calls)
            self._drop(w)
            if ok:
                out.append((RETURN_LEASE, w.raylet, w.lease_id, True))
        # the next push goes out before the caller hands this task's results over
        self._dispatch(k, now, out)
        return DONE if ok and not value[2] else FAILED

    def answered(self, req: Request, ok: bool, value, conn, now: float, connected: bool,
                 out: list, node_lost: BaseException | None = None) -> None:
        """A lease request was answered: ``ok`` with a LeaseGrant (``conn``: the shell's
        connection to that worker, None if it could not connect), a Spill or None
        (cancelled); or not ``ok`` with the error. ``connected``: the shell still is.
        ``node_lost``: this process's own node (or the control store) is gone for good --
        asking again would wait forever, so the key's queued tasks fail with it."""
        self.remote_requests.pop(id(req), None)
        k = req.state
        k.pending.discard(req)
        grant = ok and value is not None and value[0] != SPILL
        if req.abandoned:  # its slot went to the request that replaced it
            if grant:
                out.append((RETURN_LEASE, req.raylet, LeaseGrant.read(value).lease_id, False))
            return
        if ok and value is not None and not grant:  # a spill: ask the node it named
            if req.hops < MAX_SPILL_HOPS:
                spill = Spill.read(value)
                self._request(k, spill.address, spill.node_id, req.hops + 1, now, out)
            else:
                out.append((RETRY_LATER, k.key))
            return
        k.requested -= 1
        if not grant:
            if ok:
                return  # cancelled
            if isinstance(value, (ValueError, exc.WorkerStartupError)):
                # unschedulable (e.g. pinned to a dead node), or its workers cannot start:
                # every queued task of the key would fail the same way
                error = value if isinstance(value, exc.WorkerStartupError) \
                    else exc.TaskUnschedulableError(str(value))
                while k.queue:
                    out.append((FAIL, k.queue.popleft(), error))
            elif node_lost is not None:
                while k.queue:
                    out.append((FAIL, k.queue.popleft(), node_lost))
            elif connected and k.queue:
                # that node manager died (or was unreachable): ask again shortly, once the
                # cluster view no longer lists it
                k.requested += 1
                out.append((RETRY_LATER, k.key))
            return
        g = LeaseGrant.read(value)
        if conn is None:  # we could not reach the worker
            out.append((RETURN_LEASE, req.raylet, g.lease_id, True))
            self._dispatch(k, now, out)
            return
        if not k.queue:
            out.append((RETURN_LEASE, req.raylet, g.lease_id, False))
            return
        fn_sent = self.fn_sent.get(g.worker_id)
        if fn_sent is None:
            fn_sent = self.fn_sent[g.worker_id] = set()
        k.workers.append(Lease(g.lease_id, g.worker_id, g.address, conn, g.gpu_ids, req.raylet,
                               g.node_id, k, fn_sent, now))
        self._dispatch(k, now, out)

    def unsent(self, req: Request, out: list) -> None:
        """The shell could not reach the node ``req`` was for: ask ours again later."""
        self.remote_requests.pop(id(req), None)
        req.state.pending.discard(req)
        out.append((RETRY_LATER, req.key))

    def retry_lease(self, key: tuple, now: float, connected: bool, out: list,
                    node_lost: BaseException | None = None) -> None:
        """A RETRY_LATER timer fired: ask our node manager again, if still wanted (with
        ``node_lost``, the queued tasks fail with it instead)."""
        k = self.keys[key]
        if node_lost is not None:
            k.requested -= 1
            while k.queue:
                out.append((FAIL, k.queue.popleft(), node_lost))
            return
        if not connected or not k.queue:
            k.requested -= 1
            return
        self._request(k, None, None, 0, now, out)

    def stale_requests(self, now: float) -> list[Request]:
        """Requests to other nodes unanswered for STALE_REQUEST_S: has their node died?"""
        return [r for r in self.remote_requests.values() if now - r.sent > STALE_REQUEST_S]

    def abandon(self, req: Request, out: list) -> None:
        """``req``'s node died while it waited: ask again later (its slot carries over)."""
        if req.abandoned:
            return
        req.abandoned = True
        self.remote_requests.pop(id(req), None)
        req.state.pending.discard(req)
        out.append((RETRY_LATER, req.key))

    def cancel(self, task: TaskRecord) -> Lease | None:
        """Mark ``task`` cancelled and take it off its queue; the worker running it, if any."""
        task.cancelled = True
        k = self.keys.get(task.key)
        if k is not None and task.worker is None:
            try:
                k.queue.remove(task)
            except ValueError:
                pass  # waiting on its arguments, or between attempts
        return task.worker

    def tick(self, now: float, out: list) -> bool:
        """Housekeeping: deal SPREAD tasks held back, return leases idle IDLE_LEASE_S.
        True while some lease is still held."""
        held = False
        for k in self.keys.values():
            if k.spread and k.queue:  # held back for balance: maybe no longer
                self._deal_spread(k, now, out)
            for w in list(k.workers):
                if w.inflight or k.queue or now - w.idle_since < IDLE_LEASE_S:
                    held = True
                else:
                    k.workers.remove(w)
                    out.append((RETURN_LEASE, w.raylet, w.lease_id, False))
        return held

    def fail_queued(self, error: BaseException, out: list) -> None:
        """This process's node is gone: every task still waiting for a worker fails (those
        already pushed fail as their workers' connections close)."""
        for k in self.keys.values():
            while k.queue:
                out.append((FAIL, k.queue.popleft(), error))

    def return_all(self, out: list) -> None:
        """Shutting down: give every lease back."""
        for k in self.keys.values():
            for w in k.workers:
                out.append((RETURN_LEASE, w.raylet, w.lease_id, False))
            k.workers.clear()

    # ---- internals ----------------------------------------------------------------------------

    def _dispatch(self, k: KeyState, now: float, out: list) -> None:
        queue = k.queue
        if queue:
            if k.spread:
                self._deal_spread(k, now, out)
            else:
                depth = k.depth
                workers = k.workers
                for level in range(1, depth + 1):  # fill every worker to one, then two, ...
                    for w in workers:
                        if w.inflight < level:
                            self._push(queue.popleft(), w, out)
                            if not queue:
                                return
            want = min(len(queue), MAX_LEASE_REQUESTS_PER_KEY) - k.requested
            for _ in range(want):
                k.requested += 1
                self._request(k, None, None, 0, now, out)

    def _push(self, task: TaskRecord, w: Lease, out: list) -> None:
        w.inflight += 1
        task.worker = w
        sent = w.fn_sent
        if task.fn_key in sent:
            out.append((PUSH, task, w, None))
        else:
            sent.add(task.fn_key)
            out.append((PUSH, task, w, task.fn_blob))

    def _request(self, k: KeyState, address: str | None, node: str | None, hops: int,
                 now: float, out: list) -> None:
        # locality: ask for a worker near the arguments of the task next in line
        head = k.queue[0] if k.queue else None
        req = Request(k, address, node, hops, head.preferred_node if head else None, now,
                      head.max_retries != 0 if head else True)
        if node is not None:  # another node: watched, in case that node hangs
            self.remote_requests[id(req)] = req
        if k.spread:
            k.pending.add(req)
        out.append((REQUEST_LEASE, req))

    def _drop(self, w: Lease) -> None:
        w.dead = True
        k = w.state
        if w in k.workers:
            k.workers.remove(w)
        self.fn_sent.pop(w.worker_id, None)

    def _deal_spread(self, k: KeyState, now: float, out: list) -> None:
        """Deal queued SPREAD tasks node by node: each to the node that has had the fewest
        (see the module docstring for the slack and wait rules)."""
        live = k.workers
        if not (k.queue and live):
            return
        sent = k.sent
        depth = k.depth
        answering: dict = {}  # leased node -> some worker there answered lately
        for w in live:
            lively = not w.inflight or now - w.idle_since < SPREAD_WAIT_S
            answering[w.node_id] = answering.get(w.node_id, False) or lively
        floor = min((sent.get(n, 0) for n, a in answering.items() if a), default=None)
        limit = float("inf") if floor is None else floor + 2 * depth
        if k.pending:
            awaited = {r.node or self.local_node for r in k.pending
                       if now - r.sent < SPREAD_WAIT_S} - answering.keys()
            if awaited:
                limit = min(limit, min(sent.get(n, 0) for n in awaited) + SPREAD_SLACK)
        while k.queue:
            best: Lease | None = None
            best_rank = (0, 0)  # read only once best is set
            for w in live:
                n = sent.get(w.node_id, 0)
                if w.inflight >= depth or n >= limit:
                    continue
                rank = (n, w.inflight)
                if best is None or rank < best_rank:
                    best, best_rank = w, rank
            if best is None:
                return  # a reply, a new lease or the next tick deals the rest
            sent[best.node_id] = best_rank[0] + 1
            self._push(k.queue.popleft(), best, out)

    # ---- checks -------------------------------------------------------------------------------

    def validate(self, tasks: Iterable[TaskRecord] = ()) -> None:
        """Assert the invariants of the module docstring; ``tasks``: every task not yet
        finished (to count where each one is)."""
        tasks = list(tasks)
        queued: set[int] = set()
        for key, k in self.keys.items():
            assert k.key == key, key
            assert 0 <= k.requested <= MAX_LEASE_REQUESTS_PER_KEY, (key, k.requested)
            assert len(k.pending) <= k.requested, (key, len(k.pending), k.requested)
            assert k.spread or not (k.pending or k.sent), key
            assert k.depth == (PIPELINE_DEPTH if k.avg_run_s < SHORT_TASK_S else 1), key
            for r in k.pending:
                assert r.state is k and not r.abandoned, key
            assert all(n >= 1 for n in k.sent.values()), (key, k.sent)
            for w in k.workers:
                assert not w.dead and w.state is k, (key, w.worker_id)
                assert 0 <= w.inflight <= PIPELINE_DEPTH, (key, w.worker_id, w.inflight)
                assert w.fn_sent is self.fn_sent.get(w.worker_id), w.worker_id
            assert len({id(w) for w in k.workers}) == len(k.workers), key
            for t in k.queue:
                assert t.key == key and t.worker is None and not t.done, t.task_id
                assert id(t) not in queued, f"task {t.task_id.hex()} queued twice"
                queued.add(id(t))
        for r in self.remote_requests.values():
            assert r.node is not None and not r.abandoned, r.key
        counts: dict[int, int] = {}
        for t in tasks:
            if t.worker is not None:
                assert id(t) not in queued, f"task {t.task_id.hex()} queued and in flight"
                counts[id(t.worker)] = counts.get(id(t.worker), 0) + 1
        if tasks:
            for k in self.keys.values():
                for w in k.workers:
                    assert counts.get(id(w), 0) == w.inflight, (w.worker_id, w.inflight)

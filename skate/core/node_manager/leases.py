"""The node manager's lease scheduling, as a pure state machine: events in, commands out.

Design. A submitter asks its node manager for a worker with some resources
(``RequestLease``); once one is granted it pushes tasks straight to that
worker and returns the lease when its queue is empty, so the node manager is
off the per-task path. ``Leases`` holds the books of one node: what is free,
who waits, who holds what, which workers are idle. The I/O shell
(``server.py``) feeds it events under its lock, with the time in them, and
executes the commands that come back, in order:

* ``Grant(requester, rid, grant)``: answer a request with a ``LeaseGrant``;
* ``SpillTo(requester, rid, spill)``: answer it with another node to ask;
* ``Fail(requester, rid, error)`` / ``Answer(requester, rid, value)``: answer
  with an error or a value (a cancelled request is answered with None: by
  count with ``CancelRequests``, or the one of a tag with ``CancelTagged``);
* ``Warn(requester, message)``: tell the user (an infeasible request);
* ``StartWorker(worker_id, env_key, env_vars)`` / ``KillWorker(worker_id)``;
* ``NotifyWorkerDied(worker_id, owner_died)``: tell the control store.

Requesters are opaque tokens (the shell's connections), workers are ids the
state machine makes with the ``new_worker_id`` it is given. No clocks, no
sockets, no processes here, so every path is unit-tested by feeding events
(tests/core/node_manager/test_leases.py).

Routing. A new request is routed once (``_route``) and again on every
``ClusterView`` while it waits and does not fit here now:

* it **stays** when it fits this node now, or fits its total and no other
  node has room now (it queues here);
* it **spills** (``SpillTo``) when another node should serve it: it can never
  fit here but fits there, it does not fit here now but another node has room
  now, SPREAD chose that node, it is pinned there, or its arguments are there;
* it is **infeasible** when no node could ever fit it: it stays queued (a node
  may join) and its requester is warned once it stayed so for
  ``INFEASIBLE_WARN_S`` (views lag a heartbeat behind a new bundle or node);
* it is **held** when pinned to a node the view does not know yet: for
  ``UNKNOWN_NODE_GRACE_S``, after which a hard pin fails and a soft one is
  routed as if unpinned.

A request spilled here by another node's SPREAD decision (``stay``) is final:
it moves on only to a node with room now, never back and forth between busy
ones.

Workers. A pass (``_schedule``) grants queued requests that fit the free
resources to idle workers of their environment (``env_key``), in order. A
worker is started only for a request that fits *now*, counting the requests
already waiting for a starting worker against the free resources, so a burst
of queued requests does not start a worker each. Failed starts back off
(``StartBackoff``) and, after its limit, fail the requests of that key. A
dedicated (actor) lease may take an idle worker, but its worker is killed when
the lease ends: an actor's process is never reused. Idle workers beyond the
pool's size (and any with a runtime_env) are stopped after
``idle_timeout_s``; with the zygote up, idle task workers it did not fork are
replaced by forked ones (they have its modules imported).

Resources. The sums (total, free, GPU ids by fraction, prepared placement
group bundles, CPUs lent by blocked workers) are kept by
``node_resources.NodeResources`` (``self.resources``), whose docstring has
their rules. Here: ``ReturnBundle`` kills the leases using any of the
bundle's group resources (as Ray does) before the bundle is freed; a leased
worker that waits in ``get`` (``Blocked(worker, True)``) lends its CPUs to
the node so nested tasks cannot deadlock, and takes them back when it
resumes.

Invariants (``validate()`` checks them; tests call it after every event):

* the resource books balance with what the granted leases hold
  (``NodeResources.validate``);
* a granted lease's worker is registered, not idle and not killed, and its
  ``lease`` is that lease; an idle worker has no lease, is registered and
  listed once, under its own env key; a pending request has no worker;
* the watchdog invariant, kept over time: queued work that fits the free
  resources has a worker running or starting for it within ``STALL_S``
  (a trip is a bookkeeping bug: logged, counted, repaired by a start).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from skate.core import resources as res
from skate.core.node_manager import placement
from skate.core.node_manager.lease_events import (  # noqa: F401 - re-exported: ls.<Event>
    Answer,
    Blocked,
    CancelRequests,
    CancelTagged,
    ClusterView,
    Fail,
    Grant,
    KillWorker,
    LeaseReturned,
    NotifyWorkerDied,
    PrepareBundle,
    Prestart,
    RequesterGone,
    RequestLease,
    ReturnBundle,
    SpillTo,
    StartWorker,
    Tick,
    Warn,
    WorkerGone,
    WorkerRegistered,
)
from skate.core.node_manager.node_resources import NodeResources, held_by
from skate.core.node_manager.start_policy import StartBackoff, Watchdog
from skate.core.protocol import SPILL, LeaseGrant, Spill
from skate.exceptions import WorkerStartupError

log = logging.getLogger("skate.node_manager")

INFEASIBLE_WARN_S = 1.0
#: The watchdog: a request that fits the free resources with no worker running or starting
#: for it for this long is a scheduler bug; it is logged, counted and a worker is started.
STALL_S = 1.0
UNKNOWN_NODE_GRACE_S = 2.0  # a node pinned to but not in our view yet: wait this long
CULL_EVERY_S = 0.5  # how often idle workers are looked at for culling


# -- records --------------------------------------------------------------------------------

@dataclass(slots=True, eq=False)
class Lease:
    """A lease request: pending until ``worker`` is set, then granted."""

    lease_id: int
    units: dict  # resources held, fixed point
    env_key: str
    env_vars: dict | None
    dedicated: bool
    requester: Any  # who asked
    rid: int  # the request to answer
    created: float
    strategy: Any = None  # None, "SPREAD" or ("node", id, soft)
    preferred_node: str | None = None
    stay: bool = False  # placed here by a SPREAD decision elsewhere: wait here, never re-spill
    infeasible_since: float | None = None  # when no node could ever fit it, first seen
    held: bool = False  # waiting to learn of the node it is pinned to: never granted here
    warned: bool = False  # its requester was told it is infeasible
    worker: Worker | None = None  # set once granted
    gpu_ids: list = field(default_factory=list)
    blocked: bool = False  # its worker waits in get: its CPUs are lent to the node
    tag: Any = None  # the requester's name for the request (CancelTagged)
    retriable: bool = True  # its tasks are retried if its worker dies (the memory monitor)
    granted_at: float = 0.0  # when it was granted (the memory monitor kills the newest first)


@dataclass(slots=True, eq=False)
class Worker:
    """A worker process as the books see it (the process itself is the shell's)."""

    worker_id: str
    env_key: str
    registered: bool = False  # connected back; before that it is *starting*
    forked: bool = False
    address: str = ""
    lease: Lease | None = None  # the lease it serves; None when idle (or killed)
    idle_since: float = 0.0
    killed: bool = False  # stopped by us: never leased again; its exit is no failed start
    culled: bool = False  # stopped as surplus idle


def env_key(env_vars: dict | None) -> str:
    """Workers are reused only for requests with the same runtime_env variables."""
    if not env_vars:
        return ""
    return repr(sorted(env_vars.items()))


class Leases:
    """The lease books of one node; see the module docstring for the protocol."""

    def __init__(self, node_id: str, total: dict, num_gpus: int, *, pool_size: int,
                 prestart_workers: int, idle_timeout_s: float,
                 new_worker_id: Callable[[], str], address: str = "",
                 transfer_address: str = "", stream_address: str = ""):
        self.node_id = node_id
        # this node's own addresses, for its entry in a view that does not list it yet
        self.address = address
        self.transfer_address = transfer_address
        self.stream_address = stream_address
        self.pool_size = pool_size  # idle task workers kept beyond idle_timeout_s
        self.prestart_workers = prestart_workers
        self.idle_timeout_s = idle_timeout_s
        self._new_worker_id = new_worker_id
        self.resources = NodeResources(total, num_gpus)
        self.pending: list[Lease] = []  # in arrival order; every one has worker None
        self.leases: dict[int, Lease] = {}  # granted: lease id -> lease, its worker set
        # every worker started and not yet seen gone: starting, idle, leased or killed
        self.workers: dict[str, Worker] = {}
        self.idle: dict[str, list[Worker]] = {}  # env key -> idle workers (registered, no lease)
        self.cluster_view: dict = {}  # node id -> placement.NodeView, from the last heartbeat
        # the zygote forks workers now: an unforked idle task worker is replaced. An input the
        # shell keeps current (the zygote's state is the worker pool's).
        self.zygote_up = False
        self.backoff = StartBackoff()
        self.watchdog = Watchdog(STALL_S)
        self._next_lease = 1
        self._spread_turn = 0  # SPREAD's round robin (placement.decide is pure)
        self._next_cull = 0.0

    # ---- events -------------------------------------------------------------------------

    def handle(self, event) -> list:
        """Apply one event; return the commands to execute, in order."""
        return _HANDLERS[type(event)](self, event)

    def _request(self, ev: RequestLease) -> list:
        units = ev.units
        stay = ev.spilled and ev.strategy == "SPREAD" and self.resources.fits_total(units)
        lease = Lease(self._next_lease, units, env_key(ev.env_vars), ev.env_vars, ev.dedicated,
                      ev.requester, ev.rid, ev.now,
                      strategy=None if stay else ev.strategy,  # the spread was decided: final
                      preferred_node=ev.preferred_node, stay=stay, tag=ev.tag,
                      retriable=ev.retriable)
        self._next_lease += 1
        out: list = []
        if self._route(lease, ev.now, out, fresh=True):
            self.pending.append(lease)
            self._schedule(ev.now, out)
        return out

    def _cancel(self, ev: CancelRequests) -> list:
        out: list = []
        keep = []
        for p in reversed(self.pending):
            if len(out) < ev.at_most and p.requester == ev.requester:
                out.append(Answer(p.requester, p.rid, None))
            else:
                keep.append(p)
        keep.reverse()
        self.pending = keep
        out.append(Answer(ev.requester, ev.rid, len(out)))
        return out

    def _cancel_tagged(self, ev: CancelTagged) -> list:
        gone = [p for p in self.pending if p.requester == ev.requester and p.tag == ev.tag]
        self.pending = [p for p in self.pending if p not in gone]
        return [Answer(p.requester, p.rid, None) for p in gone]

    def _returned(self, ev: LeaseReturned) -> list:
        out: list = []
        lease = self.leases.get(ev.lease_id)
        if lease is not None:
            self._return(lease, ev.kill, ev.now, out)
        self._schedule(ev.now, out)
        return out

    def _blocked(self, ev: Blocked) -> list:
        w = self.workers.get(ev.worker_id)
        lease = w.lease if w is not None else None
        if lease is None or lease.blocked == ev.blocked:
            return []
        lease.blocked = ev.blocked
        cpu = lease.units.get("CPU", 0)
        out: list = []
        if ev.blocked:
            if cpu:
                self.resources.lend_cpu(cpu)
            self._schedule(ev.now, out)
        elif cpu:
            self.resources.take_back_cpu(cpu)
        return out

    def _registered(self, ev: WorkerRegistered) -> list:
        w = self.workers.get(ev.worker_id)
        if w is None or w.registered:
            raise ValueError(f"unknown worker {ev.worker_id}")
        w.registered = True
        w.forked = ev.forked
        w.address = ev.address
        self.backoff.started(w.env_key)
        out: list = []
        self._make_idle(w, ev.now, out)
        self._schedule(ev.now, out)
        return out

    def _gone(self, ev: WorkerGone) -> list:
        w = self.workers.pop(ev.worker_id, None)
        if w is None:
            return []  # its other signal (socket or exit) came first
        out: list = []
        if w.registered:
            idle = self.idle.get(w.env_key)
            if idle and w in idle:
                idle.remove(w)
            lease = w.lease
            if lease is not None:
                self._return(lease, False, ev.now, out)
            # an idle worker we stopped as surplus is not an owner dying: actors it created
            # live on; any other death takes them with it (Ray's owner fate-sharing)
            out.append(NotifyWorkerDied(w.worker_id, not w.culled))
        elif not w.killed:
            self._failed_start(w, ev, out)
        self._schedule(ev.now, out)
        return out

    def _prepare_bundle(self, ev: PrepareBundle) -> list:
        if not self.resources.prepare_bundle((ev.pg_hex, ev.bundle_index), ev.bundle,
                                             ev.bundle_index, ev.pg_hex):
            return [Answer(ev.requester, ev.rid, False)]
        out: list = []
        self._schedule(ev.now, out)
        out.append(Answer(ev.requester, ev.rid, True))
        return out

    def _return_bundle(self, ev: ReturnBundle) -> list:
        key = (ev.pg_hex, ev.bundle_index)
        group = self.resources.bundle_group(key)
        if group is None:
            return []
        out: list = []
        # whatever runs on this bundle ends with it (as in Ray)
        for lease in list(self.leases.values()):
            if any(k in group for k in lease.units):
                self._return(lease, True, ev.now, out)
        self.resources.return_bundle(key)
        self._schedule(ev.now, out)
        return out

    def _view(self, ev: ClusterView) -> list:
        """Requests waiting here may fit elsewhere now (a node joined or freed up)."""
        self.cluster_view = ev.view
        out: list = []
        keep = []
        for lease in self.pending:
            if self.resources.fits_now(lease.units) and lease.infeasible_since is None \
                    and not lease.held or self._route(lease, ev.now, out):
                keep.append(lease)
        self.pending = keep
        self._schedule(ev.now, out)
        return out

    def _requester_gone(self, ev: RequesterGone) -> list:
        out: list = []
        who = ev.requester
        for lease in list(self.leases.values()):
            if lease.requester == who and not (ev.keep_granted and lease.worker is not None):
                self._return(lease, True, ev.now, out)  # it may have pushed work there
        self.pending = [p for p in self.pending if p.requester != who]
        self._schedule(ev.now, out)
        return out

    def actor_leases(self) -> list:
        """The granted leases of actors (``tag`` (actor id, attempt), from the control
        store): [(actor id, attempt, LeaseGrant wire tuple)], for a restarted control store
        to adopt."""
        out = []
        for lease in self.leases.values():
            w, tag = lease.worker, lease.tag
            if w is not None and lease.dedicated and isinstance(tag, tuple) and len(tag) == 2 \
                    and not w.killed:
                out.append((tag[0], tag[1], (lease.lease_id, w.worker_id, w.address,
                                             list(lease.gpu_ids), self.node_id)))
        return out

    def _prestart(self, ev: Prestart) -> list:
        out: list = []
        if ev.zygote:
            for w in list(self.idle.get("", ())):
                if not w.forked:
                    self.idle[""].remove(w)
                    self._kill(w, out, culled=True)
        for _ in range(self.prestart_workers):
            out.append(self._start("", None))
        return out

    def _tick(self, ev: Tick) -> list:
        out: list = []
        self._check_stalls(ev.now, out)
        if ev.now >= self._next_cull:
            self._next_cull = ev.now + CULL_EVERY_S
            self._cull_idle(ev.now, out)
        return out

    # ---- queries ------------------------------------------------------------------------

    def starting(self) -> dict:
        """env key -> workers started and not registered yet (nor killed)."""
        out: dict = {}
        for w in self.workers.values():
            if not w.registered and not w.killed:
                out[w.env_key] = out.get(w.env_key, 0) + 1
        return out

    def validate(self) -> None:
        """Raise AssertionError if an invariant of the module docstring does not hold."""
        self.resources.validate(*held_by(self.leases.values()))
        idle_ids: set = set()
        for key, lst in self.idle.items():
            for w in lst:
                assert w.worker_id not in idle_ids, f"worker {w.worker_id} idle twice"
                idle_ids.add(w.worker_id)
                assert self.workers.get(w.worker_id) is w, f"idle {w.worker_id} is not known"
                assert w.env_key == key and w.registered and w.lease is None and not w.killed, \
                    f"idle worker {w.worker_id} is leased, killed, unregistered or misfiled"
        for lease_id, lease in self.leases.items():
            lw = lease.worker
            assert lw is not None and lw.lease is lease, f"lease {lease_id} and its worker differ"
            assert lw.registered and not lw.killed and lw.worker_id not in idle_ids, \
                f"lease {lease_id}'s worker is idle, killed or unregistered"
        for w in self.workers.values():
            assert w.lease is None or self.leases.get(w.lease.lease_id) is w.lease, \
                f"worker {w.worker_id} serves a lease that is not granted"
        for p in self.pending:
            assert p.worker is None and p.lease_id not in self.leases, \
                f"pending request {p.lease_id} is granted"

    # ---- internals ----------------------------------------------------------------------

    def _route(self, lease: Lease, now: float, out: list, fresh: bool = False) -> bool:
        """Keep the request here (True), or answer it with a spill / an error (False)."""
        if lease.stay and (fresh or self.resources.fits_now(lease.units)):
            return True
        others = len(self.cluster_view) - (self.node_id in self.cluster_view)
        if not others and lease.strategy is None and lease.preferred_node is None \
                and not lease.stay:
            fits = self.resources.fits_total(lease.units)
            decision = placement.Decision(placement.HERE if fits else None, infeasible=not fits)
        else:
            view = self._local_view()
            if lease.stay:
                # placed here by another node's SPREAD decision, but busy here: move only to
                # a node with room now (never back and forth between busy ones)
                decision = placement.decide(lease.units, None, self.node_id, view, queued_here=1)
                if decision.node in (None, placement.HERE):
                    return True
                out.append(self._spill(lease, view, decision.node))
                return False
            queued = sum(1 for p in self.pending if p.units == lease.units) if fresh else 0
            decision = placement.decide(lease.units, lease.strategy, self.node_id, view, queued,
                                        lease.preferred_node if fresh else None,
                                        self._spread_turn)
            if decision.spread:
                self._spread_turn += 1
            if decision.node not in (None, placement.HERE):
                out.append(self._spill(lease, view, decision.node))
                return False
        lease.held = False
        if decision.unknown_target:
            if now - lease.created < UNKNOWN_NODE_GRACE_S:
                lease.held = True  # not for this node: wait for the view to learn of its target
                return True
            strategy, lease.strategy = lease.strategy, None
            assert isinstance(strategy, tuple)  # only node affinity has an unknown target
            if strategy[2]:  # soft: anywhere will do
                return self._route(lease, now, out)
            out.append(Fail(lease.requester, lease.rid, ValueError(
                f"The node {strategy[1]} that the task is pinned to "
                f"(NodeAffinitySchedulingStrategy, soft=False) is unknown or dead.")))
            return False
        if decision.error:
            out.append(Fail(lease.requester, lease.rid, ValueError(decision.error)))
            return False
        if not decision.infeasible:
            lease.infeasible_since = None
        elif lease.infeasible_since is None:
            # views lag a heartbeat (a bundle just reserved, a node just joined): warn only
            # if it stays infeasible
            lease.infeasible_since = now
        elif not lease.warned and now - lease.infeasible_since > INFEASIBLE_WARN_S:
            lease.warned = True
            out.append(Warn(lease.requester, (
                f"A task or actor needs {{{res.describe(lease.units)}}} but no node has that "
                f"much in total (this node: {{{res.describe(self.resources.total)}}}), so it "
                f"cannot be scheduled. It stays pending until a node with enough resources "
                f"joins; lower its resource request or start Skate with more resources "
                f"(skate.init(num_cpus=..., resources=...)).")))
        return True

    def _local_view(self) -> dict:
        """The cluster view with this node's entry from the live books, not the heartbeat."""
        view = dict(self.cluster_view)
        mine = view.get(self.node_id)
        view[self.node_id] = placement.NodeView(
            dict(self.resources.total), dict(self.resources.available), True,
            mine.address if mine else self.address,
            mine.transfer_address if mine else self.transfer_address,
            mine.stream_address if mine else self.stream_address)
        return view

    def _spill(self, lease: Lease, view: dict, node: str) -> SpillTo:
        return SpillTo(lease.requester, lease.rid, Spill(SPILL, view[node].address, node))

    def _schedule(self, now: float, out: list) -> None:
        """Grant what fits to idle workers; start workers for what fits and has none."""
        available = self.resources.available
        waiting_for_worker: dict[str, int] = {}
        # what is left once the requests already waiting for a worker start have theirs: a
        # worker is started only for a request that could run now, not for every queued one
        spare: dict | None = None
        still = []
        for lease in self.pending:
            units = lease.units
            if lease.held or not res.fits(units, available):
                still.append(lease)
                continue
            idle = self.idle.get(lease.env_key)
            if not idle:
                if spare is None:
                    spare = dict(available)
                if res.fits(units, spare):
                    res.subtract(spare, units)
                    waiting_for_worker[lease.env_key] = \
                        waiting_for_worker.get(lease.env_key, 0) + 1
                still.append(lease)
                continue
            gpus = self.resources.take_gpus(units.get("GPU", 0))
            if gpus is None:
                still.append(lease)
                continue
            w = idle.pop()
            self.resources.take(units)
            lease.gpu_ids = gpus
            lease.granted_at = now
            lease.worker = w
            w.lease = lease
            self.leases[lease.lease_id] = lease
            out.append(Grant(lease.requester, lease.rid,
                             LeaseGrant(lease.lease_id, w.worker_id, w.address, gpus,
                                        self.node_id), lease.env_vars))
        self.pending = still
        if not waiting_for_worker:
            return
        starting = self.starting()
        for key, n in waiting_for_worker.items():
            if self.backoff.ready_at(key) > now:
                continue  # after failed starts; a later pass (every heartbeat) starts it
            env_vars = next((p.env_vars for p in still if p.env_key == key), None)
            for _ in range(n - starting.get(key, 0)):
                out.append(self._start(key, env_vars))

    def _start(self, key: str, env_vars: dict | None) -> StartWorker:
        w = Worker(self._new_worker_id(), key)
        self.workers[w.worker_id] = w
        return StartWorker(w.worker_id, key, env_vars)

    def _kill(self, w: Worker, out: list, culled: bool = False) -> None:
        w.killed = True
        w.culled = culled
        out.append(KillWorker(w.worker_id))

    def _return(self, lease: Lease, kill: bool, now: float, out: list) -> None:
        del self.leases[lease.lease_id]
        self.resources.give_back(lease.units, lease.gpu_ids, lease.blocked)
        w = lease.worker
        assert w is not None  # a granted lease has its worker
        w.lease = None
        if self.workers.get(w.worker_id) is not w:
            return  # the worker is gone: nothing to keep or kill
        if kill or lease.dedicated:
            self._kill(w, out)
        else:
            self._make_idle(w, now, out)

    def _make_idle(self, w: Worker, now: float, out: list) -> None:
        if self.zygote_up and not w.forked and w.env_key == "":
            # started before the zygote was ready: without its modules; forked ones replace it
            self._kill(w, out, culled=True)
            return
        w.idle_since = now
        self.idle.setdefault(w.env_key, []).append(w)

    def _failed_start(self, w: Worker, ev: WorkerGone, out: list) -> None:
        key = w.env_key
        self.backoff.failed(key, ev.now, ev.returncode)
        log.warning("worker %s (pid %d) exited with code %s before it registered%s",
                    w.worker_id, ev.pid, ev.returncode,
                    (": " + " | ".join(ev.stderr_tail[-3:])) if ev.stderr_tail else "")
        if not self.backoff.gave_up(key):
            return
        self.backoff.reset(key)
        tail = "\n".join(ev.stderr_tail[-20:]) or "(it wrote nothing to stderr)"
        error = WorkerStartupError(
            f"{self.backoff.give_up_after} workers in a row exited before they were "
            f"ready (last exit code {ev.returncode}), so the tasks and actors waiting for one "
            f"were failed. Check the runtime_env (env_vars) and the Python environment. The "
            f"last worker's stderr:\n{tail}")
        keep = []
        for lease in self.pending:
            if lease.env_key == key:
                out.append(Fail(lease.requester, lease.rid, error))
            else:
                keep.append(lease)
        self.pending = keep

    def _check_stalls(self, now: float, out: list) -> None:
        starting = self.starting()
        stalled = {}
        for lease in self.pending:
            if lease.held or not self.resources.fits_now(lease.units):
                continue
            if starting.get(lease.env_key) or self.backoff.ready_at(lease.env_key) > now:
                continue
            if not lease.dedicated and self.idle.get(lease.env_key):
                continue  # granted on the next pass
            stalled[lease.lease_id] = lease
        for lease_id, waited in self.watchdog.tick(now, stalled):
            lease = stalled[lease_id]
            log.error("watchdog: lease request %d (%s) fits the free resources but no worker "
                      "has run or started for it for %.1f s; starting one", lease_id,
                      res.describe(lease.units), waited)
            out.append(self._start(lease.env_key, lease.env_vars))

    def _cull_idle(self, now: float, out: list) -> None:
        """Stop idle workers beyond the pool's size, and ones with a runtime_env nobody uses."""
        total_idle = sum(len(v) for v in self.idle.values())
        for key, lst in self.idle.items():
            for w in list(lst):
                too_many = total_idle > self.pool_size or key != ""
                if too_many and now - w.idle_since > self.idle_timeout_s:
                    lst.remove(w)
                    total_idle -= 1
                    self._kill(w, out, culled=True)


_HANDLERS: dict[type, Callable[[Leases, Any], list]] = {
    RequestLease: Leases._request,
    CancelRequests: Leases._cancel,
    CancelTagged: Leases._cancel_tagged,
    LeaseReturned: Leases._returned,
    Blocked: Leases._blocked,
    WorkerRegistered: Leases._registered,
    WorkerGone: Leases._gone,
    PrepareBundle: Leases._prepare_bundle,
    ReturnBundle: Leases._return_bundle,
    ClusterView: Leases._view,
    RequesterGone: Leases._requester_gone,
    Prestart: Leases._prestart,
    Tick: Leases._tick,
}

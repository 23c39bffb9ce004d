"""The actor lifecycle, as a pure state machine: events in, commands out.

Design. An actor lives in a worker leased for it alone. The control store
asks a node manager for that worker (``RequestLease``), sends it the class
(``StartActor``), and once the constructor returned the actor is ALIVE and
callers talk to it directly. When its worker dies the actor is restarted in a
new worker, up to ``max_restarts`` times (-1: forever), then it is DEAD.
:class:`Actors` makes every one of these decisions; the I/O shell
(``server.py``) turns RPCs, replies and timers into events, calls
``handle(event)`` under its lock, and carries out the commands that come back,
in order:

* ``RequestLease(actor_id, attempt, node_id, hops, ...)``: ask that node
  manager for a dedicated worker; its reply becomes ``LeaseGranted``,
  ``LeaseSpilled``, ``LeaseLost`` (the node manager went away first) or
  ``LeaseFailed``;
* ``ReturnLease(node_id, lease_id, kill)``: give a worker back (and stop it);
* ``CancelLease(node_id, actor_id, attempt)``: withdraw a lease request still
  unanswered (the actor died waiting for it: its demand must not linger);
* ``StartActor(actor_id, attempt, worker_id, address, start)``: construct the
  actor in its worker; the reply becomes ``StartSucceeded``, ``StartFailed``
  (the constructor raised) or ``StartLost`` (the worker died meanwhile), and a
  worker that cannot be reached at all becomes ``WorkerGone``;
* ``KillWorker(node_id, worker_id)``: stop a worker (``node_id`` None: ask every
  node, its own is gone); its death comes back as ``WorkerGone``;
* ``NotifyWatchers(actor_id, info)``: the record changed, answer ``wait_actor``;
* ``Persist(actor_id, fields)`` / ``DropPersisted(actor_id)``: a detached
  actor's record, kept across a head restart;
* ``RetryLater(actor_id, attempt, delay_s)``: feed ``RetryDue`` back after a while.

The states (:class:`~skate.core.protocol.ActorState`) and transitions:

================  ================================  ================  ====================
state             event                             next state        commands
================  ================================  ================  ====================
(none)            ActorCreated                      PENDING_CREATION  RequestLease (home)
(none)            ActorRestored                     RESTARTING        -- (awaits adoption)
awaiting          ActorAdopted                      same (+ worker)   StartActor (the worker
                                                                      says at once if it
                                                                      runs the actor still)
awaiting          AdoptionOver, or NodeJoined       RESTARTING        RequestLease (home)
                  after it
awaiting, not     AdoptionOver, its job not back    DEAD              NotifyWatchers
detached
(not awaiting)    ActorAdopted                      --                ReturnLease (stopped)
waiting           LeaseSpilled                      same              RequestLease (there),
                                                                      or RetryLater past
                                                                      8 hops or to a node
                                                                      not known here
waiting           LeaseLost                         same              RetryLater
waiting           RetryDue                          same              RequestLease (home)
waiting           LeaseGranted                      same (+ worker)   StartActor
starting          StartSucceeded                    ALIVE             NotifyWatchers
starting          StartFailed, LeaseFailed          DEAD              NotifyWatchers,
                                                                      ReturnLease
with a worker     WorkerGone, StartLost, NodeDied   RESTARTING        NotifyWatchers,
                  (restarts left)                                     RequestLease
with a worker     the same, no restarts left        DEAD              NotifyWatchers
with a worker     KillRequested(no_restart=False)   same              KillWorker
any but DEAD      KillRequested(no_restart=True),   DEAD              NotifyWatchers,
                  JobFinished, OwnerDied, the                         KillWorker
                  owner's NodeDied
any but DEAD      ActorExited                       DEAD              NotifyWatchers
================  ================================  ================  ====================

"waiting" is PENDING_CREATION or RESTARTING without a worker, "starting" the
same with one, "awaiting" a restored actor in ``awaiting_node``. Every path to a
new lease goes through "home" (the creator's node, else the head, else any
node); with no node left the actor is DEAD. Detached actors (every actor, with
``persist_all``: a head that can be restarted) get ``Persist`` at creation and
``DropPersisted`` at death.

Why adoption. When the control store alone is killed and started again, node
managers, workers and drivers keep running and reconnect. A restored actor may
then still be alive in its worker: the node that holds the worker's lease
reports it (``ActorAdopted``) and the actor is started there again, which the
worker answers at once without constructing anything -- so it keeps its state.
Until ``AdoptionOver`` (the server's timer) restored actors are not recreated
anywhere else, since a node may still be on its way back.

Why attempts. Replies arrive late: a grant may come after the actor was killed,
a constructor's answer after its worker died and a restart began. Each lease
request and start carries the attempt it was made for, which is the actor's
``num_restarts`` then, and every restart increments it; an event whose attempt
is not the current one, or for a DEAD actor, is stale and ignored -- except a
stale grant, whose worker is returned (and stopped) so it is not leaked. At most
one lease request (or retry) is outstanding per attempt, so the attempt alone
tells a current reply from an old one.

Invariants (``validate`` checks them):

* a DEAD actor has no address, no worker and no lease, and is in neither
  ``named``, ``by_worker``, ``owned_by`` nor ``awaiting_node``;
* an actor has an address iff it is ALIVE; an ALIVE actor has a worker;
* ``worker_id``, ``worker_address``, ``lease_id`` and ``lease_node`` are set
  together; ``asked_node`` (an unanswered lease request) only without them, and
  never on a DEAD actor;
* ``by_worker`` maps exactly the worker of every actor that holds one to it;
* a live actor with a name holds ``named[(namespace, name)]``, and only live
  actors are there (so names are unique among live actors);
* a live non-detached actor with an ``owner_worker`` is in ``owned_by`` of that
  worker, and only such actors are there;
* ``num_restarts <= max_restarts`` unless ``max_restarts`` is -1, and a
  PENDING_CREATION actor has never restarted.

The events and commands are in ``actor_events.py``. No clocks, no sockets,
no threads here: tests/core/control_store/test_actors.py
drives every path by feeding events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from skate.core.control_store.actor_events import (
    ActorAdopted,
    ActorCreated,
    ActorExited,
    ActorRestored,
    AdoptionOver,
    CancelLease,
    DropPersisted,
    JobFinished,
    KillRequested,
    KillWorker,
    LeaseFailed,
    LeaseGranted,
    LeaseLost,
    LeaseSpilled,
    NodeDied,
    NodeJoined,
    NotifyWatchers,
    OwnerDied,
    Persist,
    RequestLease,
    RetryDue,
    RetryLater,
    ReturnLease,
    StartActor,
    StartFailed,
    StartLost,
    StartSucceeded,
    WorkerGone,
)
from skate.core.protocol import ActorStart, ActorState, JobRef
from skate.exceptions import ActorAlreadyExistsError

PENDING_CREATION = ActorState.PENDING_CREATION
ALIVE = ActorState.ALIVE
RESTARTING = ActorState.RESTARTING
DEAD = ActorState.DEAD

#: A lease request follows at most this many spills; views that disagree longer than that
#: (a node that just died, resources that moved) are settled by asking home again later.
MAX_SPILL_HOPS = 8
#: How long before a lost or bounced lease request is made again: node managers' views of
#: each other catch up within a heartbeat (0.1 s).
RETRY_DELAY_S = 0.2

NO_NODE = "no node is alive to run the actor"


@dataclass(slots=True)
class Actor:
    """One actor's record; its fields' rules are the module's invariants."""

    actor_id: bytes
    spec: dict  # class_name, payload, resources, max_restarts, meta, home_node, owner_...
    job_id: str | None
    name: str | None
    namespace: str
    detached: bool
    state: ActorState = PENDING_CREATION
    address: str | None = None  # set iff ALIVE
    worker_id: str | None = None  # the leased worker; None while waiting for one, and DEAD
    pid: int | None = None  # of the last worker that constructed it
    node_id: str | None = None  # of the last worker leased for it (kept after death)
    worker_address: str | None = None  # set with worker_id: where it listens
    lease_id: int | None = None  # set with worker_id
    lease_node: str | None = None  # the node manager that granted lease_id
    asked_node: str | None = None  # where its last lease request went (None once answered)
    num_restarts: int = 0  # also the current attempt, see the module docstring
    death_cause: str | None = None
    version: int = 0  # incremented at every NotifyWatchers

    @property
    def max_restarts(self) -> int:
        return self.spec.get("max_restarts", 0)

    def info(self) -> dict:
        """What callers see (``wait_actor``, ``get_actor_info``): plain values only."""
        return {
            "actor_id": self.actor_id, "state": self.state.value, "address": self.address,
            "version": self.version, "death_cause": self.death_cause, "pid": self.pid,
            "num_restarts": self.num_restarts, "name": self.name, "namespace": self.namespace,
            "class_name": self.spec.get("class_name"), "node_id": self.node_id,
            "job_id": self.job_id, "detached": self.detached,
        }

    def fields(self) -> dict:
        """What is persisted for an actor; ``ActorRestored`` takes it back."""
        return {"actor_id": self.actor_id, "spec": self.spec, "job_id": self.job_id,
                "name": self.name, "namespace": self.namespace, "detached": self.detached,
                "num_restarts": self.num_restarts}


class Actors:
    """The actor table and its lifecycle; see the module docstring for the protocol."""

    def __init__(self, persist_all: bool = False) -> None:
        # every actor is persisted (a head that can be restarted), else detached ones only
        self.persist_all = persist_all
        self.actors: dict[bytes, Actor] = {}  # every actor ever made, DEAD ones included
        # (namespace, name) -> the live actor holding that name
        self.named: dict[tuple[str, str], bytes] = {}
        # worker id -> the actor leased it; exactly the actors with a worker_id
        self.by_worker: dict[str, bytes] = {}
        # worker id -> the live non-detached actors it created (a driver's die with its job)
        self.owned_by: dict[str, set[bytes]] = {}
        # node id -> is it the head: the nodes whose node manager is connected, in join order
        self.nodes: dict[str, bool] = {}
        # restored actors (RESTARTING, no worker): adopted, or leased for once adoption is
        # over and a node is there
        self.awaiting_node: list[bytes] = []
        self.adopting = False  # restored actors are awaiting adoption: none is leased yet
        self._handlers: dict[type, Callable[[Any], list]] = {
            NodeJoined: self._node_joined, NodeDied: self._node_died,
            ActorCreated: self._created, ActorRestored: self._restored,
            ActorAdopted: self._adopted, AdoptionOver: self._adoption_over,
            LeaseGranted: self._granted, LeaseSpilled: self._spilled, LeaseLost: self._lost,
            LeaseFailed: self._lease_failed, RetryDue: self._retry_due,
            StartSucceeded: self._started, StartFailed: self._start_failed,
            StartLost: self._start_lost, WorkerGone: self._worker_gone_event,
            OwnerDied: self._owner_died, JobFinished: self._job_finished,
            ActorExited: self._exited, KillRequested: self._kill_requested,
        }

    # ---- queries ------------------------------------------------------------------------------

    def get(self, actor_id: bytes) -> Actor | None:
        return self.actors.get(actor_id)

    def find_named(self, namespace: str, name: str) -> Actor | None:
        """The live actor of that name, if any."""
        actor_id = self.named.get((namespace, name))
        return None if actor_id is None else self.actors[actor_id]

    # ---- events -------------------------------------------------------------------------------

    def handle(self, event: Any) -> list:
        """Apply one event; returns the commands to carry out, in order."""
        return self._handlers[type(event)](event)

    def _node_joined(self, ev: NodeJoined) -> list:
        self.nodes[ev.node_id] = ev.is_head
        if self.adopting:
            return []  # its actors come as ActorAdopted; the rest wait for AdoptionOver
        return self._schedule_awaiting()

    def _schedule_awaiting(self) -> list:
        if not self.nodes:
            return []
        waiting, self.awaiting_node = self.awaiting_node, []
        commands: list = []
        for actor_id in waiting:  # detached actors from before a head restart come back
            commands += self._schedule(self.actors[actor_id])
        return commands

    def _node_died(self, ev: NodeDied) -> list:
        self.nodes.pop(ev.node_id, None)
        commands: list = []
        for a in list(self.actors.values()):
            if a.node_id == ev.node_id and a.worker_id is not None:
                commands += self._worker_gone(a.worker_id, f"its node died ({ev.why})")
        for a in list(self.actors.values()):  # owners that were task workers there
            if a.spec.get("owner_node") == ev.node_id and a.spec.get("owner_worker") \
                    and not a.detached and a.state != DEAD:
                commands += self._kill(
                    a, f"the node of the worker that created it died ({ev.why})")
        return commands

    def _created(self, ev: ActorCreated) -> list:
        if ev.actor_id in self.actors:
            raise ValueError(f"actor {ev.actor_id.hex()} is registered already")
        if ev.name is not None and (ev.namespace, ev.name) in self.named:
            raise ActorAlreadyExistsError(
                f"An actor named {ev.name!r} already exists in namespace {ev.namespace!r}. "
                f"Use get_if_exists=True to reuse it, skate.get_actor({ev.name!r}) to look it "
                f"up, or pick another name.")
        a = Actor(ev.actor_id, ev.spec, ev.job_id, ev.name, ev.namespace, ev.detached)
        self.actors[a.actor_id] = a
        owner = ev.spec.get("owner_worker")
        if owner and not a.detached:
            self.owned_by.setdefault(owner, set()).add(a.actor_id)
        if a.name is not None:
            self.named[(a.namespace, a.name)] = a.actor_id
        commands: list = [Persist(a.actor_id, a.fields())] if self._persisted(a) else []
        return commands + self._schedule(a)

    def _persisted(self, a: Actor) -> bool:
        return a.detached or self.persist_all

    def _restored(self, ev: ActorRestored) -> list:
        a = Actor(ev.actor_id, ev.spec, ev.job_id, ev.name, ev.namespace, ev.detached,
                  state=RESTARTING, num_restarts=ev.num_restarts, version=ev.version)
        self.actors[a.actor_id] = a
        if a.name is not None:
            self.named[(a.namespace, a.name)] = a.actor_id
        owner = ev.spec.get("owner_worker")
        if owner and not a.detached:
            self.owned_by.setdefault(owner, set()).add(a.actor_id)
        self.awaiting_node.append(a.actor_id)
        self.adopting = True
        return []

    def _adopted(self, ev: ActorAdopted) -> list:
        a = self.actors.get(ev.actor_id)
        if a is None or ev.actor_id not in self.awaiting_node:
            # not restored (made just before the crash), or leased elsewhere already
            return [ReturnLease(ev.node_id, ev.grant.lease_id, True)]
        self.awaiting_node.remove(a.actor_id)
        a.num_restarts = ev.attempt  # the worker's attempt is the truth
        return self._granted(LeaseGranted(a.actor_id, ev.attempt, ev.node_id, ev.grant))

    def _adoption_over(self, ev: AdoptionOver) -> list:
        self.adopting = False
        commands: list = []
        for a in list(self.actors.values()):  # adopted or awaiting
            if a.state != DEAD and not a.detached and a.job_id not in ev.live_jobs:
                commands += self._kill(a, "its job's driver did not come back after the "
                                          "control store restarted")
        return commands + self._schedule_awaiting()

    def _granted(self, ev: LeaseGranted) -> list:
        a = self._current(ev.actor_id, ev.attempt)
        if a is None or a.worker_id is not None:
            # nobody will use this worker: give it back, stopped (it may hold a half-made actor)
            return [ReturnLease(ev.node_id, ev.grant.lease_id, True)]
        g = ev.grant
        a.asked_node = None
        a.worker_id, a.worker_address, a.node_id = g.worker_id, g.address, g.node_id
        a.lease_id, a.lease_node = g.lease_id, ev.node_id
        self.by_worker[g.worker_id] = a.actor_id
        spec = a.spec
        start = ActorStart(a.actor_id, spec["payload"], g.gpu_ids, spec["resources"],
                           a.num_restarts, tuple(JobRef(a.job_id, a.namespace)), spec["meta"])
        return [StartActor(a.actor_id, a.num_restarts, g.worker_id, g.address, start)]

    def _spilled(self, ev: LeaseSpilled) -> list:
        a = self._current(ev.actor_id, ev.attempt)
        if a is None:
            return []
        a.asked_node = None
        if ev.node_id in self.nodes and ev.hops < MAX_SPILL_HOPS:
            return [self._request(a, ev.node_id, ev.hops + 1)]
        # sent to a node that just died, or views disagree: ask home again shortly
        return [RetryLater(a.actor_id, a.num_restarts, RETRY_DELAY_S)]

    def _lost(self, ev: LeaseLost) -> list:
        a = self._current(ev.actor_id, ev.attempt)
        if a is None:
            return []
        a.asked_node = None
        return [RetryLater(a.actor_id, a.num_restarts, RETRY_DELAY_S)]

    def _lease_failed(self, ev: LeaseFailed) -> list:
        a = self._current(ev.actor_id, ev.attempt)
        if a is None:
            return []
        a.asked_node = None
        return self._set_dead(a, f"could not get a worker for the actor: {ev.error}")

    def _retry_due(self, ev: RetryDue) -> list:
        a = self._current(ev.actor_id, ev.attempt)
        return [] if a is None else self._schedule(a)

    def _started(self, ev: StartSucceeded) -> list:
        a = self._current(ev.actor_id, ev.attempt)
        if a is None or a.worker_id is None:
            return []
        a.state = ALIVE
        a.address = a.worker_address
        a.pid = ev.pid
        return [self._bump(a)]

    def _start_failed(self, ev: StartFailed) -> list:
        a = self._current(ev.actor_id, ev.attempt)
        if a is None or a.lease_node is None or a.lease_id is None:
            return []
        lease = ReturnLease(a.lease_node, a.lease_id, True)
        return self._set_dead(a, f"the actor's constructor raised: {ev.error}") + [lease]

    def _start_lost(self, ev: StartLost) -> list:
        a = self._current(ev.actor_id, ev.attempt)
        if a is None or a.worker_id is None:
            return []
        return self._worker_gone(a.worker_id, f"its worker died during creation ({ev.why})")

    def _worker_gone_event(self, ev: WorkerGone) -> list:
        return self._worker_gone(ev.worker_id, ev.why)

    def _owner_died(self, ev: OwnerDied) -> list:
        # Non-detached actors die with the task or actor that created them (as in Ray):
        # nobody could reach them through their owner any more, and a retried creator makes
        # new ones, so they would only hold their resources.
        commands: list = []
        for actor_id in sorted(self.owned_by.pop(ev.worker_id, ())):
            commands += self._kill(self.actors[actor_id],
                                   "the worker that created it (its owner) died")
        return commands

    def _job_finished(self, ev: JobFinished) -> list:
        commands: list = []
        for a in list(self.actors.values()):
            if a.job_id == ev.job_id and not a.detached and a.state != DEAD:
                commands += self._kill(a, "the job (driver) that created it exited")
        return commands

    def _exited(self, ev: ActorExited) -> list:
        a = self.actors.get(ev.actor_id)
        if a is None or a.state == DEAD:
            return []
        return self._set_dead(a, ev.why)

    def _kill_requested(self, ev: KillRequested) -> list:
        a = self.actors.get(ev.actor_id)
        if a is None or a.state == DEAD:
            return []
        if ev.no_restart:
            return self._kill(a, "the actor was killed by skate.kill()")
        if a.worker_id is not None:
            return [self._kill_worker(a.node_id, a.worker_id)]
        return []  # not started yet: nothing to restart

    # ---- transitions --------------------------------------------------------------------------

    def _current(self, actor_id: bytes, attempt: int) -> Actor | None:
        """The actor an event of ``attempt`` is about, or None if the event is stale."""
        a = self.actors.get(actor_id)
        if a is None or a.state == DEAD or a.num_restarts != attempt:
            return None
        return a

    def _home(self, a: Actor) -> str | None:
        """Where to ask first: the creator's node, else the head, else any node."""
        home = a.spec.get("home_node")
        if home in self.nodes:
            return home
        head = next((n for n, is_head in self.nodes.items() if is_head), None)
        return head if head is not None else next(iter(self.nodes), None)

    def _schedule(self, a: Actor) -> list:
        node = self._home(a)
        if node is None:
            return self._set_dead(a, NO_NODE)
        return [self._request(a, node, 0)]

    def _request(self, a: Actor, node_id: str, hops: int) -> RequestLease:
        spec = a.spec
        a.asked_node = node_id
        return RequestLease(a.actor_id, a.num_restarts, node_id, hops, spec["resources"],
                            spec.get("env_vars"), spec.get("strategy"))

    def _worker_gone(self, worker_id: str, why: str) -> list:
        """The actor holding ``worker_id`` (if any) lost it: restart it, or it is DEAD."""
        actor_id = self.by_worker.get(worker_id)
        if actor_id is None:
            return []
        a = self.actors[actor_id]
        limit = a.max_restarts
        if not (limit == -1 or a.num_restarts < limit):
            return self._set_dead(a, f"the actor's worker process died ({why}) and "
                                     f"max_restarts={limit} restarts were used")
        self._drop_worker(a)
        a.num_restarts += 1
        a.state = RESTARTING
        a.address = None
        return [self._bump(a)] + self._schedule(a)

    def _kill(self, a: Actor, cause: str) -> list:
        """DEAD now, and its worker (if it has one) stopped, or its request withdrawn."""
        worker_id, node_id, asked, attempt = a.worker_id, a.node_id, a.asked_node, \
            a.num_restarts
        commands = self._set_dead(a, cause)
        if worker_id is not None:
            commands.append(self._kill_worker(node_id, worker_id))
        elif asked is not None and asked in self.nodes:
            commands.append(CancelLease(asked, a.actor_id, attempt))
        return commands

    def _kill_worker(self, node_id: str | None, worker_id: str) -> KillWorker:
        return KillWorker(node_id if node_id in self.nodes else None, worker_id)

    def _set_dead(self, a: Actor, cause: str) -> list:
        a.state = DEAD
        a.asked_node = None
        owned = self.owned_by.get(a.spec.get("owner_worker") or "")
        if owned is not None:
            owned.discard(a.actor_id)
        self._drop_worker(a)
        a.address = None
        a.death_cause = cause
        if a.name is not None and self.named.get((a.namespace, a.name)) == a.actor_id:
            del self.named[(a.namespace, a.name)]
        if a.actor_id in self.awaiting_node:
            self.awaiting_node.remove(a.actor_id)
        commands: list = [DropPersisted(a.actor_id)] if self._persisted(a) else []
        return commands + [self._bump(a)]

    def _drop_worker(self, a: Actor) -> None:
        if a.worker_id is not None:
            self.by_worker.pop(a.worker_id, None)
        a.worker_id = a.worker_address = a.lease_id = a.lease_node = None

    def _bump(self, a: Actor) -> NotifyWatchers:
        a.version += 1
        return NotifyWatchers(a.actor_id, a.info())

    # ---- invariants ---------------------------------------------------------------------------

    def validate(self) -> None:
        """Raise AssertionError if an invariant of the module docstring does not hold."""
        for actor_id, a in self.actors.items():
            where = f"actor {actor_id.hex()} ({a.state.value})"
            assert a.actor_id == actor_id, where
            assert isinstance(a.state, ActorState), where
            assert (a.address is not None) == (a.state == ALIVE), f"{where}: address"
            unset = {a.worker_id is None, a.worker_address is None, a.lease_id is None,
                     a.lease_node is None}
            assert len(unset) == 1, f"{where}: worker, its address and lease go together"
            if a.state == ALIVE:
                assert a.worker_id is not None, f"{where}: ALIVE without a worker"
            assert a.asked_node is None or a.worker_id is None, \
                f"{where}: holds a worker and waits for a lease"
            if a.state == DEAD:
                assert a.worker_id is None, f"{where}: DEAD with a worker"
                assert a.asked_node is None, f"{where}: DEAD with a lease request out"
                assert a.death_cause, f"{where}: DEAD without a cause"
                assert actor_id not in self.awaiting_node, f"{where}: awaits a node"
            if a.worker_id is not None:
                assert self.by_worker.get(a.worker_id) == actor_id, f"{where}: by_worker"
            named = a.name is not None and a.state != DEAD
            if named:
                assert self.named.get((a.namespace, a.name or "")) == actor_id, \
                    f"{where}: not in the named table"
            owner = a.spec.get("owner_worker")
            if owner and not a.detached and a.state != DEAD:
                assert actor_id in self.owned_by.get(owner, ()), f"{where}: not in owned_by"
            limit = a.max_restarts
            assert limit == -1 or a.num_restarts <= limit, f"{where}: too many restarts"
            if a.state == PENDING_CREATION:
                assert a.num_restarts == 0, f"{where}: restarted yet PENDING_CREATION"
        for worker_id, actor_id in self.by_worker.items():
            a = self.actors[actor_id]
            assert a.worker_id == worker_id and a.state != DEAD, \
                f"by_worker[{worker_id}] -> actor {actor_id.hex()} ({a.state.value})"
        for (namespace, name), actor_id in self.named.items():
            a = self.actors[actor_id]
            assert (a.namespace, a.name) == (namespace, name) and a.state != DEAD, \
                f"named[{namespace!r}, {name!r}] -> actor {actor_id.hex()} ({a.state.value})"
        for worker_id, owned in self.owned_by.items():
            for actor_id in owned:
                a = self.actors[actor_id]
                assert a.spec.get("owner_worker") == worker_id and not a.detached \
                    and a.state != DEAD, f"owned_by[{worker_id}] -> actor {actor_id.hex()}"
        for actor_id in self.awaiting_node:
            a = self.actors[actor_id]
            assert a.state == RESTARTING and a.worker_id is None, \
                f"awaiting_node -> actor {actor_id.hex()} ({a.state.value})"

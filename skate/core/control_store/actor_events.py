"""The vocabulary of the actor lifecycle: the events ``Actors.handle`` takes and the
commands it returns (``actors.py`` says what each means and when it comes).

Each is a NamedTuple (immutable; cheaper to define than a frozen dataclass, which
matters because the control store's start waits for this import: ~4 ms for these 25
against ~20 ms as frozen slotted dataclasses). The I/O shell (``server.py``) builds
events from RPCs, replies and timers, and carries out commands with the clients.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from skate.core.protocol import ActorStart, LeaseGrant


# -- events -------------------------------------------------------------------------------
class NodeJoined(NamedTuple):
    """A node manager registered (and is connected): leases may be asked of it."""

    node_id: str
    is_head: bool


class NodeDied(NamedTuple):
    """A node manager disconnected or stopped beating: its workers are gone."""

    node_id: str
    why: str


class ActorCreated(NamedTuple):
    """``create_actor``: raises ActorAlreadyExistsError if the name is taken."""

    actor_id: bytes
    spec: dict
    job_id: str | None
    name: str | None
    namespace: str
    detached: bool


class ActorRestored(NamedTuple):
    """An actor persisted before the control store restarted: adopted where it still runs
    (``ActorAdopted``), else recreated once adoption is over (``AdoptionOver``)."""

    actor_id: bytes
    spec: dict
    job_id: str | None
    name: str | None
    namespace: str
    num_restarts: int = 0
    detached: bool = True
    version: int = 0  # where its versions restart: above any from before (wait_actor)


class ActorAdopted(NamedTuple):
    """A node manager that outlived the control store reports a worker it leased for an
    actor (at ``attempt``); the worker may still run it."""

    actor_id: bytes
    attempt: int
    node_id: str
    grant: LeaseGrant


class AdoptionOver(NamedTuple):
    """The surviving nodes had their time to report their actors; ``live_jobs``: the jobs
    whose drivers came back. The restored actors nobody reported are recreated, and
    non-detached ones of jobs that did not come back die."""

    live_jobs: frozenset


class LeaseGranted(NamedTuple):
    actor_id: bytes
    attempt: int
    node_id: str  # the node manager that was asked (and holds the lease)
    grant: LeaseGrant


class LeaseSpilled(NamedTuple):
    """The node manager asked (at ``hops`` spills already) says: ask ``node_id`` instead."""

    actor_id: bytes
    attempt: int
    hops: int
    node_id: str


class LeaseLost(NamedTuple):
    """The node manager asked died, or was declared dead, before it answered."""

    actor_id: bytes
    attempt: int
    why: str


class LeaseFailed(NamedTuple):
    """The lease request was refused (unschedulable, workers cannot start) or cancelled."""

    actor_id: bytes
    attempt: int
    error: Any


class RetryDue(NamedTuple):
    actor_id: bytes
    attempt: int


class StartSucceeded(NamedTuple):
    actor_id: bytes
    attempt: int
    pid: int


class StartFailed(NamedTuple):
    """The actor's constructor raised ``error``: the actor is DEAD, never restarted."""

    actor_id: bytes
    attempt: int
    error: Any


class StartLost(NamedTuple):
    """The worker died while constructing the actor: a worker death like any other."""

    actor_id: bytes
    attempt: int
    why: str


class WorkerGone(NamedTuple):
    """A worker exited (or cannot be reached); if it held an actor, that actor lost it."""

    worker_id: str
    why: str


class OwnerDied(NamedTuple):
    """A task worker or actor died: the non-detached actors it created die with it."""

    worker_id: str


class JobFinished(NamedTuple):
    """The driver of a job exited: its non-detached actors die."""

    job_id: str


class ActorExited(NamedTuple):
    """The actor ended itself (``exit_actor``): DEAD, never restarted; its worker exits."""

    actor_id: bytes
    why: str


class KillRequested(NamedTuple):
    """``skate.kill``: with ``no_restart`` the actor is DEAD now, else its worker is stopped
    and the actor restarts as after any worker death."""

    actor_id: bytes
    no_restart: bool


# -- commands -----------------------------------------------------------------------------
class RequestLease(NamedTuple):
    actor_id: bytes
    attempt: int
    node_id: str
    hops: int  # spills followed so far; above 0 the node manager must not spill again
    resources: dict
    env_vars: dict | None
    strategy: Any


class CancelLease(NamedTuple):
    """Withdraw the actor's unanswered lease request of ``attempt`` at ``node_id``."""

    node_id: str
    actor_id: bytes
    attempt: int


class ReturnLease(NamedTuple):
    node_id: str
    lease_id: int
    kill: bool  # stop the worker rather than keep it for another lease


class StartActor(NamedTuple):
    actor_id: bytes
    attempt: int
    worker_id: str
    address: str
    start: ActorStart


class KillWorker(NamedTuple):
    node_id: str | None  # None: its node is gone or unknown, ask every node
    worker_id: str


class NotifyWatchers(NamedTuple):
    actor_id: bytes
    info: dict


class Persist(NamedTuple):
    actor_id: bytes
    fields: dict


class DropPersisted(NamedTuple):
    actor_id: bytes


class RetryLater(NamedTuple):
    actor_id: bytes
    attempt: int
    delay_s: float

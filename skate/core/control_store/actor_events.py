"""The vocabulary of the actor lifecycle: the events ``Actors.handle`` takes and the
commands it returns (``actors.py`` says what each means and when it comes).

Each is a small frozen record; the I/O shell (``server.py``) builds events from
RPCs, replies and timers, and carries out commands with the clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from skate.core.protocol import ActorStart, LeaseGrant


# -- events -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NodeJoined:
    """A node manager registered (and is connected): leases may be asked of it."""

    node_id: str
    is_head: bool


@dataclass(frozen=True, slots=True)
class NodeDied:
    """A node manager disconnected or stopped beating: its workers are gone."""

    node_id: str
    why: str


@dataclass(frozen=True, slots=True)
class ActorCreated:
    """``create_actor``: raises ActorAlreadyExistsError if the name is taken."""

    actor_id: bytes
    spec: dict
    job_id: str | None
    name: str | None
    namespace: str
    detached: bool


@dataclass(frozen=True, slots=True)
class ActorRestored:
    """A detached actor persisted before a head restart; it is recreated once a node joins."""

    actor_id: bytes
    spec: dict
    job_id: str | None
    name: str | None
    namespace: str
    num_restarts: int = 0


@dataclass(frozen=True, slots=True)
class LeaseGranted:
    actor_id: bytes
    attempt: int
    node_id: str  # the node manager that was asked (and holds the lease)
    grant: LeaseGrant


@dataclass(frozen=True, slots=True)
class LeaseSpilled:
    """The node manager asked (at ``hops`` spills already) says: ask ``node_id`` instead."""

    actor_id: bytes
    attempt: int
    hops: int
    node_id: str


@dataclass(frozen=True, slots=True)
class LeaseLost:
    """The node manager asked died, or was declared dead, before it answered."""

    actor_id: bytes
    attempt: int
    why: str


@dataclass(frozen=True, slots=True)
class LeaseFailed:
    """The lease request was refused (unschedulable, workers cannot start) or cancelled."""

    actor_id: bytes
    attempt: int
    error: Any


@dataclass(frozen=True, slots=True)
class RetryDue:
    actor_id: bytes
    attempt: int


@dataclass(frozen=True, slots=True)
class StartSucceeded:
    actor_id: bytes
    attempt: int
    pid: int


@dataclass(frozen=True, slots=True)
class StartFailed:
    """The actor's constructor raised ``error``: the actor is DEAD, never restarted."""

    actor_id: bytes
    attempt: int
    error: Any


@dataclass(frozen=True, slots=True)
class StartLost:
    """The worker died while constructing the actor: a worker death like any other."""

    actor_id: bytes
    attempt: int
    why: str


@dataclass(frozen=True, slots=True)
class WorkerGone:
    """A worker exited (or cannot be reached); if it held an actor, that actor lost it."""

    worker_id: str
    why: str


@dataclass(frozen=True, slots=True)
class OwnerDied:
    """A task worker or actor died: the non-detached actors it created die with it."""

    worker_id: str


@dataclass(frozen=True, slots=True)
class JobFinished:
    """The driver of a job exited: its non-detached actors die."""

    job_id: str


@dataclass(frozen=True, slots=True)
class ActorExited:
    """The actor ended itself (``exit_actor``): DEAD, never restarted; its worker exits."""

    actor_id: bytes
    why: str


@dataclass(frozen=True, slots=True)
class KillRequested:
    """``skate.kill``: with ``no_restart`` the actor is DEAD now, else its worker is stopped
    and the actor restarts as after any worker death."""

    actor_id: bytes
    no_restart: bool


# -- commands -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RequestLease:
    actor_id: bytes
    attempt: int
    node_id: str
    hops: int  # spills followed so far; above 0 the node manager must not spill again
    resources: dict
    env_vars: dict | None
    strategy: Any


@dataclass(frozen=True, slots=True)
class ReturnLease:
    node_id: str
    lease_id: int
    kill: bool  # stop the worker rather than keep it for another lease


@dataclass(frozen=True, slots=True)
class StartActor:
    actor_id: bytes
    attempt: int
    worker_id: str
    address: str
    start: ActorStart


@dataclass(frozen=True, slots=True)
class KillWorker:
    node_id: str | None  # None: its node is gone or unknown, ask every node
    worker_id: str


@dataclass(frozen=True, slots=True)
class NotifyWatchers:
    actor_id: bytes
    info: dict


@dataclass(frozen=True, slots=True)
class Persist:
    actor_id: bytes
    fields: dict


@dataclass(frozen=True, slots=True)
class DropPersisted:
    actor_id: bytes


@dataclass(frozen=True, slots=True)
class RetryLater:
    actor_id: bytes
    attempt: int
    delay_s: float

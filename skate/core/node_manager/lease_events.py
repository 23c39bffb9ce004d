"""The lease scheduler's vocabulary: the events fed to ``leases.Leases`` and the commands
it returns (frozen, slotted dataclasses: one event and one command per lease request, so
their cost is a few hundred nanoseconds each). ``leases.py``'s docstring says what each
one means to the state machine; ``server.py`` makes events from RPCs and runs commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from skate.core.protocol import LeaseGrant, Spill

# -- events ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RequestLease:
    requester: Any
    rid: int
    units: dict  # fixed point
    env_vars: dict | None
    dedicated: bool  # an actor's: its worker is never reused
    strategy: Any  # None, "SPREAD" or ("node", id, soft)
    preferred_node: str | None  # where its largest arguments are (locality)
    spilled: bool  # another node manager sent it here
    now: float


@dataclass(frozen=True, slots=True)
class CancelRequests:
    """Drop up to ``count`` of the requester's unanswered requests, newest first."""

    requester: Any
    rid: int  # answered with how many were dropped
    count: int


@dataclass(frozen=True, slots=True)
class LeaseReturned:
    lease_id: int
    kill: bool  # stop the worker instead of keeping it idle
    now: float


@dataclass(frozen=True, slots=True)
class Blocked:
    worker_id: str
    blocked: bool  # waits in get/wait (True) or resumed (False)
    now: float


@dataclass(frozen=True, slots=True)
class WorkerRegistered:
    worker_id: str
    address: str
    forked: bool  # forked by the zygote (it has the zygote's modules)
    now: float


@dataclass(frozen=True, slots=True)
class WorkerGone:
    """A worker's socket closed or its process exited (whichever is seen first)."""

    worker_id: str
    now: float
    returncode: int | None = None
    stderr_tail: tuple = ()  # its last stderr lines (to explain a failed start)
    pid: int = 0


@dataclass(frozen=True, slots=True)
class PrepareBundle:
    requester: Any
    rid: int  # answered True (reserved) or False (does not fit now)
    pg_hex: str
    index: int
    bundle: dict  # plain amounts, as the placement group asked
    now: float


@dataclass(frozen=True, slots=True)
class ReturnBundle:
    pg_hex: str
    index: int
    now: float


@dataclass(frozen=True, slots=True)
class ClusterView:
    view: dict  # node id -> placement.NodeView, from the last heartbeat
    now: float


@dataclass(frozen=True, slots=True)
class RequesterGone:
    requester: Any
    now: float


@dataclass(frozen=True, slots=True)
class Prestart:
    """Fill the pool of idle task workers; ``zygote``: it is ready, replace unforked ones."""

    zygote: bool


@dataclass(frozen=True, slots=True)
class Tick:
    now: float


# -- commands -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Grant:
    requester: Any
    rid: int
    grant: LeaseGrant
    env_vars: dict | None  # the lease's (test kill hooks are read from them)


@dataclass(frozen=True, slots=True)
class SpillTo:
    requester: Any
    rid: int
    spill: Spill


@dataclass(frozen=True, slots=True)
class Fail:
    requester: Any
    rid: int
    error: BaseException


@dataclass(frozen=True, slots=True)
class Answer:
    requester: Any
    rid: int
    value: Any


@dataclass(frozen=True, slots=True)
class Warn:
    requester: Any
    message: str


@dataclass(frozen=True, slots=True)
class StartWorker:
    worker_id: str
    env_key: str
    env_vars: dict | None


@dataclass(frozen=True, slots=True)
class KillWorker:
    worker_id: str


@dataclass(frozen=True, slots=True)
class NotifyWorkerDied:
    worker_id: str
    owner_died: bool  # False for a worker culled as surplus: what it created outlives it

"""The lease scheduler's vocabulary: the events fed to ``leases.Leases`` and the commands
it returns. ``leases.py``'s docstring says what each one means to the state machine;
``server.py`` makes events from RPCs and runs commands.

They are NamedTuples, not frozen dataclasses: a node manager's start waits for this
module's import, and 20 frozen slotted dataclasses took ~20 ms to create here against
~4 ms as NamedTuples (and one is built per lease request: 0.5 us against 1.1 us).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from skate.core.protocol import LeaseGrant, Spill

# -- events ---------------------------------------------------------------------------------

class RequestLease(NamedTuple):
    requester: Any
    rid: int
    units: dict  # fixed point
    env_vars: dict | None
    dedicated: bool  # an actor's: its worker is never reused
    strategy: Any  # None, "SPREAD" or ("node", id, soft)
    preferred_node: str | None  # where its largest arguments are (locality)
    spilled: bool  # another node manager sent it here
    now: float
    tag: Any = None  # the requester's name for it, to cancel this one (CancelTagged)
    retriable: bool = True  # its tasks are retried if the worker dies (the memory monitor's
    # victims are chosen among retriable leases first)


class CancelTagged(NamedTuple):
    """Drop the requester's unanswered request of this tag (answered with None)."""

    requester: Any
    tag: Any


class CancelRequests(NamedTuple):
    """Drop up to ``at_most`` of the requester's unanswered requests, newest first."""

    requester: Any
    rid: int  # answered with how many were dropped
    at_most: int


class LeaseReturned(NamedTuple):
    lease_id: int
    kill: bool  # stop the worker instead of keeping it idle
    now: float


class Blocked(NamedTuple):
    worker_id: str
    blocked: bool  # waits in get/wait (True) or resumed (False)
    now: float


class WorkerRegistered(NamedTuple):
    worker_id: str
    address: str
    forked: bool  # forked by the zygote (it has the zygote's modules)
    now: float


class WorkerGone(NamedTuple):
    """A worker's socket closed or its process exited (whichever is seen first)."""

    worker_id: str
    now: float
    returncode: int | None = None
    stderr_tail: tuple = ()  # its last stderr lines (to explain a failed start)
    pid: int = 0


class PrepareBundle(NamedTuple):
    requester: Any
    rid: int  # answered True (reserved) or False (does not fit now)
    pg_hex: str
    bundle_index: int
    bundle: dict  # plain amounts, as the placement group asked
    now: float


class ReturnBundle(NamedTuple):
    pg_hex: str
    bundle_index: int
    now: float


class ClusterView(NamedTuple):
    view: dict  # node id -> placement.NodeView, from the last heartbeat
    now: float


class RequesterGone(NamedTuple):
    """A requester's connection closed: its requests are dropped and its leases end --
    except, with ``keep_granted``, the leases (the control store's, for actors: it is
    coming back, and adopts them)."""

    requester: Any
    now: float
    keep_granted: bool = False


class Prestart(NamedTuple):
    """Fill the pool of idle task workers; ``zygote``: it is ready, replace unforked ones."""

    zygote: bool


class Tick(NamedTuple):
    now: float


# -- commands -------------------------------------------------------------------------------

class Grant(NamedTuple):
    requester: Any
    rid: int
    grant: LeaseGrant
    env_vars: dict | None  # the lease's (test kill hooks are read from them)


class SpillTo(NamedTuple):
    requester: Any
    rid: int
    spill: Spill


class Fail(NamedTuple):
    requester: Any
    rid: int
    error: BaseException


class Answer(NamedTuple):
    requester: Any
    rid: int
    value: Any


class Warn(NamedTuple):
    requester: Any
    message: str


class StartWorker(NamedTuple):
    worker_id: str
    env_key: str
    env_vars: dict | None


class KillWorker(NamedTuple):
    worker_id: str


class NotifyWorkerDied(NamedTuple):
    worker_id: str
    owner_died: bool  # False for a worker culled as surplus: what it created outlives it

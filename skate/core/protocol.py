"""The messages Skate's processes exchange, as typed records.

Every message that crosses a process boundary on a hot path is a
``NamedTuple`` here: the field names are the contract, and the type checker
and an editor see both ends. RPC names are in :mod:`skate.core.rpc.methods`.

On the wire they travel as **plain tuples**. Measured here (CPython 3.11,
a 13-field task spec in a request frame): a tuple pickles in 1.1 us and
unpickles in 1.3 us, the same fields as a NamedTuple take 3.9 us and 2.8 us
(pickle stores the class and rebuilds it through ``__new__``). So a sender
builds the record and sends ``tuple(record)`` -- or, for the per-task
messages, builds the tuple in field order directly -- and a receiver that
wants names rebuilds it with ``Record.read(wire)`` (``tuple.__new__``, 0.3 us).
Tagged unions (value entries, lease replies) keep their tag as the first
field, compared against the constants below.

The messages, by who sends them to whom:

=====================  =====================  ======================================
message                sender -> receiver     what
=====================  =====================  ======================================
TaskSpec               submitter -> worker    a task to run (``push_task``)
PushReply / BOUNCED /  worker -> submitter    how a pushed task ended
NEED_FUNCTION
ActorCallSpec          caller -> actor        one actor method call (``actor_call``)
ActorStart             control store -> wkr   construct an actor (``start_actor``)
LeaseGrant / Spill     node mgr -> requester  a worker leased, or ask that node instead
InlineValue /          worker -> owner        a return value, inline or in a store
StoredValue                                   (reply entries; the owner's table keeps
                                              them without ``contained``)
StoredArg / RefArg /   owner -> worker        a resolved argument: in a store, a ref to
FailedArg / inline                            read through its owner, or an error
ActorState             control store -> all   an actor's lifecycle state
=====================  =====================  ======================================
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

_read = tuple.__new__

# -- tags of the tagged unions --------------------------------------------------------------
INLINE = "i"  #: a value carried in the message itself
STORED = "s"  #: a value in a node's shared-memory store
REF = "r"  #: an argument to read through its owner (it was borrowed, not resolved)
ERROR = "err"  #: a dependency that failed: the exception instead of a value
LOST = "lost"  #: the owner no longer has it (freed, or its copy was lost)
OWNER_DIED = "owner_died"  #: the owner could not be reached
SPILL = "spill"  #: a lease request answered with "ask that node instead"
OK = "ok"  #: a pushed task or actor call ran (successfully or with the user's error)

BOUNCED = ("bounced",)  #: a pipelined task sent back: it waited behind a slow one
NEED_FUNCTION = ("need_function",)  #: the push that carried the function never ran here

LOST_ENTRY = (LOST,)
OWNER_DIED_ENTRY = (OWNER_DIED,)


class JobRef(NamedTuple):
    """Which job and namespace a task or actor runs for."""

    job_id: str | None
    namespace: str


class TaskSpec(NamedTuple):
    """A normal task, pushed to a leased worker (``push_task``)."""

    task_id: bytes
    fn_key: bytes  #: the function's cache key in the worker
    fn_blob: bytes | None  #: the pickled function, the first time this worker sees it
    fn_name: str
    args_blob: Any  #: pickled (args, kwargs), or (STORED, i): the i-th dependency holds them
    deps: list  #: resolved top-level ObjectRef arguments: argument entries, in order
    return_ids: list
    caller: str  #: the owner's address: large returns go to the store in its name
    gpu_ids: list
    resources: dict
    max_calls: int
    attempt: int
    job: tuple  #: a JobRef

    @classmethod
    def read(cls, wire: tuple) -> TaskSpec:
        return _read(cls, wire)


class ActorCallSpec(NamedTuple):
    """One call of an actor method (``actor_call``), in order per caller."""

    task_id: bytes
    method: str
    args_blob: Any
    deps: list
    return_ids: list
    caller: str

    @classmethod
    def read(cls, wire: tuple) -> ActorCallSpec:
        return _read(cls, wire)


class ActorStart(NamedTuple):
    """Construct an actor in the worker leased for it (``start_actor``)."""

    actor_id: bytes
    payload: bytes  #: pickled (class, args_blob, deps, max_concurrency, class_name)
    gpu_ids: list
    resources: dict
    num_restarts: int
    job: tuple  #: a JobRef
    meta: dict  #: what handles need: class name, methods, max_task_retries, ...

    @classmethod
    def read(cls, wire: tuple) -> ActorStart:
        return _read(cls, wire)


class PushReply(NamedTuple):
    """A pushed task or actor call ran; ``returns`` are value entries, one per return id."""

    tag: str  #: OK
    returns: list
    app_error: bool  #: the user's code raised (returns hold the error)
    exiting: bool  #: the worker exits after this reply (max_calls reached)
    run_s: float

    @classmethod
    def read(cls, wire: tuple) -> PushReply:
        return _read(cls, wire)


class LeaseGrant(NamedTuple):
    """A node manager leased a worker to the requester."""

    lease_id: int
    worker_id: str
    address: str
    gpu_ids: list
    node_id: str

    @classmethod
    def read(cls, wire: tuple) -> LeaseGrant:
        return _read(cls, wire)


class Spill(NamedTuple):
    """A lease request answered with another node to ask (spillback)."""

    tag: str  #: SPILL
    address: str  #: that node's node manager
    node_id: str

    @classmethod
    def read(cls, wire: tuple) -> Spill:
        return _read(cls, wire)


def is_spill(reply: Any) -> bool:
    """Whether a lease reply (a grant, a spill, or None when cancelled) is a spill."""
    return reply is not None and reply[0] == SPILL


class InlineValue(NamedTuple):
    """A value small enough to travel in the message (up to ``INLINE_THRESHOLD``)."""

    tag: str  #: INLINE
    kind: int  #: serialization.KIND_VALUE or KIND_ERROR
    meta: bytes
    bufs: list
    contained: tuple | list = ()  #: (oid, owner) of refs inside it (return entries only)


class StoredValue(NamedTuple):
    """A value in a store: the owner's entry says where; readers pull it from there."""

    tag: str  #: STORED
    kind: int
    node_id: str
    size: int
    contained: tuple | list = ()


class StoredArg(NamedTuple):
    """A resolved argument in a store: the worker maps it from its node's store."""

    tag: str  #: STORED
    oid: bytes
    node_id: str
    size: int


class RefArg(NamedTuple):
    """An argument the worker reads through its owner (not resolved by the submitter)."""

    tag: str  #: REF
    oid: bytes
    owner: str


class FailedArg(NamedTuple):
    """A dependency that failed: the task fails with this error instead of running."""

    tag: str  #: ERROR
    error: BaseException


# -- task states (Ray's names), as the state API shows them; plain strings, since they are
# recorded on the per-task path (see worker/task_events.py, control_store/tasks.py)
PENDING_ARGS_AVAIL = "PENDING_ARGS_AVAIL"
PENDING_NODE_ASSIGNMENT = "PENDING_NODE_ASSIGNMENT"
SUBMITTED_TO_WORKER = "SUBMITTED_TO_WORKER"
RUNNING = "RUNNING"
RUNNING_IN_RAY_GET = "RUNNING_IN_RAY_GET"
RUNNING_IN_RAY_WAIT = "RUNNING_IN_RAY_WAIT"
FINISHED = "FINISHED"
FAILED = "FAILED"
TASK_STATES = (PENDING_ARGS_AVAIL, PENDING_NODE_ASSIGNMENT, SUBMITTED_TO_WORKER, RUNNING,
               RUNNING_IN_RAY_GET, RUNNING_IN_RAY_WAIT, FINISHED, FAILED)
#: a worker's "my task returned" (not a Ray state: it ends the timeline's RUNNING slice)
RUN_ENDED = "RUN_ENDED"


class ActorState(str, enum.Enum):
    """An actor's lifecycle state (Ray's names); equal to its name as a string.

    PENDING_CREATION -> ALIVE -> (RESTARTING -> ALIVE)* -> DEAD; any state may go
    to DEAD. See ``control_store/actors.py`` for the transitions.
    """

    PENDING_CREATION = "PENDING_CREATION"
    ALIVE = "ALIVE"
    RESTARTING = "RESTARTING"
    DEAD = "DEAD"

    def __str__(self) -> str:
        return self.value

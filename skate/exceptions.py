"""Typed exceptions raised by Skate, with the names Ray users already catch.

A task's exception re-raises at ``skate.get`` as an instance of a class that
derives from both :class:`RayTaskError` and the user's own exception class, so
``except ValueError`` keeps working and the remote traceback is in the message::

    import skate
    @skate.remote
    def f():
        raise ValueError("bad")
    try:
        skate.get(f.remote())
    except ValueError as e:
        assert isinstance(e, skate.exceptions.RayTaskError)
"""

from __future__ import annotations

__all__ = [
    "RayError",
    "RayTaskError",
    "TaskError",
    "RayActorError",
    "ActorDiedError",
    "ActorUnavailableError",
    "ActorAlreadyExistsError",
    "GetTimeoutError",
    "TaskCancelledError",
    "TaskUnschedulableError",
    "ObjectLostError",
    "OwnerDiedError",
    "ObjectStoreFullError",
    "OutOfMemoryError",
    "WorkerCrashedError",
    "RaySystemError",
    "NodeDiedError",
    "WorkerStartupError",
    "AsyncioActorExit",
    "TuneError",
    "RayServeException",
]


class RayError(Exception):
    """Base of every error Skate raises on its own behalf."""


class RaySystemError(RayError):
    """Skate itself failed (a broken connection, a process that would not start)."""


class RayTaskError(RayError):
    """A remote task or actor method raised; ``cause`` is the original exception.

    ``as_instanceof_cause()`` returns an object that is also an instance of the
    cause's class, which is what ``get`` raises.
    """

    def __init__(self, function_name: str = "", traceback_str: str = "", cause=None, pid=None):
        self.function_name = function_name
        self.traceback_str = traceback_str
        self.cause = cause
        self.pid = pid
        super().__init__(self._message())

    def _message(self) -> str:
        where = f" (pid={self.pid})" if self.pid else ""
        head = f"{type(self.cause).__name__}: {self.cause}" if self.cause is not None else "Error"
        return f"{head}\n\nraised in skate::{self.function_name}(){where}:\n{self.traceback_str}"

    def __str__(self) -> str:
        return self._message()

    def __reduce__(self):
        return (_rebuild_task_error, (self.function_name, self.traceback_str, self.cause, self.pid))

    def as_instanceof_cause(self) -> "RayTaskError":
        cause = self.cause
        if cause is None or isinstance(cause, RayTaskError) or not isinstance(cause, Exception):
            return self
        cause_cls = type(cause)
        try:
            dual = _DUAL_CLASSES.get(cause_cls)
            if dual is None:
                dual = type(
                    f"RayTaskError({cause_cls.__name__})",
                    (RayTaskError, cause_cls),
                    {"__module__": __name__, "__init__": _dual_init,
                     "__str__": RayTaskError.__str__},
                )
                _DUAL_CLASSES[cause_cls] = dual
            err = dual.__new__(dual)
        except TypeError:  # a class that cannot be subclassed (final C types)
            return self
        err.function_name = self.function_name
        err.traceback_str = self.traceback_str
        err.cause = cause
        err.pid = self.pid
        err.args = (self._message(),)
        try:
            err.__dict__.update({k: v for k, v in cause.__dict__.items() if k not in err.__dict__})
        except AttributeError:
            pass
        return err


TaskError = RayTaskError
_DUAL_CLASSES: dict = {}


def _dual_init(self, *args, **kwargs):  # pragma: no cover - only reached by user re-raise
    Exception.__init__(self, *args)


def _rebuild_task_error(function_name, traceback_str, cause, pid):
    return RayTaskError(function_name, traceback_str, cause, pid)


class RayActorError(RayError):
    """An actor could not run a call: it died, was killed, or failed to start."""

    def __init__(self, message: str = "The actor died unexpectedly.", actor_id: str | None = None):
        self.actor_id = actor_id
        super().__init__(message)


class ActorDiedError(RayActorError):
    """The actor is dead: killed, crashed past ``max_restarts``, or exited."""


class ActorUnavailableError(RayActorError):
    """The actor is restarting or unreachable right now; the call may be retried."""


class ActorAlreadyExistsError(ValueError, RayError):
    """An actor with this name already exists in the namespace."""


class GetTimeoutError(RayError, TimeoutError):
    """``get(timeout=...)`` ran out of time before the objects were ready."""


class TaskCancelledError(RayError):
    """The task was cancelled with ``skate.cancel``."""

    def __init__(self, task_id=None, message=None):
        self.task_id = task_id
        super().__init__(message or f"Task {task_id} was cancelled.")


class ObjectLostError(RayError):
    """Every copy of the object is gone and it could not be rebuilt."""

    def __init__(self, object_ref_hex: str = "", message: str | None = None):
        self.object_ref_hex = object_ref_hex
        super().__init__(message or f"Object {object_ref_hex} is lost: every copy is gone.")


class OwnerDiedError(ObjectLostError):
    """The process that owned the object (its creator) died, so it cannot be found."""

    def __init__(self, object_ref_hex: str = "", message: str | None = None):
        super().__init__(
            object_ref_hex,
            message
            or f"Object {object_ref_hex} cannot be retrieved: the process that created it "
            "(its owner) died.",
        )


class TaskUnschedulableError(RayError):
    """The task can never be scheduled (e.g. pinned to a node that is dead)."""


class ObjectStoreFullError(RayError):
    """The object store and its spill directory are both full."""


class OutOfDiskError(ObjectStoreFullError):
    """The object store is full and its spill folder's disk has no room left (Ray's
    ``OutOfDiskError``): nothing stored before is harmed; free objects or disk space."""


class OutOfMemoryError(RayError):
    """The node's memory monitor killed the worker running the task, because the node ran
    low on memory, and the task is not retried (Ray's ``OutOfMemoryError``). The message
    has the node's memory figures; give the task more memory headroom (fewer tasks at a
    time, e.g. more ``num_cpus`` each) or set ``SKATE_MEMORY_USAGE_THRESHOLD``."""


class WorkerCrashedError(RayError):
    """The worker running the task died (killed or crashed) and retries ran out."""


class NodeDiedError(RayError):
    """The node running the task died."""


class WorkerStartupError(RaySystemError):
    """Workers for a task or actor keep exiting before they are ready.

    Raised for the work that waited for them once several starts in a row
    failed on their own (an import error in a ``runtime_env``, a broken
    interpreter); the message carries the last worker's stderr. Workers killed
    from outside while starting are simply started again.
    """


class AsyncioActorExit(RayError):
    """Raised inside an async actor by ``exit_actor()`` (Ray's name); ends the actor."""


class TuneError(RayError):
    """A Tune experiment could not run as asked (bad arguments, failed trials).

    ``tune.run(..., raise_on_failed_trial=True)`` raises it when trials end in
    ERROR; its message names them and where their ``error.txt`` lies.
    """


class RayServeException(RayError):
    """An error of skate.serve (Ray's ``ray.serve.exceptions.RayServeException``)."""

"""Streaming generators: a task or actor method that ``yield``s returns refs as it goes.

``f.remote()`` on a generator function (or ``num_returns="streaming"``)
returns an :class:`ObjectRefGenerator`; each ``next()`` gives the ObjectRef of
the next value, as soon as the worker has yielded it, while the task still
runs. The protocol, on the connection the task was pushed on:

- the worker serializes each yielded value as a return object
  ``object_id(task, index + 2)`` owned by the caller and sends it in a
  ``generator_item(task, index, entry)`` notification;
- the task's own reply (its single return, ``object_id(task, 1)``) comes after
  every item, on the same connection, so it marks the end: its value is the
  item count, or the error that ended the generator (or its worker).

So a generator that raises yields the refs it made, then one ref whose ``get``
raises the error, then stops; a worker that dies is the same (or, with
retries left, the task runs again and items already delivered are skipped by
index). Async callers iterate with ``async for``.
"""

from __future__ import annotations

import asyncio
import collections
import threading

from skate.core import ids
from skate.core.object_ref import ObjectRef


class ObjectRefGenerator:
    """The refs a streaming task yields, in order (Ray's ``ObjectRefGenerator``).

    >>> import skate
    >>> @skate.remote
    ... def count(n):
    ...     for i in range(n):
    ...         yield i
    >>> [skate.get(ref) for ref in count.remote(3)]
    [0, 1, 2]
    """

    def __init__(self, core, task_id: bytes, end_ref: ObjectRef):
        self._core = core
        self._task_id = task_id
        self._end = end_ref  # completes after every item: the count, or the error
        self._refs: collections.deque = collections.deque()
        self._delivered = 0  # items received (later duplicates from a retry are skipped)
        self._finished = False
        self._failed = False
        self._error_given = False
        self._cv = threading.Condition()
        core.objects.on_ready(end_ref.id, self._ended)

    # -- fed by the connection's reader thread ---------------------------------------------
    def _item(self, index: int, entry) -> None:
        with self._cv:
            if index < self._delivered or self._finished:
                return  # a retried task's second copy of an item already delivered
            oid = ids.object_id(self._task_id, index + 2)
            self._core.objects.create_owned(oid)
            ref = ObjectRef(oid, self._core.address)
            self._core.complete_returns([oid], [entry])
            self._delivered = index + 1
            self._refs.append(ref)
            self._cv.notify_all()

    def _ended(self, obj) -> None:
        from skate.core.ownership_codes import FAILED

        with self._cv:
            self._finished = True
            self._failed = obj.state == FAILED
            self._cv.notify_all()
        self._core.generators.pop(self._task_id, None)

    # -- the caller's side -------------------------------------------------------------------
    def _next(self, timeout: float | None = None) -> ObjectRef:
        with self._cv:
            if not self._cv.wait_for(lambda: self._refs or self._finished, timeout):
                raise TimeoutError("no item within the timeout")
            if self._refs:
                return self._refs.popleft()
            if self._failed and not self._error_given:
                self._error_given = True
                return self._end  # its get() raises what ended the generator
            raise StopIteration

    def __iter__(self):
        return self

    def __next__(self) -> ObjectRef:
        return self._next()

    def __aiter__(self):
        return self

    async def __anext__(self) -> ObjectRef:
        ref = await asyncio.get_running_loop().run_in_executor(None, self._next_or_none)
        if ref is None:
            raise StopAsyncIteration
        return ref

    def _next_or_none(self) -> ObjectRef | None:
        try:  # StopIteration cannot cross a Future
            return self._next()
        except StopIteration:
            return None

    def is_finished(self) -> bool:
        """True once the task ended and every ref was taken."""
        with self._cv:
            return self._finished and not self._refs and (self._error_given or not self._failed)

    def completed(self) -> ObjectRef:
        """A ref that resolves when the task ends (to the number of items), or raises its
        error."""
        return self._end

    def __repr__(self):
        return f"ObjectRefGenerator({self._task_id.hex()})"

    def __reduce__(self):
        raise TypeError("An ObjectRefGenerator cannot be passed to other tasks; pass the refs "
                        "it yields instead.")


def is_streaming(fn, num_returns) -> bool:
    """Whether calls of ``fn`` with this ``num_returns`` option stream (Ray's default for
    generator functions)."""
    import inspect

    if num_returns == "streaming":
        return True
    return num_returns is None and (inspect.isgeneratorfunction(fn)
                                    or inspect.isasyncgenfunction(fn))

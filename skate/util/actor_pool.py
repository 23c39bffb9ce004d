"""``ActorPool``: spread work over a fixed set of actors you created, with Ray's semantics.

The caller supplies the actors and a function ``fn(actor, value)`` that starts
one call and returns its ObjectRef; the pool hands each value to an idle actor
and queues values while every actor is busy. An actor counts as busy until
its result has been *collected* (``get_next`` / ``get_next_unordered``), not
merely computed: that is when it returns to the idle set and the next queued
value is submitted. Everything runs in the caller's thread; there is no
background machinery.

Task indices: ``submit`` numbers values 0, 1, 2, ...; ``get_next`` returns them
in that order, ``get_next_unordered`` in completion order. Mixing them follows
Ray: once an unordered result with a higher index was taken, ``get_next``
skips past it and raises ValueError when nothing in order is left.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import skate
from skate.exceptions import ActorDiedError

__all__ = ["ActorPool"]

_TIMEOUT_MSG = "Timed out waiting for result"


def _refs(future) -> list:
    return list(future) if isinstance(future, list) else [future]


def _key(future):
    # fn may return a list of refs (several returns); a list cannot key a dict.
    return tuple(future) if isinstance(future, list) else future


class ActorPool:
    """Run values through a fixed pool of actors.

    Args:
        actors: the actor handles to use; each runs one value at a time.

    >>> import skate
    >>> from skate.util import ActorPool
    >>> @skate.remote
    ... class Doubler:
    ...     def double(self, v):
    ...         return 2 * v
    >>> pool = ActorPool([Doubler.remote(), Doubler.remote()])
    >>> list(pool.map(lambda a, v: a.double.remote(v), [1, 2, 3, 4]))
    [2, 4, 6, 8]
    """

    def __init__(self, actors: Iterable):
        # Actors free to take a value; the last one is used first (as in Ray).
        self._idle_actors: list = list(actors)
        # Submitted, not yet collected: future key -> (task index, actor).
        self._future_to_actor: dict = {}
        # The same tasks by index -> future (ObjectRef or list of them).
        self._index_to_future: dict = {}
        # Index the next submitted task gets.
        self._next_task_index = 0
        # Index get_next() returns next; every task below it was collected or skipped.
        self._next_return_index = 0
        # (fn, value) waiting for an idle actor, oldest first.
        self._pending_submits: deque = deque()

    def map(self, fn: Callable[[Any, Any], Any], values: Iterable):
        """Submit ``fn(actor, v)`` for every value; an iterator over results in order.

        Results not collected from earlier submissions are dropped first.
        """
        self._drop_uncollected(self.get_next)
        for v in values:
            self.submit(fn, v)

        def results():
            while self.has_next():
                yield self.get_next()

        return results()

    def map_unordered(self, fn: Callable[[Any, Any], Any], values: Iterable):
        """Like :meth:`map`, yielding results as they complete.

        >>> import skate
        >>> @skate.remote
        ... class Doubler:
        ...     def double(self, v):
        ...         return 2 * v
        >>> pool = ActorPool([Doubler.remote()])
        >>> sorted(pool.map_unordered(lambda a, v: a.double.remote(v), [1, 2]))
        [2, 4]
        """
        self._drop_uncollected(self.get_next_unordered)
        for v in values:
            self.submit(fn, v)

        def results():
            while self.has_next():
                yield self.get_next_unordered()

        return results()

    def submit(self, fn: Callable[[Any, Any], Any], value) -> None:
        """Start ``fn(actor, value)`` on an idle actor, or queue it until one is free."""
        if not self._idle_actors:
            self._pending_submits.append((fn, value))
            return
        actor = self._idle_actors.pop()
        future = fn(actor, value)
        self._future_to_actor[_key(future)] = (self._next_task_index, actor)
        self._index_to_future[self._next_task_index] = future
        self._next_task_index += 1

    def has_next(self) -> bool:
        """Whether submitted results remain to be collected."""
        return bool(self._future_to_actor)

    def get_next(self, timeout: float | None = None, ignore_if_timedout: bool = False):
        """The next result in submission order.

        Raises ``TimeoutError`` if it is not ready within ``timeout`` seconds;
        with ``ignore_if_timedout=True`` that task is dropped first (its actor
        returns to the idle set) so the next call moves on to the following one.
        Raises ``StopIteration`` when nothing is pending.
        """
        if not self.has_next():
            raise StopIteration("No more results to get")
        if self._next_return_index >= self._next_task_index:
            raise ValueError("It is not allowed to call get_next() after get_next_unordered().")
        future = self._index_to_future[self._next_return_index]
        timed_out = False
        if timeout is not None:
            refs = _refs(future)
            ready, _ = skate.wait(refs, num_returns=len(refs), timeout=timeout)
            if len(ready) < len(refs):
                if not ignore_if_timedout:
                    raise TimeoutError(_TIMEOUT_MSG)
                timed_out = True
        del self._index_to_future[self._next_return_index]
        self._next_return_index += 1
        _, actor = self._future_to_actor.pop(_key(future))
        if timed_out:
            self._return_actor(actor)
            raise TimeoutError(f"{_TIMEOUT_MSG}. The task {future} has been ignored.")
        return self._get_result(future, actor)

    def get_next_unordered(self, timeout: float | None = None, ignore_if_timedout: bool = False):
        """Whichever pending result completes first.

        Raises ``TimeoutError`` if none is ready within ``timeout`` seconds;
        with ``ignore_if_timedout=True`` the oldest pending task is dropped first.
        """
        if not self.has_next():
            raise StopIteration("No more results to get")
        pending = [ref for future in self._index_to_future.values() for ref in _refs(future)]
        ready, _ = skate.wait(pending, num_returns=1, timeout=timeout)
        if ready:
            index = next(i for i, f in self._index_to_future.items() if ready[0] in _refs(f))
        elif not ignore_if_timedout:
            raise TimeoutError(_TIMEOUT_MSG)
        else:
            index = min(self._index_to_future)
        future = self._index_to_future.pop(index)
        _, actor = self._future_to_actor.pop(_key(future))
        self._next_return_index = max(self._next_return_index, index + 1)
        if not ready:
            self._return_actor(actor)
            raise TimeoutError(f"{_TIMEOUT_MSG}. The task {future} has been ignored.")
        return self._get_result(future, actor)

    def has_free(self) -> bool:
        """Whether an actor is idle and no value is waiting for one."""
        return bool(self._idle_actors) and not self._pending_submits

    def pop_idle(self):
        """Take an idle actor out of the pool; None if none is free."""
        if self.has_free():
            return self._idle_actors.pop()
        return None

    def push(self, actor) -> None:
        """Add an actor to the pool (it starts on a queued value at once, if any).

        Raises ValueError if the actor already belongs to this pool.
        """
        busy = [a for _, a in self._future_to_actor.values()]
        if actor in self._idle_actors or actor in busy:
            raise ValueError("Actor already belongs to current ActorPool")
        self._return_actor(actor)

    # -- internals -----------------------------------------------------------------------------
    def _drop_uncollected(self, get) -> None:
        while self.has_next():
            try:
                get(timeout=0, ignore_if_timedout=True)
            except TimeoutError:
                pass

    def _get_result(self, future, actor):
        alive = True
        try:
            return skate.get(future)
        except ActorDiedError:
            alive = False  # a dead actor does not go back to the idle set
            raise
        finally:
            self._return_actor(actor, alive)

    def _return_actor(self, actor, alive: bool = True) -> None:
        if alive:
            self._idle_actors.append(actor)
        if self._pending_submits and self._idle_actors:
            self.submit(*self._pending_submits.popleft())

"""``Queue``: a first-in, first-out queue in an actor, usable from any task or actor.

The items live in an async actor around an ``asyncio.Queue``. A blocked
``get`` or ``put`` is a coroutine parked on that queue, not a thread and not a
poll: the actor sleeps until the item or the space arrives, and serves other
callers meanwhile (an async actor interleaves up to 1,000 calls). The actor
answers every call with a status instead of raising, and the handle raises
``Empty`` / ``Full`` in the caller, so they arrive as these exact classes.

The ``Queue`` object holds only the actor handle and ``maxsize``; it pickles,
so pass it to tasks and actors like any argument.

>>> from skate.util.queue import Queue
>>> q = Queue(maxsize=2)
>>> q.put(1); q.put(2)
>>> q.full(), q.get(), q.get_nowait_batch(1)
(True, 1, [2])
>>> q.shutdown()
"""

from __future__ import annotations

import asyncio
import queue as _stdlib_queue
from collections.abc import Iterable

import skate

__all__ = ["Empty", "Full", "Queue"]


class Empty(_stdlib_queue.Empty):
    """``get`` found the queue empty (non-blocking) or nothing came within the timeout."""


class Full(_stdlib_queue.Full):
    """``put`` found the queue full (non-blocking) or no space came within the timeout."""


# Status codes of the actor's answers.
_OK, _EMPTY, _FULL = "ok", "empty", "full"


class _QueueActor:
    """The actor that holds the items (made remote by ``Queue``)."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        # Binds to the actor's event loop on first use (Python 3.10+).
        self.queue = asyncio.Queue(maxsize)

    async def qsize(self) -> int:
        return self.queue.qsize()

    async def empty(self) -> bool:
        return self.queue.empty()

    async def full(self) -> bool:
        return self.queue.full()

    async def put(self, item, timeout: float | None = None) -> str:
        q = self.queue
        if not q.full():
            q.put_nowait(item)
            return _OK
        try:
            await asyncio.wait_for(q.put(item), timeout)
        except asyncio.TimeoutError:
            return _FULL
        return _OK

    async def get(self, timeout: float | None = None):
        q = self.queue
        if not q.empty():
            return _OK, q.get_nowait()
        try:
            return _OK, await asyncio.wait_for(q.get(), timeout)
        except asyncio.TimeoutError:
            return _EMPTY, None

    async def put_nowait(self, item) -> str:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            return _FULL
        return _OK

    async def put_nowait_batch(self, items: list):
        q = self.queue
        if self.maxsize > 0 and len(items) + q.qsize() > self.maxsize:
            return _FULL, q.qsize()
        for item in items:
            q.put_nowait(item)
        return _OK, None

    async def get_nowait(self):
        try:
            return _OK, self.queue.get_nowait()
        except asyncio.QueueEmpty:
            return _EMPTY, None

    async def get_nowait_batch(self, num_items: int):
        q = self.queue
        if num_items > q.qsize():
            return _EMPTY, q.qsize()
        return _OK, [q.get_nowait() for _ in range(num_items)]


_actor_class = None


def _queue_actor_class():
    global _actor_class
    if _actor_class is None:
        _actor_class = skate.remote(_QueueActor)
    return _actor_class


def _check_timeout(block: bool, timeout: float | None) -> float | None:
    if not block:
        return None
    if timeout is not None and timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")
    return timeout


class Queue:
    """A first-in, first-out queue shared by every process of the cluster.

    Args:
        maxsize: the most items it holds; 0 (the default) means no bound.
        actor_options: options for the queue's actor (``.options(**actor_options)``),
            e.g. ``{"name": "jobs"}`` to find it again with ``skate.get_actor``.

    >>> import skate
    >>> from skate.util.queue import Queue
    >>> q = Queue()
    >>> @skate.remote
    ... def produce(q, n):
    ...     for i in range(n):
    ...         q.put(i)
    >>> skate.get(produce.remote(q, 3))
    >>> [q.get(timeout=10) for _ in range(3)]
    [0, 1, 2]
    """

    def __init__(self, maxsize: int = 0, actor_options: dict | None = None):
        if not isinstance(maxsize, int) or isinstance(maxsize, bool):
            raise TypeError(f"maxsize must be an int, got {type(maxsize).__name__}")
        self.maxsize = maxsize
        cls = _queue_actor_class()
        if actor_options:
            cls = cls.options(**actor_options)
        self.actor = cls.remote(maxsize)

    def __len__(self) -> int:
        return self.size()

    def size(self) -> int:
        """The number of items in the queue."""
        return skate.get(self._handle().qsize.remote())

    def qsize(self) -> int:
        """The number of items in the queue (``size()``)."""
        return self.size()

    def empty(self) -> bool:
        """Whether the queue holds no item."""
        return skate.get(self._handle().empty.remote())

    def full(self) -> bool:
        """Whether the queue holds ``maxsize`` items."""
        return skate.get(self._handle().full.remote())

    def put(self, item, block: bool = True, timeout: float | None = None) -> None:
        """Add ``item``; if full, wait (up to ``timeout`` seconds) or raise ``Full``."""
        self._raise_full(skate.get(self._put_ref(item, block, timeout)))

    async def put_async(self, item, block: bool = True, timeout: float | None = None) -> None:
        """``put`` for coroutines: awaits instead of blocking the event loop."""
        self._raise_full(await self._put_ref(item, block, timeout))

    def get(self, block: bool = True, timeout: float | None = None):
        """Remove and return the oldest item; if empty, wait (up to ``timeout``) or raise
        ``Empty``."""
        return self._item(skate.get(self._get_ref(block, timeout)))

    async def get_async(self, block: bool = True, timeout: float | None = None):
        """``get`` for coroutines: awaits instead of blocking the event loop."""
        return self._item(await self._get_ref(block, timeout))

    def put_nowait(self, item) -> None:
        """``put(item, block=False)``: raises ``Full`` at once if there is no space."""
        self.put(item, block=False)

    def get_nowait(self):
        """``get(block=False)``: raises ``Empty`` at once if there is no item."""
        return self.get(block=False)

    def put_nowait_batch(self, items: Iterable) -> None:
        """Add all ``items`` in order, in one call; raises ``Full`` (adding none) if they
        do not all fit."""
        if not isinstance(items, Iterable):
            raise TypeError("Argument 'items' must be an Iterable")
        items = list(items)
        status, size = skate.get(self._handle().put_nowait_batch.remote(items))
        if status == _FULL:
            raise Full(
                f"Cannot add {len(items)} items to queue of size {size} and maxsize {self.maxsize}."
            )

    def get_nowait_batch(self, num_items: int) -> list:
        """Remove and return ``num_items`` items in order, in one call; raises ``Empty``
        (removing none) if there are fewer."""
        if not isinstance(num_items, int) or isinstance(num_items, bool):
            raise TypeError("Argument 'num_items' must be an int")
        if num_items < 0:
            raise ValueError("'num_items' must be nonnegative")
        status, value = skate.get(self._handle().get_nowait_batch.remote(num_items))
        if status == _EMPTY:
            raise Empty(f"Cannot get {num_items} items from queue of size {value}.")
        return value

    def shutdown(self, force: bool = False, grace_period_s: float = 5) -> None:
        """End the queue's actor: after the calls already sent, or at once with ``force``.

        A graceful shutdown that takes longer than ``grace_period_s`` is forced.
        Using the queue afterwards raises RuntimeError.
        """
        if self.actor is None:
            return
        actor, self.actor = self.actor, None
        if force:
            skate.kill(actor)
            return
        done = actor.__ray_terminate__.remote()
        _, not_done = skate.wait([done], timeout=grace_period_s)
        if not_done:
            skate.kill(actor)

    # -- internals -----------------------------------------------------------------------------
    def _handle(self):
        if self.actor is None:
            raise RuntimeError("This Queue was shut down; create a new Queue to go on.")
        return self.actor

    def _put_ref(self, item, block, timeout):
        timeout = _check_timeout(block, timeout)
        if not block:
            return self._handle().put_nowait.remote(item)
        return self._handle().put.remote(item, timeout)

    def _get_ref(self, block, timeout):
        timeout = _check_timeout(block, timeout)
        if not block:
            return self._handle().get_nowait.remote()
        return self._handle().get.remote(timeout)

    @staticmethod
    def _raise_full(status: str) -> None:
        if status == _FULL:
            raise Full

    @staticmethod
    def _item(answer):
        status, item = answer
        if status == _EMPTY:
            raise Empty
        return item

"""What a Pool call hands back: ``AsyncResult`` and ``IMapIterator``, as in the stdlib.

A Pool splits a call into chunks and sends each to a pool process; when a
chunk's call completes, the pool calls ``_set(index, ok, value)`` on the
call's result object, from one of Skate's completion threads. These classes
hold no Skate state: they are plain thread-safe collectors, so they behave the
same whatever runs the chunks.

Semantics follow ``multiprocessing.pool``: a map fails as a whole with the
first chunk that fails (later chunks are ignored); callbacks run before
``get`` returns; ``get(timeout)`` and ``next(timeout)`` raise
``multiprocessing.TimeoutError``.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from multiprocessing import TimeoutError
from multiprocessing.pool import RemoteTraceback

from skate.exceptions import RayTaskError

log = logging.getLogger(__name__)

__all__ = ["AsyncResult", "IMapIterator", "TimeoutError", "unwrap_error"]


def unwrap_error(error: BaseException) -> BaseException:
    """The exception the user's function raised, the way the stdlib Pool re-raises it.

    Skate raises a task's failure as ``RayTaskError(ValueError)``; the stdlib
    raises the ``ValueError`` itself with the remote traceback as its
    ``__cause__``. Anything else (an actor that died, say) is returned as is.

    >>> from skate.exceptions import RayTaskError
    >>> err = RayTaskError("f", "Traceback ...", ValueError("bad")).as_instanceof_cause()
    >>> type(unwrap_error(err)).__name__
    'ValueError'
    """
    cause = getattr(error, "cause", None)
    if isinstance(error, RayTaskError) and isinstance(cause, Exception):
        cause.__cause__ = RemoteTraceback(error.traceback_str)
        return cause
    return error


def _call_quietly(callback, value, what: str) -> None:
    # The stdlib runs callbacks on its result thread, where an exception would
    # kill that thread; here it would kill a completion thread. Log instead.
    try:
        callback(value)
    except Exception:
        log.exception("The %s of a Pool call raised; its exception is ignored.", what)


class AsyncResult:
    """The result of ``apply_async``, ``map_async`` or ``starmap_async``.

    >>> from skate.util.multiprocessing import Pool
    >>> with Pool(2) as pool:
    ...     result = pool.map_async(abs, [-1, -2])
    ...     result.get(timeout=60)
    [1, 2]
    """

    def __init__(self, num_chunks: int, callback=None, error_callback=None, single=False):
        self._lock = threading.Lock()
        self._event = threading.Event()
        # Chunk results by index until all arrived; None once settled.
        self._chunks: list | None = [None] * num_chunks
        # Chunks not yet arrived; a settled result no longer counts.
        self._missing = num_chunks
        self._single = single
        self._callback = callback
        self._error_callback = error_callback
        # None while pending; True/False once settled (set under _lock, exactly once).
        self._success: bool | None = None
        # The value (success) or the exception (failure); valid once _event is set.
        self._value = None
        if num_chunks == 0:
            self._settle(True, [])

    def ready(self) -> bool:
        """Whether the call has completed (successfully or not)."""
        return self._event.is_set()

    def successful(self) -> bool:
        """Whether the call completed without raising; ValueError if not ready yet."""
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return bool(self._success)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the result is ready or ``timeout`` seconds pass."""
        self._event.wait(timeout)

    def get(self, timeout: float | None = None):
        """The result; re-raises the function's exception; ``multiprocessing.TimeoutError``
        if it is not ready within ``timeout`` seconds."""
        if not self._event.wait(timeout):
            raise TimeoutError(f"The Pool result was not ready within {timeout} s.")
        if self._success:
            return self._value
        raise self._value

    def _set(self, index: int, ok: bool, value) -> None:
        """A chunk's outcome: its list of results, or the exception it raised."""
        with self._lock:
            if self._success is not None:
                return  # already settled: an earlier chunk failed, or the pool terminated
            if ok:
                self._chunks[index] = value
                self._missing -= 1
                if self._missing:
                    return
                if self._single:
                    result = self._chunks[0][0]
                else:
                    result = [item for chunk in self._chunks for item in chunk]
            else:
                result = value
            self._success = ok
            self._chunks = None
        self._settle(ok, result)

    def _settle(self, ok: bool, value) -> None:
        self._success = ok
        self._value = value
        if ok and self._callback is not None:
            _call_quietly(self._callback, value, "callback")
        elif not ok and self._error_callback is not None:
            _call_quietly(self._error_callback, value, "error_callback")
        self._event.set()

    def _settled(self) -> bool:
        """Whether further chunk results would be ignored."""
        return self._success is not None

    def _abort(self, error: BaseException) -> None:
        self._set(-1, False, error)

    def __repr__(self):
        state = "pending" if not self.ready() else ("ok" if self._success else "failed")
        return f"<AsyncResult {state}>"


class IMapIterator:
    """The iterator ``imap`` (in order) and ``imap_unordered`` return.

    ``next(timeout)`` raises ``multiprocessing.TimeoutError`` when no result
    arrives in time. A chunk whose function raised yields that exception once,
    at the chunk's place; iteration can go on after it.

    Unlike the stdlib's, it reads its input only ``ahead`` chunks ahead of the
    consumer: the pool stops taking chunks while that many are taken and not
    yet fully consumed, and ``next()`` wakes it again. (A closed pool reads on
    regardless, so that ``close(); join()`` finishes, as with the stdlib.)

    >>> from skate.util.multiprocessing import Pool
    >>> with Pool(2) as pool:
    ...     list(pool.imap(abs, [-3, -4]))
    [3, 4]
    """

    def __init__(self, ordered: bool = True, ahead: int | None = None, wake=None):
        self._cond = threading.Condition()
        self._ordered = ordered
        # Most chunks taken and not fully consumed (None: no bound); wake() resumes taking.
        self._ahead = ahead
        self._wake = wake
        # Ordered: chunks that arrived before an earlier one, by index.
        self._early: dict[int, tuple[bool, object]] = {}
        # (ok, value, last item of its chunk) per item, in the order next() hands them out.
        self._items: collections.deque = collections.deque()
        # Ordered: index of the next chunk to move into _items.
        self._next_chunk = 0
        # Chunks moved into _items so far.
        self._delivered = 0
        # Chunks taken from the input / whose last item next() handed out.
        self._taken = 0
        self._consumed = 0
        # The pool found this iterator too far ahead and waits for next() to wake it.
        self._paused = False
        # Total number of chunks; None until the input is exhausted.
        self._length: int | None = None
        # Set by _abort: no further chunks are accepted.
        self._aborted = False

    def __iter__(self):
        return self

    def __next__(self):
        return self.next()

    def next(self, timeout: float | None = None):
        """The next result; StopIteration at the end; re-raises a chunk's exception."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                if self._length is not None and self._delivered >= self._length:
                    raise StopIteration
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"No imap result arrived within {timeout} s.")
                self._cond.wait(remaining)
            ok, value, last = self._items.popleft()
            self._consumed += last
            wake = self._paused and self._taken - self._consumed < self._ahead
            if wake:
                self._paused = False
        if wake:
            self._wake()
        if ok:
            return value
        raise value

    def _may_take(self) -> bool:
        """Whether the pool may take another chunk now; if not, next() will wake it."""
        with self._cond:
            if self._ahead is None or self._taken - self._consumed < self._ahead:
                self._taken += 1
                return True
            self._paused = True
            return False

    def _set(self, index: int, ok: bool, value) -> None:
        with self._cond:
            if self._aborted:
                return
            if not self._ordered:
                self._deliver(ok, value)
            else:
                self._early[index] = (ok, value)
                while self._next_chunk in self._early:
                    self._deliver(*self._early.pop(self._next_chunk))
                    self._next_chunk += 1
            self._cond.notify_all()

    def _deliver(self, ok: bool, value) -> None:
        if not ok:
            self._items.append((False, value, True))
        elif value:
            self._items.extend((True, item, False) for item in value)
            self._items[-1] = (True, value[-1], True)
        else:
            self._consumed += 1  # nothing to hand out
        self._delivered += 1

    def _set_length(self, num_chunks: int) -> None:
        """The input is exhausted: there are ``num_chunks`` chunks in all."""
        with self._cond:
            if not self._aborted:
                self._length = num_chunks
            self._cond.notify_all()

    def _settled(self) -> bool:
        """Whether further chunk results would be ignored (the iterator was aborted)."""
        return self._aborted

    def _abort(self, error: BaseException) -> None:
        with self._cond:
            if self._aborted or (self._length is not None and self._delivered >= self._length):
                return
            self._aborted = True
            self._items.append((False, error, True))
            self._length = self._delivered = 0
            self._cond.notify_all()

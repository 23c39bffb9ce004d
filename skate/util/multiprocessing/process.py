"""One process of a Pool: an actor that runs the initializer once, then chunks of calls.

The pool sends each chunk as one actor call, so a chunk of 1,000 items costs
one round trip. A chunk fails as a whole with the first exception its items
raise, as in the standard library, and Skate carries that exception (with the
remote traceback) back to the pool.
"""

from __future__ import annotations

import os

from skate.util.multiprocessing.namespace import SharedGlobals

__all__ = ["PoolProcess", "run_chunk"]

# How a chunk's items become calls: map -> f(x), star -> f(*x), apply -> f(*args, **kwds).
MODES = ("map", "star", "apply")


def run_chunk(func, items: list, mode: str) -> list:
    """Call ``func`` on each item of a chunk, the way ``mode`` says.

    >>> run_chunk(pow, [(2, 3), (3, 2)], "star")
    [8, 9]
    """
    if mode == "map":
        return [func(x) for x in items]
    if mode == "star":
        return [func(*x) for x in items]
    if mode == "apply":
        return [func(*args, **kwds) for args, kwds in items]
    raise ValueError(f"Unknown chunk mode {mode!r}; expected one of {MODES}.")


class PoolProcess:
    """The actor behind one Pool process (made remote by the pool).

    >>> p = PoolProcess(None, ())
    >>> p.run(abs, [-1, -2], "map")
    [1, 2]
    """

    def __init__(self, initializer, initargs):
        # The initializer's exception, re-raised by every call. Raising it from the
        # constructor would kill the actor and leave callers only an ActorDiedError;
        # this way the pool's caller gets the initializer's own exception type.
        self._init_error: Exception | None = None
        # Lets the initializer set globals that the mapped functions then read.
        self._globals = SharedGlobals()
        if initializer is not None:
            try:
                self._globals.adopt(initializer)(*initargs)
            except Exception as e:  # noqa: BLE001 - reported by ready() and run()
                self._init_error = e

    def ready(self) -> int:
        """The process id, once the initializer ran; raises the initializer's exception."""
        self._check_initialized()
        return os.getpid()

    def run(self, func, items: list, mode: str) -> list:
        """The results of one chunk, in order."""
        self._check_initialized()
        return run_chunk(self._globals.adopt(func), items, mode)

    def _check_initialized(self) -> None:
        if self._init_error is not None:
            raise self._init_error

"""An ObjectRef that code in this process completes later, from any thread or callback.

Libraries need refs for things that are not tasks -- a placement group
becoming ready, a reply from a long poll -- and must not write into the
runtime's object table themselves. A :class:`RefPromise` owns a fresh object
in this process; ``set_result`` or ``set_exception`` completes it once
(later calls are ignored), and whoever waits on ``promise.ref`` with
``skate.get`` / ``skate.wait`` / ``await`` wakes up.
"""

from __future__ import annotations

import threading

from skate.core import ids, runtime, serialization
from skate.core.object_ref import ObjectRef
from skate.core.ownership_codes import FAILED, READY
from skate.core.protocol import INLINE


class RefPromise:
    """A ref this process completes: ``set_result(value)`` or ``set_exception(error)``.

    >>> import skate, threading
    >>> from skate import RefPromise
    >>> skate.init(num_cpus=1)  # doctest: +SKIP
    >>> p = RefPromise()  # doctest: +SKIP
    >>> threading.Timer(0.1, p.set_result, (42,)).start()  # doctest: +SKIP
    >>> skate.get(p.ref)  # doctest: +SKIP
    42
    """

    __slots__ = ("ref", "_core", "_done", "_lock")

    def __init__(self):
        self._core = runtime.core()
        oid = ids.object_id(ids.task_id(), 0)
        self._core.objects.create_owned(oid)
        self.ref = ObjectRef(oid, self._core.address)
        self._done = False
        self._lock = threading.Lock()

    def set_result(self, value) -> bool:
        """Complete the ref with ``value`` (small values only: it stays in this process's
        memory). False if it was already completed."""
        meta = serialization.dumps_inband(value, "the promised value")
        return self._complete(READY, serialization.KIND_VALUE, meta)

    def set_exception(self, error: BaseException) -> bool:
        """Complete the ref with an error: ``skate.get`` raises it. False if already done."""
        if not isinstance(error, BaseException):
            raise TypeError(f"set_exception() takes an exception, got {type(error).__name__}.")
        meta = serialization.dumps_inband(error, "error")
        return self._complete(FAILED, serialization.KIND_ERROR, meta)

    def _complete(self, state: int, kind: int, meta: bytes) -> bool:
        with self._lock:
            if self._done:
                return False
            self._done = True
        self._core.objects.complete(self.ref.id, state, (INLINE, kind, meta, []), False)
        return True

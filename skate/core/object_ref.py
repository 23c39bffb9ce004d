"""``ObjectRef``: a name for a value that exists (or will) somewhere in the cluster."""

from __future__ import annotations

import concurrent.futures
from typing import Any

from skate.core import serialization

# The process's CoreWorker, set by connect(); None before. Any, not "CoreWorker | None":
# ObjectRef.future() calls it unguarded, as it always has.
_worker: Any = None


def set_worker(worker) -> None:
    global _worker
    _worker = worker


def current_worker():
    return _worker


class ObjectRef:
    """A reference to an object owned by some process (its ``owner``).

    Pass it to tasks, ``skate.get`` it, ``await`` it, or store it in other
    objects; the value lives as long as any reference does, anywhere.

    >>> import skate
    >>> ref = skate.put(42)
    >>> skate.get(ref)
    42
    """

    __slots__ = ("id", "owner", "__weakref__")

    def __init__(self, oid: bytes, owner: str, _counted: bool = False):
        self.id = oid
        self.owner = owner
        if not _counted and _worker is not None:
            _worker.objects.add_local(oid)

    def __del__(self):
        w = _worker
        if w is not None and w.connected:
            try:
                w.objects.remove_local(self.id)
            except Exception:  # interpreter shutdown
                pass

    def __reduce__(self):
        serialization.note_ref(self)
        return (_rebuild_ref, (self.id, self.owner))

    def binary(self) -> bytes:
        return self.id

    def hex(self) -> str:
        return self.id.hex()

    def task_id(self):
        return self.id[:12].hex()

    def __hash__(self):
        return hash(self.id)

    def __eq__(self, other):
        return isinstance(other, ObjectRef) and other.id == self.id

    def __repr__(self):
        return f"ObjectRef({self.id.hex()})"

    def future(self) -> concurrent.futures.Future:
        """A ``concurrent.futures.Future`` that completes with the value (or its error)."""
        return _worker.future_for(self)

    def __await__(self):
        import asyncio

        return _worker.asyncio_future_for(self, asyncio.get_running_loop()).__await__()

    def as_future(self):
        """An asyncio future for the value, on the running event loop."""
        import asyncio

        return _worker.asyncio_future_for(self, asyncio.get_running_loop())


def _rebuild_ref(oid: bytes, owner: str) -> ObjectRef:
    w = _worker
    ref = ObjectRef(oid, owner)
    if w is not None and owner != w.address:
        w.borrow(ref)
    return ref

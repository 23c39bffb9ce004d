"""What a process knows about objects: the ones it owns, and the ones it borrows.

Counting (after Ray's ownership design, simplified):

* every live :class:`ObjectRef` instance in this process counts once
  (``local``); task records and owned objects that contain refs simply hold
  ObjectRef instances, so "submitted" and "contained" counts need no extra
  bookkeeping;
* the owner also keeps the set of processes that borrow the ref. A process
  registers as a borrower *synchronously* when it first deserializes a ref it
  does not own, so an owner never frees an object a borrower is about to use;
  when its last local instance dies it deregisters (asynchronously).

An owned object is freed (its value dropped, its store copy released) when
``local`` is zero and no borrower is left.

The table does no I/O: freeing a store copy and telling an owner that we no
longer borrow are callbacks that only queue work (the housekeeper sends it),
because they run under the table's lock and from finalizers.

An owned object's transitions:

==============  =============================  ===========================================
from            event                          to
==============  =============================  ===========================================
(none)          ``create_owned``               PENDING (its task or put is under way)
PENDING         ``complete(READY|FAILED)``     READY / FAILED; waiters' callbacks run once
READY/FAILED    ``reset_pending``              PENDING (its task is retried or rebuilt)
any             last local ref and borrower    freed: value dropped, store copy released,
                gone (``remove_local``,        ``on_free`` called
                ``remove_borrower``)
READY/FAILED    ``complete`` with no ref left  freed at once
freed           ``complete`` (late result)     dropped (a stored copy is released)
==============  =============================  ===========================================

Invariants (``validate()`` checks them):

* ``_owned[oid]`` exists for every object this process created and has not freed;
  ``_counts[oid] >= 1`` exists exactly while a local instance exists;
* a PENDING object has no value; a READY or FAILED one has a value, no waiting
  callbacks, and ``in_store`` exactly when its value is a store entry;
* a READY or FAILED object is kept only while a local ref or a borrower holds it;
* this process never borrows what it owns, and never lists itself as a borrower.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from skate.core.ids import short_name
from skate.core.ownership_codes import FAILED, PENDING, READY  # noqa: F401
from skate.core.protocol import STORED


@dataclass
class OwnedObject:
    state: int = PENDING
    # value, when ready: ("i", kind, meta, bufs) inline, or ("s", kind) in the store
    value: tuple | None = None
    contained: list = field(default_factory=list)  # ObjectRef instances kept alive by this value
    borrowers: set = field(default_factory=set)
    callbacks: list = field(default_factory=list)  # fn(OwnedObject) when no longer pending
    in_store: bool = False
    task: object = None  # the task that makes it (for cancel)
    # called (under the table's lock, so it may only queue work) when the object is freed
    on_free: Callable[[], None] | None = None


class ObjectTable:
    """The objects this process owns and borrows (transitions and invariants: module doc).

    ``free_in_store(oid, node)`` and ``remove_borrow(owner, oid)`` are called under the
    table's lock and must only queue work. ``changed`` is notified on every completion,
    so ``wait`` scans instead of registering a callback per object.
    """

    def __init__(self, address: str, free_in_store, remove_borrow):
        self.address = address
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)  # notified whenever an object completes
        self._owned: dict[bytes, OwnedObject] = {}
        self._counts: dict[bytes, int] = {}
        self._borrowed: dict[bytes, str] = {}  # oid -> owner address, registered with owner
        self._free_in_store = free_in_store
        self._remove_borrow = remove_borrow

    # -- local instances ---------------------------------------------------
    def add_local(self, oid: bytes) -> None:
        with self.lock:
            self._counts[oid] = self._counts.get(oid, 0) + 1

    def remove_local(self, oid: bytes) -> None:
        with self.lock:
            n = self._counts.get(oid, 0) - 1
            if n > 0:
                self._counts[oid] = n
                return
            self._counts.pop(oid, None)
            obj = self._owned.get(oid)
            if obj is not None:
                if not obj.borrowers:
                    self._free(oid, obj)
                return
            owner = self._borrowed.pop(oid, None)
        if owner is not None:
            self._remove_borrow(owner, oid)

    def count(self, oid: bytes) -> int:
        return self._counts.get(oid, 0)

    # -- owned objects -----------------------------------------------------
    def create_owned(self, oid: bytes, task=None) -> OwnedObject:
        obj = OwnedObject(task=task)
        with self.lock:
            self._owned[oid] = obj
        return obj

    def owned(self, oid: bytes) -> OwnedObject | None:
        return self._owned.get(oid)

    def complete(self, oid: bytes, state: int, value: tuple, in_store: bool,
                 contained: Sequence = ()) -> None:
        """The object's value is known; wake whoever waits for it."""
        with self.lock:
            obj = self._owned.get(oid)
            if obj is None or obj.state != PENDING:
                if obj is None and in_store:
                    self._free_in_store(oid, value[2])  # nobody wants it any more
                return
            obj.state = state
            obj.value = value
            obj.in_store = in_store
            obj.contained = list(contained)
            callbacks, obj.callbacks = obj.callbacks, []
            if self._counts.get(oid, 0) == 0 and not obj.borrowers:
                self._free(oid, obj)
            self.changed.notify_all()
        for cb in callbacks:
            cb(obj)

    def reset_pending(self, oid: bytes) -> None:
        """Back to pending (its task is being retried)."""
        with self.lock:
            obj = self._owned.get(oid)
            if obj is not None:
                obj.state = PENDING
                obj.value = None
                obj.in_store = False

    def on_ready(self, oid: bytes, callback) -> bool:
        """Run ``callback(obj)`` once the owned object is no longer pending.

        Returns False if the object is unknown (already freed).
        """
        with self.lock:
            obj = self._owned.get(oid)
            if obj is None:
                return False
            if obj.state == PENDING:
                obj.callbacks.append(callback)
                return True
        callback(obj)
        return True

    def _free(self, oid: bytes, obj: OwnedObject) -> None:
        del self._owned[oid]
        if obj.in_store:
            assert obj.value is not None  # complete() sets value before in_store
            self._free_in_store(oid, obj.value[2])
        obj.contained = []
        if obj.on_free is not None:
            obj.on_free()

    # -- borrowing -----------------------------------------------------------
    def is_borrowed(self, oid: bytes) -> bool:
        return oid in self._borrowed

    def mark_borrowed(self, oid: bytes, owner: str) -> None:
        with self.lock:
            self._borrowed[oid] = owner

    def add_borrower(self, oid: bytes, who: str) -> bool:
        with self.lock:
            obj = self._owned.get(oid)
            if obj is None:
                return False
            if who != self.address:
                obj.borrowers.add(who)
            return True

    def remove_borrower(self, oid: bytes, who: str) -> None:
        with self.lock:
            obj = self._owned.get(oid)
            if obj is None:
                return
            obj.borrowers.discard(who)
            if not obj.borrowers and self._counts.get(oid, 0) == 0:
                self._free(oid, obj)

    def drop_borrower_everywhere(self, who: str) -> None:
        """A borrowing process died: forget it everywhere."""
        with self.lock:
            for oid, obj in list(self._owned.items()):
                if who in obj.borrowers:
                    self.remove_borrower(oid, who)

    def validate(self) -> None:
        """Raise AssertionError naming the first broken invariant (see the module docstring)."""
        with self.lock:
            for oid, n in self._counts.items():
                assert n >= 1, f"{oid.hex()}: local count {n}"
            for oid, obj in self._owned.items():
                name = oid.hex()
                assert obj.state in (PENDING, READY, FAILED), f"{name}: state {obj.state}"
                assert self.address not in obj.borrowers, f"{name}: we borrow our own object"
                assert oid not in self._borrowed, f"{name}: owned and borrowed"
                if obj.state == PENDING:
                    assert obj.value is None and not obj.in_store, f"{name}: pending with a value"
                    continue
                assert obj.value is not None, f"{name}: done without a value"
                assert not obj.callbacks, f"{name}: done with callbacks still waiting"
                assert obj.in_store == (obj.value[0] == STORED), f"{name}: in_store mismatch"
                assert self._counts.get(oid) or obj.borrowers, f"{name}: done, unreferenced, kept"

    def references(self) -> list[tuple]:
        """What this process refers to, for ``skate memory``: one row per object,
        ``(oid hex, owned, local refs, borrowers, state, in store, size or None, call site)``
        -- state "PENDING"/"READY"/"FAILED" for owned objects, "BORROWED" otherwise; the
        size is known here for inline values and store entries this process made."""
        names = {PENDING: "PENDING", READY: "READY", FAILED: "FAILED"}
        rows = []
        with self.lock:
            for oid, obj in self._owned.items():
                size = None
                value = obj.value
                if value is not None:
                    size = value[3] if obj.in_store else \
                        len(value[2]) + sum(len(b) for b in value[3])
                rows.append((oid.hex(), True, self._counts.get(oid, 0), len(obj.borrowers),
                             names.get(obj.state, "?"), obj.in_store, size,
                             _call_site(oid, obj)))
            for oid in self._borrowed:
                rows.append((oid.hex(), False, self._counts.get(oid, 0), 0, "BORROWED", False,
                             None, ""))
        return rows

    def stats(self) -> dict:
        return {"owned": len(self._owned), "local_refs": len(self._counts),
                "borrowed": len(self._borrowed)}


def _call_site(oid: bytes, obj: OwnedObject) -> str:
    """What made an owned object: its task's function, a put, or an actor call (an actor
    handle's token frees its actor: it alone has ``on_free``)."""
    name = getattr(obj.task, "fn_name", None)
    if name:
        return f"{short_name(name)}.remote()"
    if obj.on_free is not None:
        return "actor handle"
    return "skate.put()" if oid[-4:] == bytes(4) else "actor call"

"""The node manager's bookkeeping for the shared-memory arena.

An object's life: ``create`` (a block is reserved; the writer copies into it)
-> ``seal`` (readers may map it) -> ``free`` (its owner dropped the last
reference). Readers ``pin`` it while they hold zero-copy views; a pinned
block is never reused or spilled. When the arena is full, sealed unpinned
objects are spilled to files (least recently used first) and restored into
the arena on the next read; an object that cannot fit in the arena at all is
written straight to a file. So a put fails only when the disk is full too.

Not thread-safe: the node manager calls it under its lock.
"""

from __future__ import annotations

import logging
import mmap
import os
import time
from dataclasses import dataclass, field

from skate.core.leftovers import create_arena
from skate.core.object_store.allocator import Allocator

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    size: int
    owner: object  # key of the owner's connection; objects die with their owner
    offset: int | None = None  # in the arena, or None when in a file
    path: str | None = None  # spill file, when not in the arena
    sealed: bool = False
    deleted: bool = False
    pins: dict = field(default_factory=dict)  # reader key -> count
    last_used: float = 0.0
    secondary: bool = False  # a copy pulled from another node: dropped, not spilled
    copies: set = field(default_factory=set)  # nodes that pulled a copy from here
    writer: object = None  # key of the connection writing it, until sealed


class ObjectStore:
    def __init__(self, arena_path: str, capacity: int, spill_dir: str):
        self.arena_path = arena_path
        self.spill_dir = spill_dir
        os.makedirs(spill_dir, exist_ok=True)
        fd = create_arena(arena_path)  # locked while we live: see leftovers.py
        try:
            os.ftruncate(fd, capacity)
            self._mm = mmap.mmap(fd, capacity)
        except BaseException:
            os.close(fd)
            os.unlink(arena_path)
            raise
        self._fd = fd  # kept open: objects are sent to other nodes with sendfile from it
        self.alloc = Allocator(capacity)
        self.capacity = self.alloc.capacity
        self._touched = 0  # the arena's pages below this offset have been written to
        self.objects: dict[bytes, _Entry] = {}
        self.spilled_bytes_total = 0
        self.restored_bytes_total = 0
        self.spill_failures = 0  # spills that failed (a full disk): those objects stayed

    # -- writer side -----------------------------------------------------
    def create(self, oid: bytes, size: int, owner, secondary: bool = False,
               writer=None) -> tuple:
        """Reserve ``size`` bytes for ``oid``: ("arena", offset) or ("file", path) to write
        to, or ("exists",) when a sealed copy that readers pin is already here.

        The same id can be created again when a task is retried: its first worker died
        after ``create`` (unsealed: the dead writer's block is dropped) or after ``seal``
        but before its reply reached the owner (the copy nobody reads yet is replaced).
        """
        old = self.objects.get(oid)
        if old is not None:
            if old.pins and old.sealed and not old.deleted:
                return ("exists",)
            if old.pins:
                raise ValueError(f"object {oid.hex()} already exists in the store")
            self._drop(oid, old)
        e = _Entry(size=size, owner=owner, last_used=time.monotonic(), secondary=secondary,
                   writer=writer)
        off = self._reserve_warm(size) if secondary else self._reserve(size)
        if off is None:
            e.path = self._spill_path(oid)
            self.objects[oid] = e
            return ("file", e.path)
        e.offset = off
        self.objects[oid] = e
        return ("arena", off)

    def seal(self, oid: bytes) -> None:
        e = self.objects.get(oid)
        if e is not None:
            e.sealed = True
            e.writer = None

    def abort(self, oid: bytes) -> None:
        """The writer failed half way: drop the reservation."""
        e = self.objects.pop(oid, None)
        if e is not None:
            self._release_space(e)

    # -- reader side -----------------------------------------------------
    def status(self, oid: bytes) -> str:
        e = self.objects.get(oid)
        if e is None or e.deleted:
            return "missing"
        return "sealed" if e.sealed else "unsealed"

    def get(self, oid: bytes, reader) -> tuple | None:
        """Pin and locate a sealed object: ("arena", offset, size) or ("file", path, size)."""
        e = self.objects.get(oid)
        if e is None or e.deleted or not e.sealed:
            return None
        e.last_used = time.monotonic()
        if e.offset is None:
            self._restore(oid, e)
        if e.offset is None:
            return ("file", e.path, e.size)
        e.pins[reader] = e.pins.get(reader, 0) + 1
        return ("arena", e.offset, e.size)

    def write_into(self, oid: bytes, pos: int, data) -> None:
        """Write part of an object being received (not yet sealed)."""
        e = self.objects[oid]
        if e.offset is not None:
            self._mm[e.offset + pos:e.offset + pos + len(data)] = data
        else:
            assert e.path is not None  # an object not in the arena lives in its file
            with open(e.path, "r+b" if os.path.exists(e.path) else "wb") as f:
                f.seek(pos)
                f.write(data)

    def receive_view(self, oid: bytes, reader) -> memoryview | None:
        """A writable view of an object being received (created, not sealed), pinned for
        ``reader`` so that a ``free`` meanwhile cannot hand its block to another object;
        None when the object goes to a file (it did not fit the arena)."""
        e = self.objects[oid]
        e.pins[reader] = e.pins.get(reader, 0) + 1
        if e.offset is None:
            return None
        return memoryview(self._mm)[e.offset:e.offset + e.size]

    def open_for_stream(self, oid: bytes, reader):
        """``(fd, offset, size, close_fd)`` of a sealed object for ``sendfile``, pinned for
        ``reader``; None if absent. ``close_fd`` is True for a spill file's own fd."""
        loc = self.get(oid, reader)
        if loc is None:
            return None
        if loc[0] == "arena":
            return self._fd, loc[1], loc[2], False
        return os.open(loc[1], os.O_RDONLY), 0, loc[2], True

    def open_for_send(self, oid: bytes, reader):
        """``(memoryview, size)`` of a sealed object, pinned for ``reader``; None if absent."""
        loc = self.get(oid, reader)
        if loc is None:
            return None
        if loc[0] == "arena":
            return memoryview(self._mm)[loc[1]:loc[1] + loc[2]]
        with open(loc[1], "rb") as f:
            return memoryview(f.read())

    def release(self, oid: bytes, reader) -> None:
        e = self.objects.get(oid)
        if e is None:
            return
        n = e.pins.get(reader, 0) - 1
        if n > 0:
            e.pins[reader] = n
        else:
            e.pins.pop(reader, None)
        if e.deleted and not e.pins:
            self._drop(oid, e)

    def release_reader(self, reader) -> list:
        """``reader``'s connection closed: unpin what it pinned and drop what it was still
        writing (a writer killed between create and seal). Returns the dropped ids."""
        aborted = []
        for oid, e in list(self.objects.items()):
            if reader in e.pins:
                del e.pins[reader]
                if e.deleted and not e.pins:
                    self._drop(oid, e)
                    continue
            if e.writer == reader and not e.sealed:
                self.abort(oid)
                aborted.append(oid)
        return aborted

    # -- owner side ------------------------------------------------------
    def add_copy(self, oid: bytes, node: str) -> None:
        """``node`` pulled (or is pulling) a copy: it is told when the object is freed."""
        e = self.objects.get(oid)
        if e is not None and node:
            e.copies.add(node)

    def free(self, oid: bytes) -> set:
        """The owner is done with ``oid``; returns the nodes holding copies pulled from here
        (they should drop them too: an object is freed everywhere)."""
        e = self.objects.get(oid)
        if e is None or e.deleted:
            return set()
        e.deleted = True
        copies, e.copies = e.copies, set()
        if not e.pins:
            self._drop(oid, e)
        return copies

    def free_owner(self, owner) -> dict:
        """Free everything ``owner`` made; returns {node: [oid, ...]} of copies elsewhere."""
        copies: dict = {}
        for oid, e in list(self.objects.items()):
            if e.owner == owner:
                for node in self.free(oid):
                    copies.setdefault(node, []).append(oid)
        return copies

    # -- space -----------------------------------------------------------
    def _reserve(self, size: int) -> int | None:
        if size > self.capacity:
            return None
        off = self.alloc.alloc(size)
        while off is None and self._spill_one():
            off = self.alloc.alloc(size)
        if off is not None:
            self._touched = max(self._touched, off + size)
        return off

    def _reserve_warm(self, size: int) -> int | None:
        """For a copy pulled from another node: rather than pages the arena never touched
        (a copy into them runs at about half speed here: the kernel must find and zero
        each page), take the place of other pulled copies nobody reads now. They are a
        cache; a node that needs one again pulls it again."""
        touched = self._touched
        off = self._reserve(size)
        while off is not None and off + size > touched:
            victims = [(e.last_used, oid) for oid, e in self.objects.items()
                       if e.secondary and e.sealed and not e.pins and e.offset is not None]
            if not victims:
                break
            self.alloc.free(off)
            oid = min(victims)[1]
            self._drop(oid, self.objects[oid])
            off = self._reserve(size)
        return off

    def _spill_one(self) -> bool:
        victims = [(not e.secondary, e.last_used, oid) for oid, e in self.objects.items()
                   if e.offset is not None and e.sealed and not e.pins and not e.deleted]
        if not victims:
            return False
        _, _, oid = min(victims)  # copies pulled from elsewhere go first: they are just dropped
        e = self.objects[oid]
        if e.secondary:
            self._drop(oid, e)
            return True
        path = self._spill_path(oid)
        assert e.offset is not None  # victims are all in the arena
        try:
            with open(path, "wb") as f:
                f.write(self._mm[e.offset:e.offset + e.size])
        except OSError as err:  # a full disk: the object stays in memory, untouched
            try:
                os.unlink(path)
            except OSError:
                pass
            self.spill_failures += 1
            log.warning("spilling %s failed (%s): the object stays in memory", oid.hex(), err)
            return False
        self.alloc.free(e.offset)
        e.offset = None
        e.path = path
        self.spilled_bytes_total += e.size
        log.debug("spilled %s (%d bytes)", oid.hex(), e.size)
        return True

    def _restore(self, oid: bytes, e: _Entry) -> None:
        """Back into the arena if room can be made; else readers read the file."""
        off = self._reserve(e.size)
        if off is None:
            return  # stays in its file; readers read it from there
        assert e.path is not None  # only objects spilled to a file are restored
        with open(e.path, "rb") as f:
            f.readinto(memoryview(self._mm)[off:off + e.size])
        os.unlink(e.path)
        e.path = None
        e.offset = off
        self.restored_bytes_total += e.size

    def _spill_path(self, oid: bytes) -> str:
        return os.path.join(self.spill_dir, oid.hex())

    def _release_space(self, e: _Entry) -> None:
        if e.offset is not None:
            self.alloc.free(e.offset)
            e.offset = None
        if e.path is not None:
            try:
                os.unlink(e.path)
            except FileNotFoundError:
                pass
            e.path = None

    def _drop(self, oid: bytes, e: _Entry) -> None:
        self.objects.pop(oid, None)
        self._release_space(e)

    def stats(self) -> dict:
        in_arena = sum(1 for e in self.objects.values() if e.offset is not None)
        return {
            "capacity": self.capacity,
            "used": self.alloc.used_bytes,
            "num_objects": len(self.objects),
            "num_in_memory": in_arena,
            "num_spilled": len(self.objects) - in_arena,
            "spilled_bytes_total": self.spilled_bytes_total,
            "restored_bytes_total": self.restored_bytes_total,
            "spill_failures": self.spill_failures,
        }

    def close(self) -> None:
        for e in self.objects.values():
            if e.path:
                try:
                    os.unlink(e.path)
                except FileNotFoundError:
                    pass
        self.objects.clear()
        try:
            self._mm.close()
        except BufferError:
            pass
        try:
            os.close(self._fd)
        except OSError:
            pass
        try:
            os.unlink(self.arena_path)
        except FileNotFoundError:
            pass

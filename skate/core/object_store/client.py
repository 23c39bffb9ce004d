"""A process's access to its node's object store: write large objects, map them back.

Writes go through one mapping of the whole arena that lives as long as the
process, so a block that is reused is already mapped (no page faults).
Reads map just the object's pages read-only; values built on them (numpy
arrays) are zero-copy read-only views, and the object stays pinned until the
last of them is garbage collected (a finalizer on the mapping unpins it).
"""

from __future__ import annotations

import collections
import errno
import mmap
import os
import sys
import threading
import weakref

from skate.core import kill_points
from skate.core.object_store import layout
from skate.exceptions import OutOfDiskError

_POPULATE = getattr(mmap, "MAP_POPULATE", 0)


class StoreClient:
    def __init__(self, arena_path: str, capacity: int, conn, node_id: str = "", remote_free=None):
        self.conn = conn  # a NodeManagerClient: the node manager keeps the books
        self.node_id = node_id
        self.remote_free = remote_free  # fn(node_id, [oid]) for copies on other nodes
        self._fd = os.open(arena_path, os.O_RDWR)
        self._capacity = capacity
        self._arena: mmap.mmap | None = None
        self._arena_view: memoryview | None = None
        self._readonly: mmap.mmap | None = None
        self._releases: collections.deque = collections.deque()
        self._frees: collections.deque = collections.deque()
        self._lock = threading.Lock()

    def _writable(self) -> memoryview:
        if self._arena_view is None:
            with self._lock:
                if self._arena_view is None:
                    self._arena = mmap.mmap(self._fd, self._capacity)
                    self._arena_view = memoryview(self._arena)
        return self._arena_view

    def put(self, oid: bytes, kind: int, meta: bytes, buffers: list, owner: str) -> int:
        """Store a serialized object under ``oid``; returns its size in bytes."""
        self.flush()
        size = layout.total_size(meta, buffers)
        where = self.conn.store_create(oid, size, owner)
        if where[0] == "exists":  # a retried task's first attempt stored it; readers hold it
            return size
        try:
            if where[0] == "arena":
                off = where[1]
                layout.write(self._writable()[off:off + size], kind, meta, buffers)
            else:
                _write_file(where[1], size, kind, meta, buffers)
        except OSError as e:
            self.conn.store_abort(oid)  # drops the entry and removes the partial file
            if e.errno == errno.ENOSPC:
                raise OutOfDiskError(
                    f"Could not store an object of {size} bytes: the object store is full and "
                    f"the disk of its spill folder ({os.path.dirname(where[1])}) has no space "
                    f"left. Objects stored before are intact. Free some (drop their "
                    f"ObjectRefs), start Skate with more object_store_memory, or free disk "
                    f"space.") from None
            raise
        except BaseException:
            self.conn.store_abort(oid)
            raise
        if kill_points.ARMED:
            kill_points.reached("seal")
        self.conn.store_seal(oid)
        return size

    def get(self, oid: bytes, node_hint: str | None = None, timeout: float | None = None):
        """``(kind, meta, buffers)`` of a sealed object, or None if it cannot be found.

        ``node_hint`` names the node holding the primary copy; the local node
        manager pulls a copy from there when it has none.
        """
        self.flush()
        where = self.conn.store_get(oid, node_hint, timeout=timeout)
        if where is None:
            return None
        if where[0] == "file":
            with open(where[1], "rb") as f:
                data = memoryview(f.read()).toreadonly()
            return layout.read(data)
        _, off, size = where
        np = sys.modules.get("numpy")
        if np is not None:
            # Views into one read-only mapping of the arena: two gets of an object
            # share memory, as in Ray. The per-get ndarray's finalizer unpins.
            if self._readonly is None:
                with self._lock:
                    if self._readonly is None:
                        self._readonly = mmap.mmap(self._fd, self._capacity, prot=mmap.PROT_READ)
            base = np.frombuffer(self._readonly, dtype=np.uint8, count=size, offset=off)
            weakref.finalize(base, self._releases.append, oid)
            return layout.read(memoryview(base))
        try:
            mm = mmap.mmap(self._fd, size, flags=mmap.MAP_SHARED | _POPULATE,
                           prot=mmap.PROT_READ, offset=off)
        except BaseException:
            self._releases.append(oid)
            raise
        weakref.finalize(mm, self._releases.append, oid)
        return layout.read(memoryview(mm))

    def free_later(self, oid: bytes, node: str | None = None) -> None:
        """Called from finalizers: queue a free; it is sent with the next store call."""
        self._frees.append((oid, node))

    def flush(self) -> None:
        """Send queued unpins and frees (they are queued because finalizers cannot send)."""
        if not self._releases and not self._frees:
            return
        rel: list[bytes] = []
        frees: list[bytes] = []
        remote: dict[str, list[bytes]] = {}
        while self._releases:
            rel.append(self._releases.popleft())
        while self._frees:
            oid, node = self._frees.popleft()
            if node is None or node == self.node_id:
                frees.append(oid)
            else:
                remote.setdefault(node, []).append(oid)
        self.conn.store_release_free(rel, frees)
        for node, oids in remote.items():  # primary copies on other nodes
            if self.remote_free is not None:
                self.remote_free(node, oids)

    def close(self) -> None:
        try:
            os.close(self._fd)
        except OSError:
            pass


def _write_file(path: str, size: int, kind: int, meta: bytes, buffers: list) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        # the blocks first: writing into a mapping of a sparse file on a full disk would
        # kill this process with SIGBUS; this fails with ENOSPC instead
        os.posix_fallocate(fd, 0, size)
        with mmap.mmap(fd, size) as mm:
            view = memoryview(mm)
            try:
                layout.write(view, kind, meta, buffers)
            finally:
                view.release()
    finally:
        os.close(fd)

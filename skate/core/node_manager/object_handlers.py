"""The node manager's object-store requests: create/seal/get, pulls from other nodes,
sends to them, frees (the store's books themselves are ``object_store/store.py``).

A part of :class:`~skate.core.node_manager.server.NodeManager`, kept in its own
module: the methods use the node manager's ``lock`` (every ``h_`` handler runs
under it), ``store``, ``store_waiters``, ``pulling``, ``cluster_view``,
``transfer_client``, ``_peer_nodes`` / ``_peer_nodes_lock``, ``_senders``,
``gcs`` and ``cfg``.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from typing import TYPE_CHECKING

from skate.core import rpc
from skate.core.node_manager.client import NodeManagerClient

if TYPE_CHECKING:
    from skate.core.config import NodeConfig
    from skate.core.control_store.client import ControlStoreClient
    from skate.core.object_store.store import ObjectStore
    from skate.core.object_store.transfer import TransferClient

log = logging.getLogger("skate.node_manager")


class ObjectStoreHandlers:
    """Object-store requests of a node manager (see the module docstring)."""

    # provided by NodeManager
    lock: threading.RLock
    store: ObjectStore
    store_waiters: dict
    pulling: set
    cluster_view: dict
    transfer_client: TransferClient
    _peer_nodes: dict
    _peer_nodes_lock: threading.Lock
    _senders: itertools.count
    gcs: ControlStoreClient
    cfg: NodeConfig

    def h_store_create(self, conn, rid, oid, size, owner):
        return self.store.create(oid, size, owner, writer=id(conn))

    def h_store_seal(self, conn, rid, oid):
        self._seal(oid)

    def h_store_abort(self, conn, rid, oid):
        self._abort(oid)

    def _seal(self, oid: bytes) -> None:
        """The object is complete (written by a process here, or pulled): readers map it."""
        self.store.seal(oid)
        for c, r in self.store_waiters.pop(oid, []):
            c.reply(r, self.store.get(oid, id(c)))

    def _abort(self, oid: bytes) -> None:
        """The object will not be completed here: its readers learn it is not here."""
        self.store.abort(oid)
        for c, r in self.store_waiters.pop(oid, []):
            c.reply(r, None)

    def h_store_get(self, conn, rid, oid, node_hint=None):
        status = self.store.status(oid)
        if status == "unsealed":
            self.store_waiters.setdefault(oid, []).append((conn, rid))
            return rpc.DEFER
        if status == "missing" and node_hint and node_hint != self.cfg.node_id:
            # the object lives on another node: pull a copy here, answer when sealed
            self.store_waiters.setdefault(oid, []).append((conn, rid))
            if oid not in self.pulling:
                self.pulling.add(oid)
                threading.Thread(target=self._pull, args=(oid, node_hint), daemon=True,
                                 name="skate-pull").start()
            return rpc.DEFER
        return self.store.get(oid, id(conn))

    def _pull(self, oid: bytes, node: str) -> None:
        ok = False
        key = f"pull-{next(self._senders)}"
        views = []
        try:
            address, stream_address = self._transfer_addresses(node)

            def begin(size):
                with self.lock:
                    self.store.create(oid, size, owner=None, secondary=True)
                    view = self.store.receive_view(oid, key)  # pinned until sealed/aborted
                views.append(view)
                return view, lambda pos, data: self.store.write_into(oid, pos, data)

            self.transfer_client.pull(address, oid, begin, stream_address=stream_address)
            ok = True
        except Exception as e:  # any failure: the readers learn the object is not here
            log.warning("pulling %s from node %s failed: %s", oid.hex(), node, e)
        for view in views:
            if view is not None:
                view.release()
        with self.lock:
            self.pulling.discard(oid)
            if ok:
                self._seal(oid)
                self.store.release(oid, key)
            else:
                self._abort(oid)

    def _transfer_addresses(self, node: str) -> tuple:
        """(gRPC transfer address, plain-socket stream address or "") of ``node``."""
        view = self.cluster_view.get(node)
        if view is None:  # joined since our last heartbeat: ask the control store
            for info in self.gcs.get_nodes(timeout=10):
                if info["NodeID"] == node and info["Alive"]:
                    return info["transfer_address"], info.get("stream_address", "")
        elif view.alive and view.transfer_address:
            return view.transfer_address, view.stream_address
        raise ConnectionError(f"node {node} is not alive")

    def _open_for_send(self, oid: bytes, node: str = ""):
        key = f"transfer-{next(self._senders)}"
        with self.lock:
            view = self.store.open_for_send(oid, key)
            if view is not None:
                self.store.add_copy(oid, node)
        if view is None:
            return None

        def release():
            with self.lock:
                self.store.release(oid, key)

        return view, release

    def _open_for_stream(self, oid: bytes, node: str):
        key = f"stream-{next(self._senders)}"
        with self.lock:
            opened = self.store.open_for_stream(oid, key)
            if opened is not None:
                self.store.add_copy(oid, node)
        if opened is None:
            return None
        fd, offset, size, close_fd = opened

        def release():
            if close_fd:
                os.close(fd)
            with self.lock:
                self.store.release(oid, key)

        return fd, offset, size, release

    def h_store_release_free(self, conn, rid, releases, frees):
        for oid in releases:
            self.store.release(oid, id(conn))
        copies: dict = {}
        for oid in frees:
            for node in self.store.free(oid):
                copies.setdefault(node, []).append(oid)
        self._free_copies(copies)

    def _free_copies(self, copies: dict) -> None:
        """Tell the nodes that pulled copies of freed objects to drop them (an object is
        freed everywhere), so their arenas reuse those already-mapped pages."""
        copies.pop(self.cfg.node_id, None)
        if copies:
            threading.Thread(target=self._send_frees, args=(copies,), daemon=True,
                             name="skate-free-copies").start()

    def _send_frees(self, copies: dict) -> None:
        with self._peer_nodes_lock:
            self._send_frees_locked(copies)

    def _send_frees_locked(self, copies: dict) -> None:
        for node, oids in copies.items():
            view = self.cluster_view.get(node)
            if view is None or not view.alive:
                continue  # a dead node's copies went with it
            try:
                conn = self._peer_nodes.get(node)
                if conn is None or conn.closed:
                    conn = self._peer_nodes[node] = rpc.connect(view.address,
                                                                name="raylet->raylet")
                NodeManagerClient(conn).store_release_free([], oids)
            except OSError as e:
                log.info("could not tell node %s to drop %d copies: %s", node, len(oids), e)

    def h_store_stats(self, conn, rid):
        return self.store.stats()

    def h_store_objects(self, conn, rid):
        """Every object here: id, size, readers pinning it, freed-by-owner, pulled copy."""
        return [(oid.hex(), e.size, sum(e.pins.values()), e.deleted, e.secondary)
                for oid, e in self.store.objects.items()]

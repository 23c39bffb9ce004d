"""Calls to a node manager, one typed method per RPC (handlers: ``server.py`` and
``object_handlers.py``)."""

from __future__ import annotations

from typing import Any, Callable

from skate.core.rpc import Client
from skate.core.rpc import methods as m

Callback = Callable[[bool, Any], None]


class NodeManagerClient(Client):
    """What workers, drivers, the control store and other node managers ask a node manager.

    >>> # inside a running cluster: NodeManagerClient(rpc.connect(address)).resources()
    """

    __slots__ = ()

    # -- registration ------------------------------------------------------------------
    def register_worker(self, worker_id: str, pid: int, address: str) -> dict:
        return self.conn.call(m.REGISTER_WORKER, worker_id, pid, address)

    def register_driver(self, address: str, log_to_driver: bool, worker_id: str,
                        pid: int) -> dict:
        return self.conn.call(m.REGISTER_DRIVER, address, log_to_driver, worker_id, pid)

    def hello_control_store(self) -> bool:
        """One-way, the control store's first word: its leases outlive its connection."""
        return self.conn.notify(m.HELLO_CONTROL_STORE)

    def set_worker_name(self, name: str) -> bool:
        """One-way: the worker now runs an actor of this class (its log prefix)."""
        return self.conn.notify(m.SET_WORKER_NAME, name)

    # -- leases ------------------------------------------------------------------------
    def request_lease(self, request: dict, env_vars: dict | None, dedicated: bool,
                      strategy: Any, preferred_node: str | None, spilled: bool,
                      callback: Callback, tag: Any = None, retriable: bool = True) -> None:
        """Ask for a worker; the reply is a protocol.LeaseGrant, a protocol.Spill, None
        (the request was cancelled) or an error (unschedulable, workers cannot start).
        ``tag`` names the request for ``cancel_tagged_lease``; ``retriable``: its tasks are
        retried if the worker dies (the memory monitor kills such workers first)."""
        if tag is None and retriable:
            self.conn.call_async(m.REQUEST_LEASE, request, env_vars, dedicated, strategy,
                                 preferred_node, spilled, callback=callback)
        else:
            self.conn.call_async(m.REQUEST_LEASE, request, env_vars, dedicated, strategy,
                                 preferred_node, spilled, tag, retriable, callback=callback)

    def cancel_tagged_lease(self, tag: Any) -> bool:
        """One-way: drop this connection's unanswered request of ``tag``."""
        return self.conn.notify(m.CANCEL_TAGGED_LEASE, tag)

    def cancel_lease_request(self, count: int) -> int:
        return self.conn.call(m.CANCEL_LEASE_REQUEST, count)

    def return_lease(self, lease_id: int, kill: bool = False) -> bool:
        """One-way; ``kill`` stops the worker instead of keeping it for the next lease."""
        return self.conn.notify(m.RETURN_LEASE, lease_id, kill)

    def blocked(self, blocked: bool) -> bool:
        """One-way: this leased worker waits in get/wait (True) or resumes (False)."""
        return self.conn.notify(m.BLOCKED, blocked)

    def prepare_bundle(self, pg_hex: str, index: int, bundle: dict,
                       timeout: float | None = None) -> bool:
        return self.conn.call(m.PREPARE_BUNDLE, pg_hex, index, bundle, timeout=timeout)

    def return_bundle(self, pg_hex: str, index: int) -> bool:
        return self.conn.notify(m.RETURN_BUNDLE, pg_hex, index)

    def kill_worker(self, worker_id: str) -> bool:
        return self.conn.notify(m.KILL_WORKER, worker_id)

    def worker_exit_cause(self, worker_id: str,
                          timeout: float | None = None) -> tuple[str, str, bool] | None:
        """Why this node killed ``worker_id`` on its own: ``(kind, message, retry)``, kind
        ``"OUT_OF_MEMORY"`` (the memory monitor; ``retry``: the task may be retried), or
        None when it did not (it crashed, or was never known here). Asked only after a
        worker was lost."""
        return self.conn.call(m.WORKER_EXIT_CAUSE, worker_id, timeout=timeout)

    # -- info --------------------------------------------------------------------------
    def resources(self, timeout: float | None = None) -> tuple[dict, dict]:
        """(total, available) on this node."""
        return self.conn.call(m.RESOURCES, timeout=timeout)

    def node_info(self, timeout: float | None = None) -> dict:
        return self.conn.call(m.NODE_INFO, timeout=timeout)

    def scheduler_state(self, timeout: float | None = None) -> dict:
        return self.conn.call(m.SCHEDULER_STATE, timeout=timeout)

    # -- what the state API asks (introspection.py) --------------------------------------
    def list_workers(self, timeout: float | None = None) -> list:
        return self.conn.call(m.LIST_WORKERS, timeout=timeout)

    def list_logs(self, timeout: float | None = None) -> list:
        """[(file name, size)] of this node's log folder."""
        return self.conn.call(m.LIST_LOGS, timeout=timeout)

    def read_log(self, name: str, offset: int, length: int,
                 timeout: float | None = None) -> tuple:
        """(data, next offset, file size); a negative offset counts from the end."""
        return self.conn.call(m.READ_LOG, name, offset, length, timeout=timeout)

    def demand(self, timeout: float | None = None) -> list:
        """Lease requests waiting on this node: [(resource shape, count, infeasible)]."""
        return self.conn.call(m.DEMAND, timeout=timeout)

    def list_objects(self, timeout: float | None = None) -> dict:
        """The references this node's processes hold and its store's entries."""
        return self.conn.call(m.LIST_OBJECTS, timeout=timeout)

    def flush_logs(self, timeout: float | None = None) -> bool:
        return self.conn.call(m.FLUSH_LOGS, timeout=timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        return self.conn.call(m.SHUTDOWN, timeout=timeout)

    # -- the object store's books (object_handlers.py) -------------------------------------
    def store_create(self, oid: bytes, size: int, owner: str) -> tuple:
        """Where to write: ("arena", offset), ("file", path) or ("exists",)."""
        return self.conn.call(m.STORE_CREATE, oid, size, owner)

    def store_seal(self, oid: bytes) -> bool:
        return self.conn.notify(m.STORE_SEAL, oid)

    def store_abort(self, oid: bytes) -> bool:
        return self.conn.notify(m.STORE_ABORT, oid)

    def store_get(self, oid: bytes, node_hint: str | None,
                  timeout: float | None = None) -> tuple | None:
        """Where to read (pinned for the reader): ("arena", offset, size), ("file", path), or
        None when no copy can be found."""
        return self.conn.call(m.STORE_GET, oid, node_hint, timeout=timeout)

    def store_release_free(self, releases: list, frees: list) -> bool:
        """One-way: unpin ``releases`` (read by this process), free ``frees`` (owned)."""
        return self.conn.notify(m.STORE_RELEASE_FREE, releases, frees)

    def store_stats(self, timeout: float | None = None) -> dict:
        return self.conn.call(m.STORE_STATS, timeout=timeout)

    def store_objects(self, timeout: float | None = None) -> list:
        return self.conn.call(m.STORE_OBJECTS, timeout=timeout)

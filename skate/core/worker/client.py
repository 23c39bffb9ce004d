"""Calls to a worker or driver, one typed method per RPC (handlers: ``core_worker.py``
for what every process answers as an owner, ``executor.py`` for running work)."""

from __future__ import annotations

from typing import Any, Callable

from skate.core.rpc import Client
from skate.core.rpc import methods as m

Callback = Callable[[bool, Any], None]


class WorkerClient(Client):
    """What other processes ask a worker (or a driver, which owns objects too).

    >>> # inside a running cluster: WorkerClient(core.peer(owner)).get_object(oid)
    """

    __slots__ = ()

    # -- as an owner (core_worker.py) --------------------------------------------------
    def get_object(self, oid: bytes, timeout: float | None = None) -> tuple:
        """The object's value entry once it is ready, or protocol.LOST_ENTRY."""
        return self.conn.call(m.GET_OBJECT, oid, timeout=timeout)

    def wait_object(self, oid: bytes, callback: Callback) -> None:
        """Answered with the object's value entry once it is ready."""
        self.conn.call_async(m.WAIT_OBJECT, oid, callback=callback)

    def add_borrower(self, oid: bytes, who: str, timeout: float | None = None) -> bool:
        return self.conn.call(m.ADD_BORROWER, oid, who, timeout=timeout)

    def remove_borrowers(self, items: list) -> bool:
        """One-way: [(oid, borrower address)] no longer held."""
        return self.conn.notify(m.REMOVE_BORROWERS, items)

    def cancel_owned_task(self, task_id: bytes, force: bool, recursive: bool,
                          timeout: float | None = None) -> bool:
        return self.conn.call(m.CANCEL_OWNED_TASK, task_id, force, recursive, timeout=timeout)

    def generator_item(self, task_id: bytes, index: int, entry: tuple) -> bool:
        """One-way: a streaming task yielded its ``index``-th value."""
        return self.conn.notify(m.GENERATOR_ITEM, task_id, index, entry)

    def worker_output(self, pid: int, name: str, ip: str, stream: str, lines: list) -> bool:
        """One-way: lines a worker printed (to a driver that asked for them)."""
        return self.conn.notify(m.WORKER_OUTPUT, pid, name, ip, stream, lines)

    def object_refs(self, callback: Callback) -> None:
        """The references this process holds: rows of ``ObjectTable.references()``."""
        self.conn.call_async(m.OBJECT_REFS, callback=callback)

    def warning(self, message: str) -> bool:
        """One-way: a message the user should see (printed by a driver)."""
        return self.conn.notify(m.WARNING, message)

    # -- running work (executor.py) ----------------------------------------------------------
    def push_task(self, spec: tuple, callback: Callback) -> None:
        """Run a protocol.TaskSpec (sent as a plain tuple); the reply is a PushReply,
        BOUNCED or NEED_FUNCTION."""
        self.conn.call_async(m.PUSH_TASK, spec, callback=callback)

    def actor_call(self, spec: tuple, callback: Callback) -> None:
        """Run a protocol.ActorCallSpec; the reply is a PushReply."""
        self.conn.call_async(m.ACTOR_CALL, spec, callback=callback)

    def start_actor(self, start: tuple, callback: Callback) -> None:
        """Construct the actor of a protocol.ActorStart; the reply is the worker's pid."""
        self.conn.call_async(m.START_ACTOR, start, callback=callback)

    def cancel_task(self, task_id: bytes, recursive: bool) -> bool:
        return self.conn.notify(m.CANCEL_TASK, task_id, recursive)

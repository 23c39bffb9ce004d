"""Sending calls to one actor, in order, across restarts.

Calls go straight to the actor's worker over one connection, so they arrive
in the order this process made them. The actor's address comes from the
control store, watched with a long poll (``wait_actor``). When the
connection breaks, in-flight calls are retried on the restarted actor if
``max_task_retries`` allows, otherwise they fail with ActorDiedError; calls
made meanwhile wait until the control store says ALIVE (send) or DEAD (fail).

A call's top-level ObjectRef arguments are resolved here before it is sent
(as in Ray), so a call waiting for an argument never occupies the actor:
calls from other callers run meanwhile. Calls from this caller stay in
order: one waiting for its arguments holds back the ones made after it.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from skate import exceptions as exc
from skate.core import rpc
from skate.core.protocol import FAILED, FINISHED, SUBMITTED_TO_WORKER, ActorState
from skate.core.worker.client import WorkerClient

log = logging.getLogger(__name__)

# How long calls sent to an actor the control store reports dead wait for their replies
# on a connection that stays open (see ActorSubmitter._die).
DEAD_GRACE_S = 5.0


@dataclass
class ActorCall:
    task_id: bytes
    method: str
    args_blob: bytes
    deps: list | None  # resolved entries for the worker; None until ``refs`` are resolved
    held: list
    return_ids: list
    retries_left: int
    seq: int = 0
    refs: list | None = None  # top-level ObjectRef arguments, resolved before sending
    conn: Any = None  # the connection it was sent on (its closing settles the call)
    error: BaseException | None = None  # an argument failed: the call fails unsent


class ActorSubmitter:
    """Calls from this process to one actor (see the module docstring).

    State, under ``lock``: ``queue`` holds calls not sent yet, in order (waiting for
    their arguments, a connection, or ALIVE); ``inflight`` the calls sent and not
    answered, each on the connection in its ``conn`` (the current one, or an older one
    not seen closing yet); ``_awaiting_verdict`` calls the actor's dead process never
    answered, until the control store says why it died (at most ``DEAD_GRACE_S``). A
    call is in at most one of the three, and in none once its returns are completed or
    failed. Once ``state`` is DEAD, ``queue`` and ``_awaiting_verdict`` are empty and
    nothing is sent again; ``inflight`` empties as its connections close.
    """

    def __init__(self, core, actor_id: bytes, max_task_retries: int, class_name: str,
                 max_restarts: int = 0):
        self.core = core
        self.actor_id = actor_id
        self.class_name = class_name
        self.max_task_retries = max_task_retries
        self.max_restarts = max_restarts
        self.num_restarts = 0  # as last reported by the control store
        self.lock = threading.RLock()
        # (task, attempt, state, time, extra); actor calls only with SKATE_TASK_EVENTS=all, and
        # nothing is built for them otherwise (this is the actor call's hot path)
        self._record = core.actor_task_events
        self._event = core.task_events.append
        self._infos: dict[str, dict] = {}  # method -> its task-history info
        self.state: str = ActorState.PENDING_CREATION  # as last reported by the control store
        self.version = -1
        self.address = None
        self.conn: rpc.Connection | None = None
        self.death_cause: str | None = None
        self.queue: collections.deque[ActorCall] = collections.deque()
        self.inflight: dict[bytes, ActorCall] = {}
        # calls its dead process never answered, held until the control store says why it
        # died (so that the error names exit_actor(), a kill, ...): see _on_conn_closed
        self._awaiting_verdict: list[ActorCall] = []
        self.pid = None
        self._watching = False
        self._watch()

    # -- control store watch ----------------------------------------------
    def _watch(self) -> None:
        with self.lock:
            if self._watching or self.state == ActorState.DEAD:
                return
            self._watching = True
        try:
            self.core.gcs.wait_actor(self.actor_id, self.version,
                                     callback=self._on_info)
        except rpc.ConnectionClosed:
            self._on_info(False, None)

    def _on_info(self, ok: bool, info) -> None:
        with self.lock:
            self._watching = False
            if not ok or info is None:
                if self.core.connected:
                    self._die("the control store is unreachable" if not ok
                              else "the actor is unknown")
                return
            if info["version"] <= self.version and info["state"] != ActorState.DEAD:
                pass
            self.version = info["version"]
            self.num_restarts = info.get("num_restarts", 0)
            state = info["state"]
            if state == ActorState.DEAD:
                self._die(info.get("death_cause") or "the actor died")
                return
            self._fail_lost(self._awaiting_verdict)  # it came back after all: they were lost
            if state == ActorState.ALIVE and info["address"] != self.address:
                try:
                    # the core's handler: a generator method's items arrive on it
                    conn = rpc.connect(info["address"], handler=self.core._handle,
                                       on_close=self._on_conn_closed,
                                       name=f"actor-{self.class_name}")
                except OSError:
                    conn = None
                if conn is not None:
                    old, self.conn = self.conn, conn
                    self.address = info["address"]
                    self.pid = info.get("pid")
                    self.state = ActorState.ALIVE
                    self._flush()
                    if old is not None and not old.closed:
                        # the last incarnation is gone: its last replies may still be unread
                        # (its closing settles the rest), but it must not stay open for ever
                        _later(old.close)
            elif state == ActorState.ALIVE and self.conn is not None:
                # the same worker still: a restarted control store adopted it
                self.state = ActorState.ALIVE
                self._flush()
            elif state in (ActorState.RESTARTING, ActorState.PENDING_CREATION):
                self.state = state
        self._watch()

    def _on_conn_closed(self, conn) -> None:
        """``conn`` closed: the calls sent on it and not answered are retried, failed, or
        held for the control store's verdict. Not only the current connection: an actor
        restarted quickly may be ALIVE on a new one before the old one is seen closing."""
        with self.lock:
            if conn is self.conn:
                self.conn = None
                self.address = None
                if self.state != ActorState.DEAD:
                    self.state = ActorState.RESTARTING
            # pop, not clear: replies on another connection may be popping meanwhile
            calls = [c for c in list(self.inflight.values()) if c.conn is conn]
            calls = sorted((c for c in calls if self.inflight.pop(c.task_id, None) is c),
                           key=lambda c: c.seq)
            if self.state == ActorState.DEAD:  # its replies are read; the rest never comes
                for call in calls:
                    self._fail(call, self.dead_error(call.method))
                return
            retry: list[ActorCall] = []
            verdict: list[ActorCall] = []  # fail naming the control store's death cause
            for call in calls:
                if call.retries_left != 0:
                    call.retries_left -= 1 if call.retries_left > 0 else 0
                    retry.append(call)
                elif not self._restarts_left():
                    verdict.append(call)
                else:
                    # Ray's distinction: it comes back for later calls, this one is lost
                    self._fail(call, exc.ActorUnavailableError(
                        f"The actor {self.class_name}'s process died while running "
                        f"{call.method}; the call was not retried "
                        f"(max_task_retries={self.max_task_retries}). If the actor has restarts "
                        f"left it comes back for later calls.", self.actor_id.hex()))
            self.queue.extendleft(reversed(retry))
            if retry and self.conn is not None:
                self._flush()  # already ALIVE on a new connection: send them there
            if verdict:
                self._awaiting_verdict.extend(verdict)
                _later(self._no_verdict)
        self._watch()

    def _no_verdict(self) -> None:
        """The control store said nothing within DEAD_GRACE_S (it may be cut off too)."""
        with self.lock:
            self._fail_lost(self._awaiting_verdict)

    def _fail_lost(self, calls: list[ActorCall]) -> None:
        """Calls whose actor's process died while they ran, and which it did not answer."""
        for call in calls:
            self._fail(call, exc.ActorDiedError(
                f"The actor {self.class_name} died while running {call.method} and has "
                f"no restarts left (max_restarts={self.max_restarts}).", self.actor_id.hex()))
        calls.clear()

    def _restarts_left(self) -> bool:
        return self.max_restarts == -1 or self.num_restarts < self.max_restarts

    def _die(self, cause: str) -> None:
        """DEAD: unsent calls fail now. Sent ones may have been answered: an actor that
        ends itself replies to its last calls first, but the control store's word can
        reach this process before those replies are read off the actor's connection. So
        they fail only when that connection closes (its replies read, in order), or after
        ``DEAD_GRACE_S`` if it stays open (a node cut off)."""
        self.state = ActorState.DEAD
        self.death_cause = cause
        queued = self._awaiting_verdict + list(self.queue)
        self._awaiting_verdict.clear()
        self.queue.clear()
        for call in queued:
            self._fail(call, self.dead_error(call.method))
        # calls on a closed connection were settled when it closed (close() marks it closed
        # before it calls _on_conn_closed, which then takes this lock after us)
        conn = self.conn
        if conn is None:
            return
        if not conn.closed and any(c.conn is conn for c in list(self.inflight.values())):
            _later(conn.close)
        else:
            conn.close()

    def dead_error(self, method: str) -> exc.ActorDiedError:
        return exc.ActorDiedError(
            f"The actor {self.class_name} (id {self.actor_id.hex()}) is dead, so {method} could "
            f"not run: {self.death_cause}.", self.actor_id.hex())

    # -- calls -------------------------------------------------------------------
    def submit(self, call: ActorCall) -> None:
        with self.lock:
            conn = self.conn
            if conn is not None and not self.queue and not conn.closed and call.deps is not None:
                self._send(call, conn)  # the common case: connected, nothing waiting
                return
            if self.state == ActorState.DEAD:
                self._fail(call, self.dead_error(call.method))
                return
            self.queue.append(call)
            if conn is not None:
                self._flush()
        if call.deps is None:
            self._resolve(call)

    def _resolve(self, call: ActorCall) -> None:
        refs = call.refs or []
        entries: list = [None] * len(refs)
        remaining = [len(refs)]
        count_lock = threading.Lock()

        def one_ready(i, entry):
            entries[i] = entry
            with count_lock:
                remaining[0] -= 1
                if remaining[0]:
                    return
            with self.lock:
                failed = next((e for e in entries if e[0] == "err"), None)
                if failed is not None:
                    call.error = failed[1]
                call.deps = entries
                self._flush()

        for i, ref in enumerate(refs):
            self.core.resolve_dependency(ref, lambda entry, i=i: one_ready(i, entry))

    def _flush(self) -> None:
        conn = self.conn
        while self.queue and self.queue[0].deps is not None:
            error = self.queue[0].error
            if error is not None:
                self._fail(self.queue.popleft(), error)
                continue
            if conn is None or conn.closed:
                return
            self._send(self.queue.popleft(), conn)

    def _send(self, call: ActorCall, conn) -> None:
        call.conn = conn
        self.inflight[call.task_id] = call
        spec = (call.task_id, call.method, call.args_blob, call.deps, call.return_ids,
                self.core.address)
        if self._record and call.method[:2] != "__":  # not the runtime's own calls
            # before the send: its reply (FINISHED) may be recorded before this line returns
            self._event((call.task_id, 0, SUBMITTED_TO_WORKER, time.time(),
                         self._event_info(call.method)))
        WorkerClient(conn).actor_call(spec, callback=lambda ok, v: self._replied(call, conn, ok, v))

    def _event_info(self, method: str) -> dict:
        """An actor task's info for the task history (one dict per method)."""
        info = self._infos.get(method)
        if info is None:
            name = f"{self.class_name}.{method}"
            info = self._infos[method] = {
                "job_id": self.core.job_id, "name": name, "func_or_class_name": name,
                "type": "ACTOR_TASK", "actor_id": self.actor_id.hex()}
        return info

    def _replied(self, call: ActorCall, conn, ok: bool, value) -> None:
        if not ok:
            return  # the connection broke: _on_conn_closed decides
        # No lock: replies and _on_conn_closed both run on this connection's reader
        # thread, one after the other, and a dict pop is atomic.
        if self.inflight.pop(call.task_id, None) is None:
            return
        if self._record and call.method[:2] != "__":
            self._event((call.task_id, 0, FAILED if value[2] else FINISHED, time.time(),
                         value[1] if value[2] else None))
        self.core.complete_returns(call.return_ids, value[1])
        call.held = []

    def _fail(self, call: ActorCall, error: BaseException) -> None:
        if self._record and call.method[:2] != "__":
            self._event((call.task_id, 0, FAILED, time.time(), error))
        self.core.fail_returns(call.return_ids, error)
        call.held = []


def _later(fn) -> None:
    """Call ``fn`` in DEAD_GRACE_S (on a timer thread; rare: only when an actor dies)."""
    timer = threading.Timer(DEAD_GRACE_S, fn)
    timer.daemon = True
    timer.start()

"""A connection that outlives its server's restarts: the link to a head's control store.

The control store of a ``skate start`` head can be killed and started again on the
same session folder; node managers, workers and drivers keep running meanwhile.
:class:`ReconnectingConnection` has the face of a :class:`Connection` (``call``,
``call_async``, ``notify``, ``closed``) over whichever real connection is current:

- when the current connection drops it reconnects in the background, every
  ``RETRY_S``, for up to ``timeout_s``; the first thing on a new connection is
  ``on_reconnect(conn)`` (the caller registers itself again: a node, a job);
- a call made while the link is down waits for it; a call in flight when it
  dropped is sent again on the next connection -- so calls are at least once and
  the server's handlers for them must be idempotent (create an actor or a job it
  already has: the same answer);
- a one-way ``notify`` while the link is down is dropped (False), as on a
  connection that is gone;
- once ``timeout_s`` passes without a connection (or with ``timeout_s`` 0, or if the
  server never answered a call -- it refused us, a wrong token: at the first drop) it
  gives up for good: ``closed`` is True, waiting and parked calls
  fail with ConnectionClosed and ``on_lost()`` runs once.

Invariants: at most one reconnecting thread at a time; ``closed`` only after giving
up or ``close()``; every async callback runs exactly once.

Example::

    conn = ReconnectingConnection("unix:/tmp/s/gcs.sock", timeout_s=60,
                                  on_reconnect=lambda c: c.call("register_node", nid, info))
    conn.call("get_nodes")   # waits out a restart of the server, up to 60 s
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from skate.core.rpc.connection import Connection, ConnectionClosed, connect

log = logging.getLogger(__name__)

#: How often a dropped link tries its server again.
RETRY_S = 0.1


class Refused(ConnectionError):
    """Raised by ``on_reconnect``: the server is back but will not have us (it declared
    this node dead, it forgot this job): give up now instead of retrying."""


class ReconnectingConnection:
    def __init__(self, address: str, handler=None, name: str = "", timeout_s: float = 0.0,
                 on_reconnect: Callable[[Connection], None] | None = None,
                 on_lost: Callable[[], None] | None = None, connect_timeout: float = 10.0):
        self.address = address
        self.handler = handler
        self.name = name
        self.timeout_s = timeout_s
        self.on_reconnect = on_reconnect
        self.on_lost = on_lost
        self.closed = False
        self.peer_info: dict = {}
        self._lock = threading.RLock()  # re-entered by callbacks run when it gives up
        self._up = threading.Event()
        self._parked: list = []  # (method, args, callback): async calls for the next link
        self._reconnecting = False
        self._answered = False  # the server has answered a call: a drop after is a restart
        # a process started while its server restarts (a worker) waits for it too
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._conn = connect(address, handler=handler, on_close=self._dropped,
                                     name=name, timeout=connect_timeout)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(RETRY_S)
        self._up.set()

    @property
    def up(self) -> bool:
        """Connected now (False while reconnecting, and for good once given up)."""
        return self._up.is_set() and not self.closed

    @property
    def current(self) -> Connection:
        return self._conn

    # -- calls ---------------------------------------------------------------------------
    def call(self, method: str, *args, timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            conn = self._wait_up(deadline)
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                value = conn.call(method, *args, timeout=left)
                self._answered = True
                return value
            except ConnectionClosed:
                if self.closed:
                    raise
                self._wait_replaced(conn, deadline)  # then send it again on the next one

    def call_async(self, method: str, *args, callback: Callable[[bool, Any], None]) -> None:
        def done(ok, value):
            if ok:
                self._answered = True
            if not ok and isinstance(value, ConnectionClosed) and not self.closed:
                self._park(method, args, done)  # dropped before its answer: send it again
            else:
                callback(ok, value)

        self._park(method, args, done)

    def notify(self, method: str, *args) -> bool:
        if not self.up:
            return False
        return self._conn.notify(method, *args)

    def reply(self, rid: int, value=None, ok: bool = True) -> None:
        self._conn.reply(rid, value, ok)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            parked, self._parked = self._parked, []
        self._up.set()  # wake waiting calls: they see closed
        self._conn.close()
        _fail(parked)

    # -- the link ------------------------------------------------------------------------
    def _wait_up(self, deadline: float | None) -> Connection:
        while True:
            if self.closed:
                raise ConnectionClosed(f"connection {self.name} is closed")
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"{self.name}: no connection to {self.address}")
            if self._up.wait(left):
                if self.closed:
                    raise ConnectionClosed(f"connection {self.name} is closed")
                return self._conn

    def _wait_replaced(self, conn: Connection, deadline: float | None) -> None:
        """After ``conn`` failed a call: wait until the link moved on from it (or gave up)."""
        while self._conn is conn and not self.closed:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"{self.name}: no connection to {self.address}")
            time.sleep(RETRY_S / 4)

    def _park(self, method, args, callback) -> None:
        """Send on the current connection, or keep for the next one while there is none
        (a closed current one counts: its drop is on its way to ``_dropped``)."""
        with self._lock:
            if not self.closed and (not self._up.is_set() or self._conn.closed):
                self._parked.append((method, args, callback))
                return
            closed, conn = self.closed, self._conn
        if closed:
            callback(False, ConnectionClosed(f"connection {self.name} is closed"))
        else:
            conn.call_async(method, *args, callback=callback)

    def _dropped(self, conn: Connection) -> None:
        with self._lock:
            if conn is not self._conn or self.closed or self._reconnecting:
                return
            self._up.clear()
            if self.timeout_s <= 0 or not self._answered:
                # never answered: the server refused us (a wrong token), it did not restart
                self._give_up_locked()
                return
            self._reconnecting = True
        log.info("%s: lost %s; reconnecting for up to %.0f s", self.name, self.address,
                    self.timeout_s)
        threading.Thread(target=self._reconnect, name=f"reconnect-{self.name}",
                         daemon=True).start()

    def _reconnect(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not self.closed:
            try:
                conn = connect(self.address, handler=self.handler, on_close=self._dropped,
                               name=self.name, timeout=2.0)
                with self._lock:
                    self._conn = conn
                if self.on_reconnect is not None:
                    self.on_reconnect(conn)
            except Refused as e:  # before ConnectionError: it is one
                log.warning("%s: %s refused us (%s); giving up", self.name, self.address, e)
                with self._lock:
                    self._reconnecting = False
                    self._give_up_locked()
                return
            except (OSError, ConnectionError, TimeoutError) as e:
                if time.monotonic() >= deadline:
                    with self._lock:
                        self._reconnecting = False
                        self._give_up_locked()
                    return
                log.debug("%s: %s not back yet (%s)", self.name, self.address, e)
                time.sleep(RETRY_S)
                continue
            with self._lock:
                if conn.closed:  # dropped again meanwhile (its _dropped saw us at work)
                    continue
                self._reconnecting = False
                parked, self._parked = self._parked, []
                self._up.set()
            log.info("%s: reconnected to %s", self.name, self.address)
            for method, args, callback in parked:
                conn.call_async(method, *args, callback=callback)
            return

    def _give_up_locked(self) -> None:
        if self.closed:
            return
        self.closed = True
        parked, self._parked = self._parked, []
        self._up.set()
        # outside our lock would be nicer, but callbacks only park or report, never call us
        _fail(parked)
        if self.on_lost is not None:
            threading.Thread(target=self.on_lost, name=f"lost-{self.name}", daemon=True).start()


def _fail(parked: list) -> None:
    err = ConnectionClosed("the connection is closed")
    for _, _, callback in parked:
        try:
            callback(False, err)
        except Exception:
            log.exception("a parked call's callback failed")

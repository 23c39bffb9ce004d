"""Which replica takes a request: power of two choices on queue lengths the router knows.

Every process that sends requests (the proxy, a driver's handles, a
deployment calling another) has one ``Router`` per deployment. It counts the
calls it has in flight on each replica — no round trip asks a replica how
busy it is — and picks the less loaded of two random replicas that are under
``max_ongoing_requests``, preferring replicas on its own node and, for a
multiplexed model, replicas that already hold it. When every replica is
full, requests wait in the router's queue, up to ``max_queued_requests``
(then ``BackPressureError``, HTTP 503). A replica that answers ``REJECTED``
(other routers filled it) is skipped for a moment and the request tries
another. ``ReplicaChooser`` is the pure choice; ``Router`` adds the waiting.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from dataclasses import dataclass, field

from skate.exceptions import RayServeException
from skate.serve.replica import Rejected

REJECT_PAUSE_S = 0.01  # a replica that rejected is not chosen again for this long
RETRY = object()  # Router.answer: the replica was full, send the request elsewhere


class BackPressureError(RayServeException):
    """Every replica is full and ``max_queued_requests`` requests already wait (HTTP 503)."""


class RequestTimeoutError(RayServeException):
    """The request was not answered within the deployment's ``request_timeout_s`` (HTTP 408)."""


@dataclass
class ReplicaInfo:
    replica_id: str
    actor: object
    node_id: str = ""
    model_ids: frozenset = frozenset()


@dataclass
class ReplicaChooser:
    """The pure choice (see the module docstring).

    >>> c = ReplicaChooser(max_ongoing=2, node_id="n1", rng=random.Random(0))
    >>> c.set_replicas([ReplicaInfo("a", None, "n1"), ReplicaInfo("b", None, "n2")])
    >>> c.choose(now=0.0)          # the local replica first
    'a'
    >>> c.started("a"); c.started("a"); c.choose(now=0.0)   # a is full
    'b'
    """

    max_ongoing: int
    node_id: str = ""
    rng: random.Random = field(default_factory=random.Random)
    replicas: dict = field(default_factory=dict)  # id -> ReplicaInfo
    in_flight: dict = field(default_factory=dict)  # id -> calls this router has there
    paused_until: dict = field(default_factory=dict)  # id -> time it rejected + pause

    def set_replicas(self, infos: list) -> None:
        self.replicas = {r.replica_id: r for r in infos}
        self.in_flight = {rid: self.in_flight.get(rid, 0) for rid in self.replicas}
        self.paused_until = {k: v for k, v in self.paused_until.items() if k in self.replicas}

    def choose(self, now: float, model_id: str = "") -> str | None:
        """A replica with room, or None when all are full (or there are none)."""
        free = [rid for rid, n in self.in_flight.items()
                if n < self.max_ongoing and self.paused_until.get(rid, 0.0) <= now]
        if not free:
            return None
        if model_id:
            holding = [rid for rid in free if model_id in self.replicas[rid].model_ids]
            if holding:
                free = holding
            else:  # nobody has it: the least busy replica holding the fewest models loads it
                return min(free, key=lambda rid: (self.in_flight[rid],
                                                  len(self.replicas[rid].model_ids),
                                                  self.rng.random()))
        local = [rid for rid in free if self.replicas[rid].node_id == self.node_id]
        pool = local or free
        if len(pool) == 1:
            return pool[0]
        a, b = self.rng.sample(pool, 2)
        return a if self.in_flight[a] <= self.in_flight[b] else b

    def started(self, rid: str) -> None:
        if rid in self.in_flight:
            self.in_flight[rid] += 1

    def finished(self, rid: str) -> None:
        if self.in_flight.get(rid, 0) > 0:
            self.in_flight[rid] -= 1

    def rejected(self, rid: str, now: float) -> None:
        self.paused_until[rid] = now + REJECT_PAUSE_S

    def removed(self, rid: str) -> None:
        self.replicas.pop(rid, None)
        self.in_flight.pop(rid, None)

    def ongoing(self) -> int:
        return sum(self.in_flight.values())


class Router:
    """Sends one deployment's requests to its replicas, on the caller's event loop."""

    def __init__(self, app_name: str, deployment: str, node_id: str, on_demand=None,
                 on_dead=None):
        self.app_name, self.deployment = app_name, deployment
        self.chooser = ReplicaChooser(max_ongoing=5, node_id=node_id)
        self.max_queued = -1
        self.request_timeout_s: float | None = None
        self.autoscaling = False
        self._waiting: collections.deque = collections.deque()  # futures woken when room
        self._on_demand = on_demand  # called when a request waits and there is no replica
        self._on_dead = on_dead  # called with a replica id whose actor died

    # -- updates from the controller ------------------------------------------------------
    def update(self, info: dict) -> None:
        self.chooser.max_ongoing = info["max_ongoing"]
        self.max_queued = info["max_queued"]
        self.request_timeout_s = info["request_timeout_s"]
        self.autoscaling = info["autoscaling"]
        self.chooser.set_replicas([ReplicaInfo(*r) for r in info["replicas"]])
        self._wake(len(self._waiting))

    def queued(self) -> int:
        return len(self._waiting)

    def load(self) -> int:
        return self.chooser.ongoing() + len(self._waiting)

    # -- sending --------------------------------------------------------------------------
    async def assign(self, deadline: float | None, model_id: str = "") -> str:
        """A replica id with room, waiting in the queue if all are full."""
        while True:
            rid = self.chooser.choose(time.monotonic(), model_id)
            if rid is not None:
                self.chooser.started(rid)
                return rid
            if 0 <= self.max_queued <= len(self._waiting):
                raise BackPressureError(
                    f"deployment {self.deployment!r} of application {self.app_name!r}: every "
                    f"replica is full and {len(self._waiting)} requests wait "
                    f"(max_queued_requests={self.max_queued})")
            fut = asyncio.get_running_loop().create_future()
            self._waiting.append(fut)
            if not self.chooser.replicas and self._on_demand is not None:
                self._on_demand(self)
            try:
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                # a paused replica becomes free again without anyone waking the queue
                paused = self.chooser.paused_until
                if paused:
                    wait = REJECT_PAUSE_S if wait is None else min(wait, REJECT_PAUSE_S)
                await asyncio.wait_for(fut, wait)
            except asyncio.TimeoutError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise RequestTimeoutError(
                        f"request to {self.deployment!r} timed out waiting for a replica "
                        f"(request_timeout_s={self.request_timeout_s})") from None
            finally:
                if fut in self._waiting:
                    self._waiting.remove(fut)

    def done(self, rid: str) -> None:
        self.chooser.finished(rid)
        self._wake(1)

    def rejected(self, rid: str) -> None:
        self.chooser.finished(rid)
        self.chooser.rejected(rid, time.monotonic())

    def dead(self, rid: str) -> None:
        self.chooser.removed(rid)
        if self._on_dead is not None:
            self._on_dead(self, rid)

    def actor(self, rid: str):
        info = self.chooser.replicas.get(rid)
        return None if info is None else info.actor

    def _wake(self, n: int) -> None:
        while n > 0 and self._waiting:
            fut = self._waiting.popleft()
            if not fut.done():
                fut.set_result(None)
                n -= 1

    async def answer(self, rid: str, awaitable, deadline: float | None):
        """Wait for replica ``rid``'s answer and settle its count: the answer, or ``RETRY``
        when the replica rejected the call (try another); its death or the timeout raises."""
        from skate.exceptions import ActorDiedError, ActorUnavailableError

        try:
            if deadline is None:
                out = await awaitable
            else:
                out = await asyncio.wait_for(awaitable, max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            self.done(rid)
            raise RequestTimeoutError(
                f"request to {self.deployment!r} was not answered within "
                f"request_timeout_s={self.request_timeout_s}") from None
        except (ActorDiedError, ActorUnavailableError):
            self.done(rid)
            self.dead(rid)
            raise
        except BaseException:
            self.done(rid)
            raise
        if isinstance(out, Rejected):
            self.rejected(rid)
            return RETRY
        self.done(rid)
        return out

    async def call(self, send, deadline: float | None, model_id: str = ""):
        """``send(actor)`` returns an ObjectRef; retried elsewhere while replicas reject."""
        while True:
            rid = await self.assign(deadline, model_id)
            out = await self.answer(rid, send(self.actor(rid)), deadline)
            if out is not RETRY:
                return out

"""The replicas of one deployment: its target in, replica actions out (pure).

The serve controller owns one ``Reconciler`` per deployment. It tells it what
should exist (``set_target``: code version, replica count, user_config
version) and what happened (a replica became ready, failed — crashed, failed
its health check or its constructor —, stopped, or applied a new
user_config), and on each tick asks ``step(now)`` for the commands to carry
out: ``StartReplica``, ``StopReplica``, ``Reconfigure``. It never waits,
reads a clock or touches an actor; the controller does, and reports back.

Rolling updates lose no request: an old replica is stopped only while enough
*running* replicas remain to carry the load — a new replica starts first
(up to ``max_surge`` above the target count), and an old one is drained once
a new one is running. A changed ``user_config`` alone is applied in place
(``Reconfigure``), never by restarting. A failed replica is replaced; replicas
that keep failing to start back off (``0.5 s`` doubling to ``30 s``) and the
deployment reports UNHEALTHY with the last error, until one starts.

Invariants (``check()``):
- replicas not stopping never exceed ``num_replicas + max_surge``;
- the reconciler itself never stops a running replica when that would leave
  fewer running replicas than ``min(num_replicas, running before)``;
- every replica is in exactly one state; stopped or failed replicas are gone.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

STARTING, RUNNING, UPDATING, STOPPING = "STARTING", "RUNNING", "UPDATING", "STOPPING"
HEALTHY, UPDATING_STATUS, UNHEALTHY = "HEALTHY", "UPDATING", "UNHEALTHY"
BACKOFF_BASE_S, BACKOFF_MAX_S = 0.5, 30.0


@dataclass(frozen=True)
class Target:
    """What should run: ``num_replicas`` replicas of code ``version`` with user_config
    ``config_version``."""

    version: str
    num_replicas: int
    config_version: str | None = None
    max_surge: int = 1

    def __post_init__(self):
        if self.num_replicas < 0 or self.max_surge < 1:
            raise ValueError("num_replicas must be >= 0 and max_surge >= 1")


@dataclass(frozen=True)
class StartReplica:
    replica_id: str
    version: str
    config_version: str | None


@dataclass(frozen=True)
class StopReplica:
    replica_id: str
    graceful: bool = True  # drain ongoing requests first


@dataclass(frozen=True)
class Reconfigure:
    replica_id: str
    config_version: str | None


@dataclass
class _Replica:
    replica_id: str
    version: str
    config_version: str | None
    state: str = STARTING


@dataclass
class Reconciler:
    """One deployment's replicas (see the module docstring).

    >>> r = Reconciler("model")
    >>> r.set_target(Target("v1", num_replicas=2))
    >>> r.step(now=0.0)
    [StartReplica(replica_id='model#1', version='v1', config_version=None), \
StartReplica(replica_id='model#2', version='v1', config_version=None)]
    >>> r.replica_started("model#1"); r.replica_started("model#2"); r.status()[0]
    'HEALTHY'
    """

    name: str
    target: Target | None = None
    replicas: dict = field(default_factory=dict)  # id -> _Replica; stopped/failed ones removed
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _start_failures: int = 0  # replicas in a row that failed before becoming ready
    _next_start_at: float = 0.0  # no replica starts before this (back-off)
    _last_error: str = ""

    # -- events -------------------------------------------------------------------------
    def set_target(self, target: Target) -> None:
        if self.target is not None and target.version != self.target.version:
            self._start_failures, self._next_start_at = 0, 0.0  # new code: try at once
        self.target = target

    def replica_started(self, replica_id: str) -> None:
        rep = self.replicas.get(replica_id)
        if rep is not None and rep.state == STARTING:
            rep.state = RUNNING
            self._start_failures, self._last_error = 0, ""

    def replica_failed(self, replica_id: str, why: str, now: float) -> None:
        """It crashed, failed a health check or its constructor: it is gone."""
        rep = self.replicas.pop(replica_id, None)
        if rep is None:
            return
        self._last_error = why
        if rep.state == STARTING:
            self._start_failures += 1
            delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (self._start_failures - 1))
            self._next_start_at = now + delay

    def replica_stopped(self, replica_id: str) -> None:
        self.replicas.pop(replica_id, None)

    def reconfigured(self, replica_id: str, config_version: str | None) -> None:
        rep = self.replicas.get(replica_id)
        if rep is not None and rep.state == UPDATING:
            rep.config_version = config_version
            rep.state = RUNNING

    # -- decisions ----------------------------------------------------------------------
    def step(self, now: float) -> list:
        t = self.target
        if t is None:
            return []
        out: list = []
        live = [r for r in self.replicas.values() if r.state != STOPPING]
        current = [r for r in live if r.version == t.version]
        old = [r for r in live if r.version != t.version]
        running = [r for r in live if r.state in (RUNNING, UPDATING)]

        # 1. a new user_config alone: applied in place on running replicas of this code
        for r in current:
            if r.state == RUNNING and r.config_version != t.config_version:
                r.state = UPDATING
                out.append(Reconfigure(r.replica_id, t.config_version))

        # 2. old code that never started serves nobody: stop it at once
        for r in [r for r in old if r.state == STARTING]:
            out.append(self._stop(r))
            old.remove(r)

        # 3. start replicas of the target version, up to the surge bound
        room = t.num_replicas + t.max_surge - len(current) - len(old)
        missing = t.num_replicas - len(current)
        for _ in range(max(0, min(missing, room))):
            if now < self._next_start_at:
                break
            rid = f"{self.name}#{next(self._ids)}"
            self.replicas[rid] = _Replica(rid, t.version, t.config_version)
            current.append(self.replicas[rid])
            out.append(StartReplica(rid, t.version, t.config_version))

        # 4. stop old replicas while the running ones that stay still carry the target load
        floor = min(t.num_replicas, len(running))
        serving = len(running)
        for r in sorted(old, key=lambda r: r.state != RUNNING):
            if serving - 1 < floor and r.state in (RUNNING, UPDATING):
                break
            new_running = sum(1 for x in current if x.state in (RUNNING, UPDATING))
            if r.state in (RUNNING, UPDATING) and len(old) + new_running <= t.num_replicas:
                break  # every old one still needed until a new one runs
            out.append(self._stop(r))
            old.remove(r)
            serving -= r.state in (RUNNING, UPDATING)

        # 5. too many of the current code (scale down): starting ones first, then newest
        extra = len(current) - t.num_replicas
        if extra > 0:
            order = sorted(current, key=lambda r: (r.state != STARTING, -_seq(r.replica_id)))
            for r in order[:extra]:
                out.append(self._stop(r))
        return out

    def _stop(self, r: _Replica) -> StopReplica:
        graceful = r.state in (RUNNING, UPDATING)
        r.state = STOPPING
        return StopReplica(r.replica_id, graceful)

    # -- views ----------------------------------------------------------------------------
    def status(self) -> tuple[str, str]:
        """(HEALTHY | UPDATING | UNHEALTHY, message) for ``serve.status()``."""
        t = self.target
        if t is None:
            return UPDATING_STATUS, "no target yet"
        if self._start_failures:
            return UNHEALTHY, (f"{self._start_failures} replica(s) in a row failed to start; "
                               f"last error: {self._last_error}")
        ready = [r for r in self.replicas.values() if r.state == RUNNING
                 and r.version == t.version and r.config_version == t.config_version]
        others = [r for r in self.replicas.values() if r not in ready]
        if len(ready) == t.num_replicas and not others:
            return HEALTHY, ""
        return UPDATING_STATUS, (f"{len(ready)} of {t.num_replicas} replicas of version "
                                 f"{t.version} running")

    def counts(self) -> dict:
        out: dict = {}
        for r in self.replicas.values():
            out[r.state] = out.get(r.state, 0) + 1
        return out

    def check(self) -> None:
        """The invariants of the module docstring (tests call it after every step)."""
        t = self.target
        if t is None:
            return
        live = [r for r in self.replicas.values() if r.state != STOPPING]
        assert len(live) <= t.num_replicas + t.max_surge, (len(live), t)
        for r in self.replicas.values():
            assert r.state in (STARTING, RUNNING, UPDATING, STOPPING), r


def _seq(replica_id: str) -> int:
    return int(replica_id.rpartition("#")[2])

"""When a node manager may start another worker, and when one is overdue (pure policies).

A worker that exits before it registers is a *failed start*. Two causes look
alike from outside but call for different answers:

- killed from outside (SIGKILL/SIGTERM: an OOM killer, an operator, a chaos
  test): start another one; the work waiting for it must not be lost.
- exited on its own (an import error, a bad ``runtime_env``, a crashing
  interpreter): starting the same command again will fail the same way, so
  after ``give_up_after`` such exits in a row the waiting work is failed with
  the worker's own error output instead of retrying for ever.

Either way, repeated failures back off exponentially (``base_s`` doubling up
to ``max_s``) so a crash loop cannot eat the machine. A worker that registers
resets its key. Time is passed in; nothing here sleeps or does I/O.

Invariants: ``ready_at(key) <= now + max_s`` right after any ``failed``;
``crashes(key) <= failures(key)``; both are 0 after ``started(key)``.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass


@dataclass
class _Streak:
    failures: int = 0  # failed starts in a row, any cause
    crashes: int = 0  # of those, exits on the worker's own account, in a row
    ready_at: float = 0.0  # no new start for this key before this time


#: exit codes of a process killed from outside (Popen reports -signum)
EXTERNAL_KILLS = frozenset({-signal.SIGKILL, -signal.SIGTERM})


class StartBackoff:
    """Failed worker starts per environment key (see the module docstring).

    >>> b = StartBackoff(base_s=0.1, max_s=1.0, give_up_after=3)
    >>> b.failed("", now=10.0, returncode=-9)       # killed: retry at once
    10.0
    >>> b.failed("", now=10.0, returncode=1)        # second failure in a row: wait
    10.1
    >>> b.gave_up("")
    False
    """

    def __init__(self, base_s: float = 0.05, max_s: float = 1.0, give_up_after: int = 5):
        self.base_s = base_s
        self.max_s = max_s
        self.give_up_after = give_up_after
        self._streaks: dict[str, _Streak] = {}
        self.total_failures = 0  # every failed start since the node started

    def failed(self, key: str, now: float, returncode: int | None) -> float:
        """Record a failed start; return when the next start for ``key`` may begin."""
        st = self._streaks.setdefault(key, _Streak())
        st.failures += 1
        self.total_failures += 1
        if returncode in EXTERNAL_KILLS:
            st.crashes = 0
        else:
            st.crashes += 1
        # the first failure retries at once (one stray kill costs nothing); then doubling
        delay = 0.0 if st.failures == 1 else min(self.max_s, self.base_s * 2 ** (st.failures - 2))
        st.ready_at = now + delay
        return st.ready_at

    def started(self, key: str) -> None:
        """A worker for ``key`` registered: its streak is over."""
        self._streaks.pop(key, None)

    def ready_at(self, key: str) -> float:
        st = self._streaks.get(key)
        return st.ready_at if st is not None else 0.0

    def gave_up(self, key: str) -> bool:
        """True once ``give_up_after`` workers in a row exited on their own."""
        st = self._streaks.get(key)
        return st is not None and st.crashes >= self.give_up_after

    def reset(self, key: str) -> None:
        """Forget ``key`` (its waiting work was failed; new work starts afresh)."""
        self._streaks.pop(key, None)


class Watchdog:
    """The node manager's liveness invariant, kept over time.

    Invariant: queued work that fits the free resources has a worker running or
    starting for it within ``stall_s``. Each tick the node manager passes the
    requests that are stalled *now* (they fit, nothing is starting or idle for
    them, and no back-off holds them); those stalled for longer than ``stall_s``
    in a row come back as *trips* — a bookkeeping bug, to be logged and
    repaired — and start a new period. ``trips`` counts them; tests assert 0.

    >>> w = Watchdog(stall_s=1.0)
    >>> w.tick(now=0.0, stalled=[7]), w.tick(now=0.5, stalled=[7]), w.tick(now=1.6, stalled=[7])
    ([], [], [(7, 1.6)])
    >>> w.trips
    1
    """

    def __init__(self, stall_s: float = 1.0):
        self.stall_s = stall_s
        self._since: dict = {}  # request id -> when it was first seen stalled in a row
        self.trips = 0

    def tick(self, now: float, stalled) -> list:
        """``[(request id, seconds stalled)]`` of the requests overdue now."""
        stalled = set(stalled)
        for rid in list(self._since):
            if rid not in stalled:
                del self._since[rid]  # a worker came for it: the streak ends
        overdue = []
        for rid in sorted(stalled):
            first = self._since.setdefault(rid, now)
            if now - first > self.stall_s:
                overdue.append((rid, now - first))
                self._since[rid] = now
        self.trips += len(overdue)
        return overdue

"""A worker killer for chaos tests (and the chaos benchmark).

``WorkerKiller`` is a thread that ``kill -9``s a random Skate worker process
(a descendant of this process) every ``interval`` seconds, as a user testing
Skate would: workers that are starting, idle, running a task, blocked in
``get`` or hosting an actor are all fair game.
"""

from __future__ import annotations

import random
import threading

import psutil

SKATE_WORKER = "skate.core.worker"  # in a Skate worker's command line ("ray::" for Ray's)


def workers(marker: str = SKATE_WORKER, exclude: tuple = ()) -> list:
    """Live worker processes started (indirectly) by this process: their command line holds
    ``marker`` and none of ``exclude``."""
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(p.cmdline())
            if marker in cmdline and not any(x in cmdline for x in exclude):
                out.append(p)
        except psutil.Error:
            continue  # gone meanwhile
    return out


class WorkerKiller:
    """``with WorkerKiller(0.2) as k: ...``: kills a random worker every 0.2 s; ``k.kills``
    counts the processes it killed."""

    def __init__(self, interval: float = 0.2, seed: int | None = None,
                 marker: str = SKATE_WORKER, exclude: tuple = ()):
        self.interval = interval
        self.marker = marker
        self.exclude = exclude
        self.kills = 0
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-killer", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            victims = workers(self.marker, self.exclude)
            if not victims:
                continue
            try:
                self._rng.choice(victims).kill()
                self.kills += 1
            except psutil.Error:
                pass  # it exited on its own meanwhile

    def __enter__(self) -> "WorkerKiller":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def work(n: int) -> int:
    """Some real CPU work for a task body (n=10_000 takes about a millisecond here), so a
    kill can land while a task runs — computed, not slept."""
    return sum(i * i for i in range(n)) % 7

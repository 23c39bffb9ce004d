"""The cluster's resource use over the last minutes: a bounded ring of samples.

The dashboard samples every ``interval_s`` (2 s) and keeps ``window_s`` (10
minutes) of samples, so memory stays constant however long it runs (300
samples of a few numbers each). A sample holds, for CPU, memory and the
object store, the logical resources in use (total less available) and the
total, summed over the live nodes -- the state API gives per-node totals but
not per-node availability yet -- and the head machine's own CPU and memory
use (psutil), which is what a person watching a laptop cluster wants to see.

The answer is column-oriented, as uPlot draws it: one list of times and one
list per series.

>>> h = ResourceHistory(window_s=4, interval_s=2)
>>> for t in (0, 2, 4, 6):
...     h.add(Sample(t, {"CPU": (1.0, 2.0)}, cpu_percent=50.0, memory=(1, 8)))
>>> cols = h.columns(); cols["t"], cols["resources"]["CPU"]
([2, 4, 6], {'used': [1.0, 1.0, 1.0], 'total': [2.0, 2.0, 2.0]})
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from typing import NamedTuple

log = logging.getLogger(__name__)

#: the logical resources plotted; the page draws one chart each
RESOURCES = ("CPU", "memory", "object_store_memory")


class Sample(NamedTuple):
    t: float  #: seconds since the epoch
    resources: dict  #: name -> (used, total)
    cpu_percent: float | None = None  #: the head machine's, over the last interval
    memory: tuple | None = None  #: the head machine's (used, total) bytes


class ResourceHistory:
    """The last ``window_s`` seconds of samples; ``add`` and ``columns`` are thread-safe."""

    def __init__(self, window_s: float = 600.0, interval_s: float = 2.0):
        self.window_s = window_s
        self.interval_s = interval_s
        # one more than the window holds, so a full window is always covered
        self._samples: collections.deque = collections.deque(
            maxlen=math.ceil(window_s / interval_s) + 1)
        self._lock = threading.Lock()

    def add(self, sample: Sample) -> None:
        with self._lock:
            self._samples.append(sample)

    def __len__(self) -> int:
        return len(self._samples)

    def columns(self) -> dict:
        """``{"t": [...], "resources": {name: {"used": [...], "total": [...]}},
        "host": {"cpu_percent": [...], "memory_used": [...], "memory_total": [...]}}``,
        oldest first, covering at most ``window_s``."""
        with self._lock:
            samples = list(self._samples)
        if samples:
            newest = samples[-1].t
            samples = [s for s in samples if newest - s.t <= self.window_s]
        names = [r for r in RESOURCES if any(r in s.resources for s in samples)]
        resources = {name: {"used": [s.resources.get(name, (None, None))[0] for s in samples],
                            "total": [s.resources.get(name, (None, None))[1] for s in samples]}
                     for name in names}
        return {
            "t": [s.t for s in samples], "interval_s": self.interval_s,
            "window_s": self.window_s, "scope": "cluster", "resources": resources,
            "host": {"cpu_percent": [s.cpu_percent for s in samples],
                     "memory_used": [s.memory[0] if s.memory else None for s in samples],
                     "memory_total": [s.memory[1] if s.memory else None for s in samples]}}


def sample_now(cluster, clock=time.time) -> Sample:
    """One sample of ``cluster`` (a ``cluster.Cluster``) and of this machine."""
    import psutil

    total, available = cluster.resources()
    used = {name: (max(0.0, total[name] - available.get(name, 0.0)), total[name])
            for name in RESOURCES if name in total}
    vm = psutil.virtual_memory()
    return Sample(round(clock(), 3), used, psutil.cpu_percent(interval=None),
                  (vm.total - vm.available, vm.total))


class Sampler:
    """A daemon thread that adds a sample every ``interval_s`` until ``stop()``; after
    ``give_up`` failures in a row (the cluster is gone) it calls ``on_lost`` once. It also
    calls ``after_sample`` each round: the dashboard's housekeeping rides on it."""

    def __init__(self, cluster, history: ResourceHistory, on_lost=None, give_up: int = 5,
                 after_sample=None):
        self.cluster = cluster
        self.history = history
        self.on_lost = on_lost
        self.give_up = give_up
        self.after_sample = after_sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="skate-dashboard-sampler",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.history.add(sample_now(self.cluster))
                failures = 0
            except Exception as e:  # noqa: BLE001 - a sample is skipped, the loop goes on
                failures += 1
                log.warning("resource sample failed (%d in a row): %s", failures, e)
                if failures == self.give_up and self.on_lost is not None:
                    self.on_lost()
            if self.after_sample is not None:
                self.after_sample()
            self._stop.wait(self.history.interval_s)

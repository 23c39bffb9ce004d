"""The cluster's resource use over the last minutes: a bounded ring of samples.

The dashboard samples ``skate.state.cluster_status()`` every ``interval_s``
(2 s) and keeps ``window_s`` (10 minutes) of samples, so memory stays
constant however long it runs. A sample holds, per alive node (at most
``MAX_NODES``), the logical CPU, GPU and memory resources in use (total less
available) with their totals, and the bytes its object store holds against
its capacity; and the head machine's own CPU and memory use (psutil), which
is what a person watching a laptop cluster wants to see.

The answer is column-oriented, as uPlot draws it: one list of times and one
list per series, ``None`` where a node had no sample (it joined later, or
died).

>>> h = ResourceHistory(window_s=4, interval_s=2)
>>> for t in (0, 2, 4, 6):
...     h.add(Sample(t, {"n1": {"CPU": (1.0, 2.0)}}, cpu_percent=50.0, memory=(1, 8)))
>>> cols = h.columns(); cols["t"], cols["resources"]["CPU"]
([2, 4, 6], {'used': [1.0, 1.0, 1.0], 'total': [2.0, 2.0, 2.0]})
>>> cols["nodes"]["n1"]["CPU"]["used"]
[1.0, 1.0, 1.0]
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from typing import NamedTuple

log = logging.getLogger(__name__)

#: the logical resources plotted (where a node has them), then the store's bytes
RESOURCES = ("CPU", "GPU", "memory")
STORE = "object_store"
#: nodes kept per sample: a plot per node stops being readable well before this
MAX_NODES = 32


class Sample(NamedTuple):
    t: float  #: seconds since the epoch
    nodes: dict  #: node id -> {resource name or "object_store": (used, total)}
    cpu_percent: float | None = None  #: the head machine's, over the last interval
    memory: tuple | None = None  #: the head machine's (used, total) bytes
    labels: dict | None = None  #: node id -> {"node_ip", "is_head_node"}


class Ring:
    """The last ``window_s`` seconds of samples taken every ``interval_s``, oldest first; a
    sample is a tuple whose first item is its time. ``add`` and ``window`` are thread-safe."""

    def __init__(self, window_s: float = 600.0, interval_s: float = 2.0):
        self.window_s = window_s
        self.interval_s = interval_s
        # one more than the window holds, so a full window is always covered
        self._samples: collections.deque = collections.deque(
            maxlen=math.ceil(window_s / interval_s) + 1)
        self._lock = threading.Lock()

    def add(self, sample: tuple) -> None:
        with self._lock:
            self._samples.append(sample)

    def __len__(self) -> int:
        return len(self._samples)

    def latest(self):
        with self._lock:
            return self._samples[-1] if self._samples else None

    def window(self) -> list:
        """The samples at most ``window_s`` older than the newest."""
        with self._lock:
            samples = list(self._samples)
        return [s for s in samples if samples[-1][0] - s[0] <= self.window_s]


class ResourceHistory(Ring):
    """Samples of the cluster's resource use (``Sample``), as columns for the plots."""

    def columns(self) -> dict:
        """``{"t": [...], "resources": {name: {"used": [...], "total": [...]}}, "nodes":
        {node_id: {name: {"used", "total"}}}, "node_labels": {node_id: {...}}, "host":
        {"cpu_percent", "memory_used", "memory_total"}}``, oldest first, covering at most
        ``window_s``; ``resources`` sums the nodes."""
        samples = self.window()
        node_ids = list(dict.fromkeys(n for s in samples for n in s.nodes))
        labels: dict = {}
        for s in samples:
            labels.update(s.labels or {})
        nodes = {}
        for nid in node_ids:
            names = [r for r in (*RESOURCES, STORE) if any(r in s.nodes.get(nid, ()) for s in
                                                           samples)]
            nodes[nid] = {name: _series([s.nodes.get(nid, {}).get(name) for s in samples])
                          for name in names}
        totals = {}
        for name in (*RESOURCES, STORE):
            values = [_sum([v[name] for v in s.nodes.values() if name in v]) for s in samples]
            if any(v is not None for v in values):
                totals[name] = _series(values)
        return {
            "t": [s.t for s in samples], "interval_s": self.interval_s,
            "window_s": self.window_s, "scope": "cluster", "resources": totals,
            "nodes": nodes, "node_labels": {n: labels[n] for n in node_ids if n in labels},
            "host": {"cpu_percent": [s.cpu_percent for s in samples],
                     "memory_used": [s.memory[0] if s.memory else None for s in samples],
                     "memory_total": [s.memory[1] if s.memory else None for s in samples]}}


def _series(pairs: list) -> dict:
    return {"used": [p[0] if p else None for p in pairs],
            "total": [p[1] if p else None for p in pairs]}


def _sum(pairs: list) -> tuple | None:
    if not pairs:
        return None
    return sum(p[0] for p in pairs), sum(p[1] for p in pairs)


def node_usage(status: dict) -> tuple[dict, dict]:
    """({node id: {name: (used, total)}}, {node id: label}) of ``cluster_status()``'s alive
    nodes, the head first, at most ``MAX_NODES``.

    >>> node_usage({"nodes": [{"node_id": "a", "node_ip": "10.0.0.1", "is_head_node": True,
    ...     "state": "ALIVE", "resources_total": {"CPU": 4.0}, "resources_available":
    ...     {"CPU": 1.5}, "object_store": {"used": 10, "capacity": 100}}]})[0]
    {'a': {'CPU': (2.5, 4.0), 'object_store': (10, 100)}}
    """
    alive = [n for n in status.get("nodes", ()) if n.get("state") == "ALIVE"]
    alive.sort(key=lambda n: not n.get("is_head_node"))
    usage, labels = {}, {}
    for n in alive[:MAX_NODES]:
        total = n.get("resources_total") or {}
        available = n.get("resources_available")
        row = {}
        for name in RESOURCES:
            if total.get(name):
                free = available.get(name, 0.0) if available is not None else total[name]
                row[name] = (max(0.0, total[name] - free), total[name])
        store = n.get("object_store")
        if store:
            row[STORE] = (store["used"], store["capacity"])
        usage[n["node_id"]] = row
        labels[n["node_id"]] = {"node_ip": n.get("node_ip", ""),
                                "is_head_node": bool(n.get("is_head_node"))}
    return usage, labels


def sample_now(status: dict, clock=time.time) -> Sample:
    """One sample of the cluster (its ``cluster_status()``) and of this machine."""
    import psutil

    usage, labels = node_usage(status)
    vm = psutil.virtual_memory()
    return Sample(round(clock(), 3), usage, psutil.cpu_percent(interval=None),
                  (vm.total - vm.available, vm.total), labels)


class Sampler:
    """A daemon thread that, every ``interval_s`` until ``stop()``, asks the cluster for its
    status and its metrics and adds them to ``history`` and ``metric_history``; after
    ``give_up`` failures in a row (the cluster is gone) it calls ``on_lost`` once. It also
    calls ``after_sample`` each round: the dashboard's housekeeping rides on it.

    A metrics snapshot holds every series of the cluster, so while it has none of the
    tracked ones (no Serve, no RLlib) it is taken only every ``IDLE_METRIC_ROUNDS`` rounds."""

    IDLE_METRIC_ROUNDS = 5

    def __init__(self, cluster, history: ResourceHistory, metric_history=None, on_lost=None,
                 give_up: int = 5, after_sample=None):
        self.cluster = cluster
        self.history = history
        self.metric_history = metric_history
        self.on_lost = on_lost
        self.give_up = give_up
        self.after_sample = after_sample
        self._metric_rounds_left = 0  # rounds until the next metrics snapshot
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="skate-dashboard-sampler",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def sample_once(self) -> None:
        self.history.add(sample_now(self.cluster.status()))
        if self.metric_history is None:
            return
        if self._metric_rounds_left > 0:
            self._metric_rounds_left -= 1
            return
        self.metric_history.add(time.time(), self.cluster.metrics())
        if not self.metric_history.families():
            self._metric_rounds_left = self.IDLE_METRIC_ROUNDS - 1

    def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.sample_once()
                failures = 0
            except Exception as e:  # noqa: BLE001 - a sample is skipped, the loop goes on
                failures += 1
                log.warning("resource sample failed (%d in a row): %s", failures, e)
                if failures == self.give_up and self.on_lost is not None:
                    self.on_lost()
            if self.after_sample is not None:
                self.after_sample()
            self._stop.wait(self.history.interval_s)

"""Application metrics (Ray's ``ray.util.metrics``): Counter, Gauge, Histogram.

Usable anywhere -- a driver, a task, an actor, before ``init`` too. An update
only touches this process's table of pending updates (a dict entry under a
lock, ~1 us); every ``FLUSH_S`` the process's housekeeping thread sends what
changed to the control store in one one-way message: counters and histograms
as increments, gauges as their last value. The control store adds them up
per node (``control_store/metrics.py``), so a metric's series are keyed by its
tags plus ``NodeId``; ``skate metrics`` / the dashboard's ``/metrics`` /
``skate start --head --metrics-export-port`` show them in Prometheus' text
format with the core's own metrics (tasks and actors by state, nodes, node
resources, object store bytes, workers).

>>> from skate.util.metrics import Counter, Histogram
>>> requests = Counter("app_requests", "Requests served.", tag_keys=("route",))
>>> requests.inc(tags={"route": "/"})
>>> latency = Histogram("app_latency_s", "Latency.", boundaries=[0.01, 0.1, 1.0])
>>> latency.observe(0.05)
"""

from __future__ import annotations

import re
import threading
import time
from typing import Iterable

FLUSH_S = 1.0
COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


class _Pending:
    """This process's updates not yet sent, and the metrics it defined.

    Invariant: every key of ``counters``, ``gauges`` and ``hists`` names a metric in
    ``defs`` whose kind matches the table it is in.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.defs: dict[str, tuple] = {}  # name -> (kind, description, tag_keys, boundaries)
        self.unsent_defs: set[str] = set()
        self.counters: dict[tuple, float] = {}  # (name, tag values) -> increment
        self.gauges: dict[tuple, float] = {}  # (name, tag values) -> last value
        self.hists: dict[tuple, list] = {}  # (name, tag values) -> [bucket counts, sum, n]
        self.last_flush = 0.0

    def define(self, name: str, spec: tuple) -> None:
        with self.lock:
            known = self.defs.get(name)
            if known is not None and known[0] != spec[0]:
                raise ValueError(f"Metric {name!r} is already a {known[0]} in this process; "
                                 f"a {spec[0]} needs another name.")
            if known != spec:
                self.defs[name] = spec
                self.unsent_defs.add(name)

    def due(self, now: float) -> bool:
        return (bool(self.counters) or bool(self.gauges) or bool(self.hists)) and \
            now - self.last_flush >= FLUSH_S

    def batch(self) -> tuple | None:
        """``(definitions, counters, gauges, histograms)`` to send, or None; resets."""
        with self.lock:
            if not (self.counters or self.gauges or self.hists or self.unsent_defs):
                return None
            # every batch defines what it carries: a restarted head learns them again
            names = self.unsent_defs.union(k[0] for k in self.counters).union(
                k[0] for k in self.gauges).union(k[0] for k in self.hists)
            defs = {n: self.defs[n] for n in names}
            out = (defs, self.counters, self.gauges, self.hists)
            self.unsent_defs = set()
            self.counters, self.gauges, self.hists = {}, {}, {}
            self.last_flush = time.monotonic()
        return out

    def requeue(self, batch: tuple) -> None:
        """A batch that could not be sent goes back (gauges only where not set since)."""
        defs, counters, gauges, hists = batch
        with self.lock:
            self.unsent_defs |= set(defs)
            for k, v in counters.items():
                self.counters[k] = self.counters.get(k, 0.0) + v
            for k, v in gauges.items():
                self.gauges.setdefault(k, v)
            for k, (counts, total, n) in hists.items():
                mine = self.hists.get(k)
                if mine is None:
                    self.hists[k] = [list(counts), total, n]
                else:
                    mine[0] = [a + b for a, b in zip(mine[0], counts)]
                    mine[1] += total
                    mine[2] += n


PENDING = _Pending()


class Metric:
    """A named metric with a fixed set of tag keys (Ray's ``Metric``)."""

    kind = ""

    def __init__(self, name: str, description: str = "", tag_keys: Iterable[str] | None = None,
                 _boundaries: tuple = ()):
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"A metric name is letters, digits, '_' and ':' (not starting "
                             f"with a digit), e.g. 'app_requests'; got {name!r}.")
        if tag_keys is not None and (isinstance(tag_keys, str) or
                                     not all(isinstance(k, str) for k in tag_keys)):
            raise TypeError(f"tag_keys must be a tuple of str, got {tag_keys!r}.")
        self._name = name
        self._description = description
        self._tag_keys = tuple(tag_keys or ())
        self._default_tags: dict = {}
        self._default_key: tuple | None = (name, ()) if not self._tag_keys else None
        PENDING.define(name, (self.kind, description, self._tag_keys, _boundaries))

    @property
    def info(self) -> dict:
        return {"name": self._name, "description": self._description,
                "tag_keys": self._tag_keys, "default_tags": dict(self._default_tags)}

    def set_default_tags(self, default_tags: dict) -> "Metric":
        """Tags used when an update does not give them; returns the metric."""
        for k in default_tags:
            if k not in self._tag_keys:
                raise ValueError(f"Unknown tag key {k!r} for metric {self._name!r} "
                                 f"(its tag_keys: {self._tag_keys}).")
        self._default_tags = {k: str(v) for k, v in default_tags.items()}
        complete = all(k in self._default_tags for k in self._tag_keys)
        # updates without tags then skip building the key (a hot path's metric)
        self._default_key = (self._name, tuple(self._default_tags[k] for k in self._tag_keys)) \
            if complete else None
        return self

    def _key(self, tags: dict | None) -> tuple:
        if not tags and self._default_key is not None:
            return self._default_key
        if not self._tag_keys:
            if tags:
                raise ValueError(f"Metric {self._name!r} has no tag keys; got tags {tags!r}.")
            return (self._name, ())
        merged = dict(self._default_tags)
        if tags:
            for k, v in tags.items():
                if k not in self._tag_keys:
                    raise ValueError(f"Unknown tag key {k!r} for metric {self._name!r} "
                                     f"(its tag_keys: {self._tag_keys}).")
                merged[k] = str(v)
        missing = [k for k in self._tag_keys if k not in merged]
        if missing:
            raise ValueError(f"Metric {self._name!r} needs a value for tag(s) {missing} "
                             f"(pass tags= or set_default_tags()).")
        return (self._name, tuple(merged[k] for k in self._tag_keys))


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} takes a number, got {value!r}.")
    return float(value)


class Counter(Metric):
    """A count that only grows (Ray's ``Counter``)."""

    kind = COUNTER

    def inc(self, value: float = 1.0, tags: dict | None = None) -> None:
        value = _number(value, "Counter.inc")
        if value <= 0:
            raise ValueError(f"Counter.inc takes a positive value, got {value!r}.")
        key = self._key(tags)
        with PENDING.lock:
            PENDING.counters[key] = PENDING.counters.get(key, 0.0) + value


class Gauge(Metric):
    """A value that goes up and down, the last one set counts (Ray's ``Gauge``)."""

    kind = GAUGE

    def set(self, value: float, tags: dict | None = None) -> None:
        value = _number(value, "Gauge.set")
        key = self._key(tags)
        with PENDING.lock:
            PENDING.gauges[key] = value


class Histogram(Metric):
    """Observations counted in buckets (Ray's ``Histogram``); ``boundaries`` are the
    buckets' upper bounds, strictly increasing (a last +Inf bucket is implied)."""

    kind = HISTOGRAM

    def __init__(self, name: str, description: str = "", boundaries: list | None = None,
                 tag_keys: Iterable[str] | None = None):
        bounds = tuple(_number(b, "Histogram boundaries") for b in boundaries or ())
        if not bounds or any(a >= b for a, b in zip(bounds, bounds[1:])):
            raise ValueError(f"Histogram {name!r} needs boundaries, strictly increasing, e.g. "
                             f"[0.01, 0.1, 1]; got {boundaries!r}.")
        self._boundaries = bounds
        super().__init__(name, description, tag_keys, bounds)

    def observe(self, value: float, tags: dict | None = None) -> None:
        value = _number(value, "Histogram.observe")
        key = self._key(tags)
        bounds = self._boundaries
        i = 0
        while i < len(bounds) and value > bounds[i]:
            i += 1
        with PENDING.lock:
            h = PENDING.hists.get(key)
            if h is None:
                h = PENDING.hists[key] = [[0] * (len(bounds) + 1), 0.0, 0]
            h[0][i] += 1
            h[1] += value
            h[2] += 1


def snapshot(timeout: float = 10.0, address: str | None = None,
             prefixes: Iterable[str] | None = None) -> list[dict]:
    """Every metric of the cluster, the core's included (only those whose name starts with
    one of ``prefixes``, if given: ``["serve_"]``), as families::

        [{"name": "app_requests", "kind": "counter", "description": "...",
          "tag_keys": ["route", "NodeId"], "boundaries": [],
          "samples": [{"tags": {"route": "/", "NodeId": "..."}, "value": 3.0}]}]

    A histogram's sample value is ``{"buckets": [count per bucket], "sum": s, "count": n}``.
    """
    from skate.core.state_query import _store

    if isinstance(prefixes, str):
        raise TypeError("prefixes is a list of name prefixes, e.g. ['serve_'].")
    with _store(address) as store:
        return store.metrics(list(prefixes) if prefixes else None, timeout=timeout)


def prometheus_text(timeout: float = 10.0, address: str | None = None) -> str:
    """The cluster's metrics in Prometheus' text exposition format (what ``/metrics``
    answers). Needs the ``prometheus_client`` package."""
    from skate.core.metrics_export import render

    return render(snapshot(timeout, address))

"""The libraries' metrics over the last minutes: Serve's requests and latencies, RLlib's
env steps and returns, sampled from ``skate.util.metrics.snapshot()``.

The metrics are cumulative (a counter, a histogram's buckets) or a last value
(a gauge); a plot over time needs them sampled. Each sample keeps only the
families in ``TRACKED``, each summed over the tags not named there (a
deployment's replicas add up to the deployment), at most ``MAX_SERIES``
series -- so a sample is a few numbers per deployment or algorithm and the
ring (``window_s`` / ``interval_s`` samples) stays small. Rates and
quantiles are computed when asked, from consecutive samples: requests per
second is the counter's rise over the interval, p50/p99 the quantiles of the
histogram buckets' rise (interpolated within a bucket, as Prometheus'
``histogram_quantile`` does).

>>> h = MetricHistory(window_s=60, interval_s=2)
>>> fam = lambda n: [{"name": "serve_deployment_request_counter", "kind": "counter",
...     "tag_keys": ["application", "deployment", "replica"], "boundaries": [],
...     "samples": [{"tags": {"application": "app", "deployment": "D", "replica": r},
...                  "value": n} for r in ("r1", "r2")]}]
>>> h.add(0.0, fam(1)); h.add(2.0, fam(6))
>>> h.serve()["deployments"][0]["qps"]
[None, 5.0]
"""

from __future__ import annotations

import collections

from skate.dashboard.history import Ring

#: family -> the tags its series are kept by (the others are summed over)
TRACKED = {
    "serve_deployment_request_counter": ("application", "deployment"),
    "serve_deployment_error_counter": ("application", "deployment"),
    "serve_deployment_processing_latency_ms": ("application", "deployment"),
    "rllib_env_steps_sampled": ("algorithm",),
    "rllib_env_steps_per_s": ("algorithm",),
    "rllib_episode_return_mean": ("algorithm",),
}
SERVE_REQUESTS, SERVE_ERRORS, SERVE_LATENCY = (
    "serve_deployment_request_counter", "serve_deployment_error_counter",
    "serve_deployment_processing_latency_ms")
RLLIB = ("rllib_env_steps_sampled", "rllib_env_steps_per_s", "rllib_episode_return_mean")
MAX_SERIES = 256


def extract(families: list) -> tuple[dict, dict]:
    """({(family, tag values): value}, {family: boundaries}) of the tracked families; a
    histogram's value is (buckets, sum, count), summed; gauges are averaged."""
    values: dict = {}
    bounds: dict = {}
    for f in families:
        keep = TRACKED.get(f["name"])
        if keep is None:
            continue
        seen: collections.Counter = collections.Counter()
        for s in f["samples"]:
            key = (f["name"], tuple(s["tags"].get(k, "") for k in keep))
            if key not in values and len(values) >= MAX_SERIES:
                continue
            v = s["value"]
            if f["kind"] == "histogram":
                bounds[f["name"]] = tuple(f["boundaries"])
                old = values.get(key)
                values[key] = (tuple(v["buckets"]), v["sum"], v["count"]) if old is None else (
                    tuple(a + b for a, b in zip(old[0], v["buckets"])), old[1] + v["sum"],
                    old[2] + v["count"])
            elif f["kind"] == "gauge":
                seen[key] += 1
                values[key] = values.get(key, 0.0) + (v - values.get(key, 0.0)) / seen[key]
            else:
                values[key] = values.get(key, 0.0) + v
    return values, bounds


def quantile(q: float, buckets, boundaries) -> float | None:
    """The ``q`` quantile of a histogram's (non-cumulative) bucket counts, or None if empty.

    >>> quantile(0.5, [0, 10, 0], [1.0, 2.0])  # all ten between 1 and 2 ms
    1.5
    """
    total = sum(buckets)
    if total <= 0:
        return None
    rank, below = q * total, 0.0
    for i, n in enumerate(buckets):
        if n > 0 and below + n >= rank:
            if i >= len(boundaries):  # the +Inf bucket: its lower bound is all we know
                return float(boundaries[-1]) if boundaries else None
            lower = float(boundaries[i - 1]) if i > 0 else 0.0
            return lower + (float(boundaries[i]) - lower) * (rank - below) / n
        below += n
    return float(boundaries[-1]) if boundaries else None


class MetricHistory:
    """The last ``window_s`` seconds of samples of the tracked families (thread-safe)."""

    def __init__(self, window_s: float = 600.0, interval_s: float = 2.0):
        self.interval_s = interval_s
        self._ring = Ring(window_s, interval_s)  # (t, {(family, tags): value})
        self._bounds: dict = {}  # histogram family -> its bucket boundaries

    def add(self, t: float, families: list) -> None:
        values, bounds = extract(families)
        self._bounds.update(bounds)
        self._ring.add((t, values))

    def families(self) -> set:
        """The tracked families the latest sample has."""
        latest = self._ring.latest()
        return {family for family, _ in latest[1]} if latest else set()

    def serve(self) -> dict:
        """``{"t": [...], "deployments": [{"application", "deployment", "qps",
        "errors_per_s", "p50_ms", "p99_ms"}]}``: one value per sample, None for the first
        and wherever a deployment had no sample (or, for latencies, no request)."""
        samples = self._ring.window()
        t = [s[0] for s in samples]
        keys = list(dict.fromkeys(tags for _, values in samples for family, tags in values
                                  if family == SERVE_REQUESTS))
        bounds = self._bounds.get(SERVE_LATENCY, ())
        out = []
        for tags in keys:
            requests = [v.get((SERVE_REQUESTS, tags)) for _, v in samples]
            errors = [v.get((SERVE_ERRORS, tags)) for _, v in samples]
            hist = [v.get((SERVE_LATENCY, tags)) for _, v in samples]
            p50, p99 = [None], [None]
            for prev, cur in zip(hist, hist[1:]):
                rise = _rise_buckets(prev, cur)
                p50.append(None if rise is None else quantile(0.5, rise, bounds))
                p99.append(None if rise is None else quantile(0.99, rise, bounds))
            out.append({"application": tags[0], "deployment": tags[1],
                        "qps": _rate(t, requests), "errors_per_s": _rate(t, errors),
                        "p50_ms": p50[:len(t)], "p99_ms": p99[:len(t)]})
        return {"t": t, "deployments": out, "interval_s": self.interval_s}

    def rllib(self) -> dict:
        """``{"t": [...], "algorithms": [{"algorithm", "env_steps_per_s",
        "episode_return_mean", "env_steps_sampled"}]}``, the gauges and counter as
        sampled."""
        samples = self._ring.window()
        t = [s[0] for s in samples]
        keys = list(dict.fromkeys(tags for _, values in samples for family, tags in values
                                  if family in RLLIB))
        out = [{"algorithm": tags[0],
                **{family[len("rllib_"):]: [v.get((family, tags)) for _, v in samples]
                   for family in RLLIB}} for tags in keys]
        return {"t": t, "algorithms": out, "interval_s": self.interval_s}


def _rate(t: list, values: list) -> list:
    """Per-second rise of a counter between samples (a fall -- a replica gone -- is 0)."""
    out: list = [None]
    for i in range(1, len(values)):
        a, b = values[i - 1], values[i]
        dt = t[i] - t[i - 1]
        out.append(None if a is None or b is None or dt <= 0 else max(0.0, b - a) / dt)
    return out[:len(values)]


def _rise_buckets(prev, cur):
    if prev is None or cur is None:
        return None
    rise = [max(0, b - a) for a, b in zip(prev[0], cur[0])]
    return rise if sum(rise) > 0 else None

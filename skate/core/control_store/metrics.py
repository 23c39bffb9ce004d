"""The cluster's metrics, added up per node: what processes report, kept for scrapes.

Every process sends, about once a second, what changed in its metrics
(``skate/core/metrics.py``): definitions it has not sent yet, counter and
histogram increments, gauges' last values. ``MetricsTable.apply`` adds them
into one series per (metric, node, tag values): counters and histograms sum
across the node's processes, a gauge takes the last value any of them set.
``families()`` answers a scrape.

Bounded: at most ``MAX_SERIES`` series; updates for new series beyond that are
dropped and counted (``dropped``), so a metric tagged with an unbounded value
(a request id) cannot grow the head without limit. A name keeps its first
definition; a later one of another kind or tag keys is refused (counted too).

Invariants (``validate()``): every series names a defined metric; a counter's
value is >= 0; a histogram's bucket count matches its boundaries (+1 for
+Inf) and its count is the sum of its buckets.
"""

from __future__ import annotations

from typing import Any

MAX_SERIES = 50_000


class MetricsTable:
    def __init__(self, max_series: int = MAX_SERIES):
        self.max_series = max_series
        self.defs: dict[str, tuple] = {}  # name -> (kind, description, tag_keys, boundaries)
        # (name, node id, tag values) -> a float, or [bucket counts, sum, count]
        self.series: dict[tuple, Any] = {}
        self.dropped = 0  # updates refused: past max_series, or of a conflicting definition

    def apply(self, node_id: str, batch: tuple) -> None:
        defs, counters, gauges, hists = batch
        for name, spec in defs.items():
            known = self.defs.get(name)
            if known is None:
                self.defs[name] = tuple(spec)
            elif known[0] != spec[0] or tuple(known[2]) != tuple(spec[2]):
                self.dropped += 1
        for (name, tags), inc in counters.items():
            key = self._key(name, "counter", node_id, tags)
            if key is not None:
                self.series[key] = self.series.get(key, 0.0) + inc
        for (name, tags), value in gauges.items():
            key = self._key(name, "gauge", node_id, tags)
            if key is not None:
                self.series[key] = value
        for (name, tags), (counts, total, n) in hists.items():
            key = self._key(name, "histogram", node_id, tags)
            if key is None:
                continue
            if len(counts) != len(self.defs[name][3]) + 1:
                self.dropped += 1
                continue
            h = self.series.get(key)
            if h is None:
                self.series[key] = [list(counts), total, n]
            else:
                h[0] = [a + b for a, b in zip(h[0], counts)]
                h[1] += total
                h[2] += n

    def _key(self, name: str, kind: str, node_id: str, tags: tuple) -> tuple | None:
        spec = self.defs.get(name)
        if spec is None or spec[0] != kind or len(tags) != len(spec[2]):
            self.dropped += 1
            return None
        key = (name, node_id, tuple(tags))
        if key not in self.series and len(self.series) >= self.max_series:
            self.dropped += 1
            return None
        return key

    def families(self, prefixes: tuple | None = None) -> list[dict]:
        """Every metric (or those whose name starts with one of ``prefixes``) with its
        series, ``NodeId`` added to the tags (snapshot's shape)."""
        out: dict[str, dict] = {}
        for name, (kind, description, tag_keys, boundaries) in self.defs.items():
            if prefixes is not None and not name.startswith(prefixes):
                continue
            out[name] = {"name": name, "kind": kind, "description": description,
                         "tag_keys": [*tag_keys, "NodeId"], "boundaries": list(boundaries),
                         "samples": []}
        for (name, node_id, tags), value in self.series.items():
            fam = out.get(name)
            if fam is None:  # filtered out
                continue
            labels = dict(zip(fam["tag_keys"], (*tags, node_id)))
            if fam["kind"] == "histogram":
                counts, total, n = value
                value = {"buckets": list(counts), "sum": total, "count": n}
            fam["samples"].append({"tags": labels, "value": value})
        return list(out.values())

    def forget_node(self, node_id: str) -> None:
        """A dead node's gauges say nothing any more (its counters stay: they happened)."""
        for key in [k for k in self.series if k[1] == node_id
                    and self.defs[k[0]][0] == "gauge"]:
            del self.series[key]

    def validate(self) -> None:
        for (name, _node, tags), value in self.series.items():
            spec = self.defs.get(name)
            assert spec is not None, f"{name}: a series of an undefined metric"
            assert len(tags) == len(spec[2]), f"{name}: tags {tags} vs keys {spec[2]}"
            if spec[0] == "counter":
                assert value >= 0, f"{name}: negative counter"
            if spec[0] == "histogram":
                counts, _total, n = value
                assert len(counts) == len(spec[3]) + 1, f"{name}: buckets vs boundaries"
                assert sum(counts) == n, f"{name}: count is not the buckets' sum"


def core_families(nodes, actors, tasks) -> list[dict]:
    """The control store's own metrics, computed at scrape time from its tables: nodes by
    state, each node's resources (total and available), actors by state, task attempts
    by state (the bounded history's counts)."""
    def family(name, description, tag_keys, samples):
        return {"name": name, "kind": "gauge", "description": description,
                "tag_keys": list(tag_keys), "boundaries": [],
                "samples": [{"tags": dict(zip(tag_keys, tags)), "value": float(v)}
                            for tags, v in samples]}

    by_state: dict = {}
    for info in nodes.info.values():
        state = "ALIVE" if info["Alive"] else "DEAD"
        by_state[state] = by_state.get(state, 0) + 1
    resources = []
    for node_id, info in nodes.info.items():
        if not info["Alive"]:
            continue
        avail = nodes.available.get(node_id, info["Resources"])
        for k, v in info["Resources"].items():
            if k.startswith("node:") or "_group_" in k:
                continue
            resources.append(((node_id, k, "total"), v))
            resources.append(((node_id, k, "available"), avail.get(k, 0)))
    actor_states: dict = {}
    for a in actors.actors.values():
        actor_states[str(a.state)] = actor_states.get(str(a.state), 0) + 1
    task_states: dict = {}
    for counts in tasks.summary()["summary"].values():
        for state, n in counts.items():
            task_states[state] = task_states.get(state, 0) + n
    return [
        family("skate_nodes", "Nodes by state.", ("State",),
               [((s,), n) for s, n in sorted(by_state.items())]),
        family("skate_node_resources", "Each node's resources: total and available.",
               ("NodeId", "Resource", "Kind"), resources),
        family("skate_actors", "Actors by state.", ("State",),
               [((s,), n) for s, n in sorted(actor_states.items())]),
        family("skate_tasks", "Task attempts in the history, by their latest state.",
               ("State",), [((s,), n) for s, n in sorted(task_states.items())]),
    ]

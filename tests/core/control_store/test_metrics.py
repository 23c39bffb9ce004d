"""The control store's metrics table (control_store/metrics.py): pure, no cluster."""

import pytest

from skate.core.control_store.metrics import MetricsTable

pytestmark = pytest.mark.skate_only

C = ("counter", "Requests.", ("route",), ())
G = ("gauge", "Temp.", (), ())
H = ("histogram", "Latency.", (), (0.1, 1.0))


def feed(table, node, defs=None, counters=None, gauges=None, hists=None):
    table.apply(node, (defs or {}, counters or {}, gauges or {}, hists or {}))
    table.validate()


def samples(table, name):
    (fam,) = [f for f in table.families() if f["name"] == name]
    return {tuple(sorted(s["tags"].items())): s["value"] for s in fam["samples"]}


def test_counters_sum_per_node_gauges_keep_the_last_value():
    t = MetricsTable()
    feed(t, "n1", {"req": C, "temp": G}, {("req", ("/",)): 2.0}, {("temp", ()): 20.0})
    feed(t, "n1", {"req": C}, {("req", ("/",)): 3.0}, {("temp", ()): 21.5})
    feed(t, "n2", {"req": C}, {("req", ("/",)): 1.0})
    assert samples(t, "req") == {(("NodeId", "n1"), ("route", "/")): 5.0,
                                 (("NodeId", "n2"), ("route", "/")): 1.0}
    assert samples(t, "temp") == {(("NodeId", "n1"),): 21.5}
    (req,) = [f for f in t.families() if f["name"] == "req"]
    assert req["kind"] == "counter" and req["tag_keys"] == ["route", "NodeId"]


def test_histograms_add_bucket_counts():
    t = MetricsTable()
    feed(t, "n1", {"lat": H}, hists={("lat", ()): [[1, 2, 0], 1.5, 3]})
    feed(t, "n1", {"lat": H}, hists={("lat", ()): [[0, 1, 1], 3.2, 2]})
    assert samples(t, "lat") == {(("NodeId", "n1"),): {"buckets": [1, 3, 1], "sum": 4.7,
                                                        "count": 5}}
    feed(t, "n1", {"lat": H}, hists={("lat", ()): [[1, 1], 1.0, 2]})  # wrong bucket count
    assert t.dropped == 1 and samples(t, "lat")[(("NodeId", "n1"),)]["count"] == 5


def test_conflicts_and_unknown_series_are_refused_and_counted():
    t = MetricsTable()
    feed(t, "n1", {"req": C}, {("req", ("/",)): 1.0})
    feed(t, "n1", {"req": G}, gauges={("req", ("/",)): 9.0})  # another kind, same name
    feed(t, "n1", counters={("nobody", ()): 1.0})  # never defined
    feed(t, "n1", counters={("req", ("/", "extra")): 1.0})  # wrong number of tags
    assert t.dropped == 4 and samples(t, "req") == {(("NodeId", "n1"), ("route", "/")): 1.0}


def test_series_are_bounded():
    t = MetricsTable(max_series=3)
    feed(t, "n1", {"req": C}, {("req", (str(i),)): 1.0 for i in range(5)})
    assert len(samples(t, "req")) == 3 and t.dropped == 2
    feed(t, "n1", {"req": C}, {("req", ("0",)): 1.0})  # an existing series still counts
    assert samples(t, "req")[(("NodeId", "n1"), ("route", "0"))] == 2.0


def test_a_dead_nodes_gauges_go_its_counters_stay():
    t = MetricsTable()
    feed(t, "n1", {"req": C, "temp": G}, {("req", ("/",)): 1.0}, {("temp", ()): 3.0})
    t.forget_node("n1")
    t.validate()
    assert samples(t, "temp") == {} and len(samples(t, "req")) == 1


def test_families_filtered_by_prefix():
    t = MetricsTable()
    feed(t, "n1", {"req": C, "temp": G}, {("req", ("/",)): 1.0}, {("temp", ()): 3.0})
    assert [f["name"] for f in t.families(("te",))] == ["temp"]
    assert [f["name"] for f in t.families(("x", "req"))] == ["req"]
    assert t.families(("nothing",)) == []

"""The dashboard's rings of samples: per-node resources as nodes come and go, the library
metrics' rates and quantiles, and the sampler's pacing -- pure, no processes."""

import pytest

from skate.dashboard.history import ResourceHistory, Sample, Sampler, node_usage
from skate.dashboard.metric_history import MetricHistory, extract, quantile
from tests.dashboard.fakes import FakeCluster

pytestmark = pytest.mark.skate_only


def test_a_node_that_joins_later_has_gaps_before():
    h = ResourceHistory(window_s=100, interval_s=2)
    h.add(Sample(0, {"a": {"CPU": (1.0, 2.0)}}))
    h.add(Sample(2, {"a": {"CPU": (2.0, 2.0)}, "b": {"CPU": (0.0, 4.0), "GPU": (1.0, 1.0)}}))
    cols = h.columns()
    assert cols["nodes"]["b"]["CPU"] == {"used": [None, 0.0], "total": [None, 4.0]}
    assert cols["nodes"]["b"]["GPU"]["used"] == [None, 1.0]
    assert cols["resources"]["CPU"] == {"used": [1.0, 2.0], "total": [2.0, 6.0]}


def test_dead_nodes_are_left_out_and_the_head_comes_first():
    status = {"nodes": [
        {"node_id": "w", "state": "ALIVE", "resources_total": {"CPU": 1.0},
         "resources_available": None, "object_store": None},  # it did not answer
        {"node_id": "d", "state": "DEAD", "resources_total": {"CPU": 8.0}},
        {"node_id": "h", "state": "ALIVE", "is_head_node": True, "node_ip": "10.0.0.1",
         "resources_total": {"CPU": 2.0, "memory": 100.0},
         "resources_available": {"CPU": 2.0, "memory": 40.0}, "object_store": None}]}
    usage, labels = node_usage(status)
    assert list(usage) == ["h", "w"]
    assert usage == {"h": {"CPU": (0.0, 2.0), "memory": (60.0, 100.0)}, "w": {"CPU": (0.0, 1.0)}}
    assert labels["h"] == {"node_ip": "10.0.0.1", "is_head_node": True}


def _family(name, kind, samples, tag_keys=("application", "deployment", "replica"),
            boundaries=()):
    return {"name": name, "kind": kind, "description": "", "tag_keys": list(tag_keys),
            "boundaries": list(boundaries), "samples": samples}


def test_gauges_are_averaged_counters_and_histograms_summed_untracked_dropped():
    values, bounds = extract([
        _family("rllib_episode_return_mean", "gauge", [
            {"tags": {"algorithm": "PPO", "NodeId": n}, "value": v} for n, v in (("a", 10.0),
                                                                                 ("b", 20.0))],
            tag_keys=("algorithm", "NodeId")),
        _family("serve_deployment_processing_latency_ms", "histogram", [
            {"tags": {"application": "x", "deployment": "D", "replica": r},
             "value": {"buckets": [1, 2, 0], "sum": 3.0, "count": 3}} for r in ("r1", "r2")],
            boundaries=(1.0, 5.0)),
        _family("app_requests", "counter", [{"tags": {}, "value": 1.0}], tag_keys=())])
    assert values == {("rllib_episode_return_mean", ("PPO",)): 15.0,
                      ("serve_deployment_processing_latency_ms", ("x", "D")): ((2, 4, 0), 6.0, 6)}
    assert bounds == {"serve_deployment_processing_latency_ms": (1.0, 5.0)}


def test_quantiles_interpolate_within_a_bucket():
    bounds = [1.0, 5.0, 10.0]
    assert quantile(0.5, [0, 0, 0, 0], bounds) is None
    assert quantile(0.5, [4, 0, 0, 0], bounds) == 0.5
    assert quantile(0.99, [0, 0, 0, 3], bounds) == 10.0  # +Inf: its lower bound
    assert quantile(0.25, [1, 1, 1, 1], bounds) == 1.0


def test_a_counter_that_falls_is_no_negative_rate():
    h = MetricHistory(window_s=60, interval_s=2)

    def requests(n):
        return [_family("serve_deployment_request_counter", "counter", [
            {"tags": {"application": "x", "deployment": "D", "replica": "r"}, "value": n}])]

    for t, n in ((0.0, 10.0), (2.0, 14.0), (4.0, 3.0), (6.0, 9.0)):  # a replica replaced at 4
        h.add(t, requests(n))
    (dep,) = h.serve()["deployments"]
    assert dep["qps"] == [None, 2.0, 0.0, 3.0]
    assert dep["p50_ms"] == [None, None, None, None]  # no latency histogram sampled


def test_metrics_are_sampled_rarely_while_no_library_reports():
    cluster = FakeCluster()
    calls = []
    cluster.metrics = lambda: calls.append(1) or []
    history, metric_history = ResourceHistory(), MetricHistory()
    sampler = Sampler(cluster, history, metric_history)
    for _ in range(12):
        sampler.sample_once()
    assert len(history) == 12 and len(calls) == 3  # rounds 1, 6 and 11
    cluster.metrics = lambda: calls.append(1) or [_family(
        "rllib_env_steps_per_s", "gauge", [{"tags": {"algorithm": "PPO"}, "value": 1.0}],
        tag_keys=("algorithm",))]
    for _ in range(8):
        sampler.sample_once()
    assert len(calls) == 3 + 5  # rounds 16 to 20: every round once one reports

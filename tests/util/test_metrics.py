"""skate.util.metrics: Counter, Gauge and Histogram from drivers and tasks, summed per node
at the control store, in Prometheus' format from skate.util.metrics and the exporter."""

import urllib.request

import pytest

import skate
from skate.util import metrics
from skate.util.metrics import Counter, Gauge, Histogram
from tests.core.utils import wait_for_condition

pytestmark = pytest.mark.skate_only  # these go through Skate's control store


@pytest.fixture
def cluster(start_cluster):
    return start_cluster(num_cpus=2)


def family(name):
    return next((f for f in metrics.snapshot() if f["name"] == name), None)


def values(name):
    f = family(name)
    keys = [] if f is None else [k for k in f["tag_keys"] if k != "NodeId"]
    return {} if f is None else {tuple(s["tags"][k] for k in keys): s["value"]
                                 for s in f["samples"]}


def test_mistakes_are_clear_errors():
    with pytest.raises(ValueError, match="metric name"):
        Counter("9lives")
    with pytest.raises(TypeError, match="tag_keys"):
        Counter("m_tags", tag_keys="route")
    c = Counter("m_c", tag_keys=("route",))
    with pytest.raises(ValueError, match="needs a value for tag"):
        c.inc()
    with pytest.raises(ValueError, match="Unknown tag key 'colour'"):
        c.inc(tags={"route": "/", "colour": "red"})
    with pytest.raises(ValueError, match="positive"):
        c.inc(-1, tags={"route": "/"})
    with pytest.raises(TypeError, match="number"):
        Gauge("m_g").set("high")
    with pytest.raises(ValueError, match="strictly increasing"):
        Histogram("m_h", boundaries=[1, 1])
    with pytest.raises(ValueError, match="needs boundaries"):
        Histogram("m_h2")
    with pytest.raises(ValueError, match="already a counter"):
        Gauge("m_c")


@skate.remote
def work(i):
    from skate.util.metrics import Counter, Histogram

    Counter("app_requests", "Requests.", tag_keys=("route",)).inc(tags={"route": "/task"})
    Histogram("app_latency_s", "Latency.", boundaries=[0.1, 1.0]).observe(i * 0.3)
    return i


def test_tasks_and_driver_metrics_summed_per_node(cluster):
    Counter("app_requests", "Requests.", tag_keys=("route",)).set_default_tags(
        {"route": "/"}).inc(2)
    Gauge("app_temperature", "Temperature.").set(21.5)
    assert skate.get([work.remote(i) for i in range(5)]) == list(range(5))
    node = skate.get_runtime_context().get_node_id()
    wait_for_condition(lambda: values("app_requests") == {("/",): 2.0, ("/task",): 5.0},
                       timeout=15)
    assert values("app_temperature") == {(): 21.5}
    (lat,) = family("app_latency_s")["samples"]
    assert lat["tags"] == {"NodeId": node}
    assert lat["value"] == {"buckets": [1, 3, 1], "sum": pytest.approx(3.0), "count": 5}
    wait_for_condition(lambda: values("skate_tasks").get(("FINISHED",), 0) >= 5)
    assert values("skate_nodes") == {("ALIVE",): 1.0}
    wait_for_condition(lambda: values("skate_object_store_capacity_bytes"), timeout=15)
    workers = values("skate_workers")
    assert set(workers) == {("STARTING",), ("IDLE",), ("LEASED",)}

    assert {f["name"] for f in metrics.snapshot(prefixes=["app_"])} == \
        {"app_requests", "app_latency_s", "app_temperature"}
    assert [f["name"] for f in metrics.snapshot(prefixes=["skate_nodes"])] == ["skate_nodes"]
    text = metrics.prometheus_text()
    assert f'app_requests_total{{NodeId="{node}",route="/task"}} 5.0' in text
    assert f'app_latency_s_bucket{{NodeId="{node}",le="1.0"}} 4.0' in text
    assert "# TYPE skate_node_resources gauge" in text


def test_the_export_endpoint_serves_the_text(cluster):
    from skate.core.metrics_export import serve

    Counter("app_scraped", "Scrapes.").inc()
    server, thread = serve(0)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"

        def scraped():
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status == 200 and "app_scraped_total" in r.read().decode()

        wait_for_condition(scraped, timeout=15)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

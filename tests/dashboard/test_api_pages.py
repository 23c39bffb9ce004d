"""The API of the Logs, Objects, Tune/Train, Serve and RLlib pages and of /metrics, over a
fake cluster (no Skate processes): exact answers, checks, errors as JSON, and a log stream
whose generator is closed when its client goes."""

import json
import threading
from types import SimpleNamespace

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")  # starlette's TestClient
from starlette.testclient import TestClient

from skate.dashboard.app import Context, create_app
from skate.dashboard.metric_history import MetricHistory
from skate.tune.experiment_summary import ExperimentSummary
from tests.core.utils import wait_for_condition
from tests.dashboard.fakes import FakeCluster, actor, obj

pytestmark = pytest.mark.skate_only

TOKEN = "s3cret"
LOG = "worker-w1-1000.out"  # actor 0's output (pid 1000)


def _client(cluster, metric_history=None, read_token=False):
    app = create_app(Context(cluster, None, None, TOKEN, read_token, "0.1.0", metric_history))
    return TestClient(app)


def _wait(fn, timeout=5.0):
    wait_for_condition(fn, timeout=timeout, retry_interval_ms=10)


# -- logs ---------------------------------------------------------------------------------
@pytest.fixture
def logs_cluster():
    return FakeCluster(actors=[actor(0)], logs={
        "n1": {LOG: [f"line {i}" for i in range(5)], "worker-w1-1000.err": ["oops"],
               "raylet.log": ["started"]},
        "n2": {"worker-w2-7.out": ["elsewhere"]}})


def test_log_files_per_node(logs_cluster):
    r = _client(logs_cluster).get("/api/logs").json()
    assert r == {"nodes": [
        {"node_id": "n1", "node_ip": "127.0.0.1", "is_head_node": True,
         "files": {"other": ["raylet.log"], "worker_err": ["worker-w1-1000.err"],
                   "worker_out": [LOG]}},
        {"node_id": "n2", "node_ip": "", "is_head_node": False,
         "files": {"worker_out": ["worker-w2-7.out"]}}]}
    assert [n["node_id"] for n in _client(logs_cluster).get("/api/logs?node_id=n2")
            .json()["nodes"]] == ["n2"]


def test_a_log_files_tail_by_name_actor_and_pid(logs_cluster):
    client = _client(logs_cluster)
    r = client.get(f"/api/logs/file?filename={LOG}&tail=2").json()
    assert r == {"lines": ["line 3", "line 4"], "tail": 2, "filename": LOG}
    by_actor = client.get(f"/api/logs/file?actor_id={0:032x}&suffix=err").json()
    assert by_actor["lines"] == ["oops"]
    by_pid = client.get("/api/logs/file?pid=7&node_id=n2").json()
    assert by_pid["lines"] == ["elsewhere"]


@pytest.mark.parametrize("query,status,words", [
    ("", 400, "Name one log: filename"),
    (f"filename={LOG}&pid=3", 400, "got filename and pid"),
    ("filename=../../etc/passwd", 400, "filename must be a file name"),
    ("actor_id=zz", 400, "actor_id must be a hex id"),
    ("pid=x", 400, "pid must be a whole number"),
    (f"filename={LOG}&tail=0", 400, "tail must be a whole number from 1-10000"),
    (f"filename={LOG}&suffix=log", 400, "suffix must be one of out, err"),
    ("filename=nothing.log", 404, "No out log for that process"),
    (f"actor_id={9:032x}", 404, "No such actor"),
    ("pid=1&node_id=n9", 404, "No alive node n9."),
])
def test_log_queries_that_name_no_log(logs_cluster, query, status, words):
    for path in ("/api/logs/file?", "/api/logs/stream?"):
        r = _client(logs_cluster).get(path + query)
        assert r.status_code == status and words in r.json()["error"], (path, r.json())


def test_the_live_tail_delivers_new_lines_and_closes_when_the_client_goes(logs_cluster):
    client = _client(logs_cluster)
    with client.stream("GET", f"/api/logs/stream?actor_id={0:032x}&tail=2") as r:
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
        lines = r.iter_lines()
        assert [next(lines), next(lines)] == ["line 3", "line 4"]
        threading.Timer(0.2, logs_cluster.append_log, ("n1", LOG, "new line")).start()
        assert next(lines) == "new line"
        assert logs_cluster.open_streams == 1
    # the client went while the log was quiet: the generator (and, for the real one, its
    # node connection) is closed all the same
    _wait(lambda: logs_cluster.open_streams == 0)
    assert not [t for t in threading.enumerate() if t.name == "skate-dashboard-log"]


# -- objects ------------------------------------------------------------------------------
def test_objects_pages_filters_and_summary():
    cluster = FakeCluster(objects=[
        obj(1, 5_000, "f.remote()"), obj(2, 10 * 2**20), obj(3, 2 * 2**20),
        obj(4, None, "f.remote()", ref="BORROWED_BY_OTHERS")])
    client = _client(cluster)
    page = client.get("/api/objects?per_page=2").json()
    assert (page["total"], page["pages"]) == (4, 2)
    assert [o["object_id"] for o in page["objects"]] == [f"{2:040x}", f"{3:040x}"]  # biggest
    assert page["summary"] == {"total_references": 4, "total_objects": 4, "by_reference_type": {
        "LOCAL_REFERENCE": 3, "BORROWED_BY_OTHERS": 1}}
    site = client.get("/api/objects?call_site=f.remote()").json()
    assert [o["object_id"] for o in site["objects"]] == [f"{1:040x}", f"{4:040x}"]
    borrowed = client.get("/api/objects?reference_type=BORROWED_BY_OTHERS").json()
    assert borrowed["total"] == 1
    assert client.get("/api/objects?reference_type=PINNED").status_code == 400
    s = client.get("/api/objects/summary").json()
    assert s["by_call_site"]["skate.put()"] == {"total_objects": 2, "total_size_mb": 12.0}
    assert (s["total_objects"], s["partial"]) == (4, 0)
    assert s["stores"] == [{"node_id": "n1", "node_ip": "127.0.0.1", "is_head_node": True,
                            "capacity": 1000, "used": 250, "num_objects": 3,
                            "num_in_memory": 2, "num_spilled": 1, "spilled_bytes_total": 80,
                            "restored_bytes_total": 0}]


# -- metrics ------------------------------------------------------------------------------
def _counter(name, tag_keys, values):
    return {"name": name, "kind": "counter", "description": "", "tag_keys": list(tag_keys),
            "boundaries": [], "samples": [{"tags": dict(zip(tag_keys, tags)), "value": v}
                                          for tags, v in values]}


def _histogram(name, tag_keys, boundaries, values):
    return {"name": name, "kind": "histogram", "description": "", "tag_keys": list(tag_keys),
            "boundaries": boundaries,
            "samples": [{"tags": dict(zip(tag_keys, tags)),
                         "value": {"buckets": b, "sum": s, "count": sum(b)}}
                        for tags, b, s in values]}


def test_metrics_in_prometheus_text_and_json():
    cluster = FakeCluster(families=[_counter("app_jobs_done", ["kind"], [(["a"], 3.0)])])
    client = _client(cluster)
    r = client.get("/metrics")
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert 'app_jobs_done_total{kind="a"} 3.0' in r.text
    assert client.get("/api/metrics").json()["families"][0]["name"] == "app_jobs_done"
    gated = _client(cluster, read_token=True)
    assert gated.get("/metrics").status_code == 401
    assert gated.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


# -- tune and train ------------------------------------------------------------------------
def _trial(i, status, lr):
    return SimpleNamespace(trial_id=f"t{i}", status=status, config={"lr": lr, "model": {"w": 8}},
                           evaluated_params={}, error_msg=None if status != "ERROR" else
                           "Traceback ...\nValueError: diverged")


def _published(kind, name, trials, results, start=100.0):
    s = ExperimentSummary(name, kind, metric="loss", mode="min", clock=lambda: start)
    for trial, rows in zip(trials, results):
        for row in rows:
            s.on_result(trial, row)
    return ("skate_dashboard", s.key), json.dumps(s.build(trials, finished=True)).encode()


def _tune_cluster():
    a, b = _trial(1, "TERMINATED", 0.1), _trial(2, "ERROR", 1.0)
    rows = [[{"training_iteration": i, "loss": 1.0 / i, "acc": 0.5} for i in (1, 2, 3)],
            [{"training_iteration": 1, "loss": 9.0}]]
    tune_kv = _published("tune", "sweep", [a, b], rows, start=200.0)
    train_kv = _published("train", "TorchTrainer_x", [_trial(3, "RUNNING", 0.0)],
                          [[{"training_iteration": 1, "loss": 0.7}]], start=100.0)
    return FakeCluster(kv=dict([tune_kv, train_kv, (("skate_dashboard", "tune/x"), b"junk")]))


def test_tune_experiments_are_listed_by_kind():
    client = _client(_tune_cluster())
    listed = client.get("/api/tune").json()["experiments"]
    assert [(e["name"], e["kind"], e["status"], e["num_trials"]) for e in listed] == [
        ("sweep", "tune", "FINISHED", 2), ("TorchTrainer_x", "train", "FINISHED", 1)]
    assert listed[0]["trial_counts"] == {"TERMINATED": 1, "ERROR": 1}
    assert listed[0]["metrics"] == ["loss", "acc"] and "trials" not in listed[0]
    train = client.get("/api/tune?kind=train").json()["experiments"]
    assert [e["name"] for e in train] == ["TorchTrainer_x"]
    assert client.get("/api/tune?kind=sgd").status_code == 400


def test_a_tune_experiment_has_its_trials_and_curves():
    client = _client(_tune_cluster())
    exp = client.get("/api/tune/tune/sweep").json()
    first, second = exp["trials"]
    assert (first["trial_id"], first["status"], first["config"]) == (
        "t1", "TERMINATED", {"lr": 0.1, "model/w": 8})
    assert first["last_result"] == {"loss": 0.333333, "acc": 0.5, "training_iteration": 3}
    assert first["history"] == {"training_iteration": [1, 2, 3], "loss": [1.0, 0.5, 0.333333],
                                "acc": [0.5, 0.5, 0.5]}
    assert second["history"] == {"training_iteration": [1], "loss": [9.0], "acc": [None]}
    assert second["error"] == "ValueError: diverged"
    r = client.get("/api/tune/tune/nothing")
    assert r.status_code == 404 and "No tune experiment named 'nothing'" in r.json()["error"]
    assert client.get("/api/tune/bogus/sweep").status_code == 404


# -- serve --------------------------------------------------------------------------------
SERVE_TAGS = ["application", "deployment", "replica"]
BOUNDS = [1.0, 10.0, 100.0]


def _serve_families(requests, buckets):
    return [
        _counter("serve_deployment_request_counter", SERVE_TAGS,
                 [(["app", "Model", "r1"], requests[0]), (["app", "Model", "r2"], requests[1])]),
        _counter("serve_deployment_error_counter", SERVE_TAGS, [(["app", "Model", "r1"], 1.0)]),
        _histogram("serve_deployment_processing_latency_ms", SERVE_TAGS, BOUNDS,
                   [(["app", "Model", "r1"], buckets, 1.0)]),
        {"name": "serve_deployment_replicas", "kind": "gauge", "description": "",
         "tag_keys": ["application", "deployment", "state"], "boundaries": [],
         "samples": [{"tags": {"application": "app", "deployment": "Model",
                               "state": "RUNNING"}, "value": 2.0}]}]


STATUS = {"applications": {"app": {
    "status": "RUNNING", "message": "", "route_prefix": "/", "last_deployed_time_s": 1.0,
    "deployments": {"Model": {"status": "HEALTHY", "message": "",
                              "replica_states": {"RUNNING": 2}, "target_replicas": 2}}}},
    "proxy": {"host": "127.0.0.1", "port": 8000}, "published_at": 5.0}


def test_serve_applications_requests_and_rates():
    cluster = FakeCluster(families=_serve_families([30.0, 20.0], [0, 40, 10, 0]),
                          kv={("skate_dashboard", "serve/status"): json.dumps(STATUS).encode()})
    history = MetricHistory(window_s=60, interval_s=2)
    history.add(10.0, _serve_families([10.0, 0.0], [0, 10, 0, 0]))
    history.add(12.0, cluster.families)
    r = _client(cluster, history).get("/api/serve").json()
    assert r["applications"] == [{
        "name": "app", "status": "RUNNING", "message": "", "route_prefix": "/",
        "deployments": [{"name": "Model", "status": "HEALTHY", "message": "",
                         "replica_states": {"RUNNING": 2}, "target_replicas": 2,
                         "requests": 50, "errors": 1}]}]
    assert r["proxy"] == {"host": "127.0.0.1", "port": 8000} and r["published_at"] == 5.0
    series = r["series"]
    assert series["t"] == [10.0, 12.0]
    (dep,) = series["deployments"]
    assert (dep["application"], dep["deployment"]) == ("app", "Model")
    assert dep["qps"] == [None, 20.0]  # (50 - 10) requests in 2 s
    assert dep["errors_per_s"] == [None, 0.0]
    # the 40 new requests: 30 in (1, 10] ms, 10 in (10, 100] ms
    assert dep["p50_ms"] == [None, 1.0 + 9.0 * 20 / 30]
    assert dep["p99_ms"] == pytest.approx([None, 10.0 + 90.0 * (39.6 - 30) / 10])


def test_serve_without_a_published_status_reads_the_gauges():
    cluster = FakeCluster(families=_serve_families([3.0, 0.0], [3, 0, 0, 0]))
    apps = _client(cluster).get("/api/serve").json()["applications"]
    assert apps == [{"name": "app", "status": None, "message": "", "route_prefix": None,
                     "deployments": [{"name": "Model", "status": None, "message": "",
                                      "replica_states": {"RUNNING": 2},
                                      "target_replicas": None, "requests": 3, "errors": 1}]}]


# -- rllib and which libraries are in use --------------------------------------------------
def _gauge(name, value):
    return {"name": name, "kind": "gauge", "description": "", "tag_keys": ["algorithm"],
            "boundaries": [], "samples": [{"tags": {"algorithm": "PPO"}, "value": value}]}


def test_rllib_series_and_the_libraries_in_use():
    cluster = FakeCluster()
    history = MetricHistory(window_s=60, interval_s=2)
    client = _client(cluster, history)
    assert client.get("/api/libraries").json() == {"tune": False, "train": False,
                                                   "rllib": False, "serve": False}
    for t, (speed, ret) in enumerate([(100.0, 10.0), (120.0, 25.5)]):
        history.add(float(t), [_gauge("rllib_env_steps_per_s", speed),
                               _gauge("rllib_episode_return_mean", ret)])
    r = client.get("/api/rllib").json()
    assert r["series"]["t"] == [0.0, 1.0]
    assert r["series"]["algorithms"] == [{
        "algorithm": "PPO", "env_steps_per_s": [100.0, 120.0],
        "episode_return_mean": [10.0, 25.5], "env_steps_sampled": [None, None]}]
    assert r["experiments"] == []
    assert client.get("/api/libraries").json() == {"tune": False, "train": False,
                                                   "rllib": True, "serve": False}
    tune = _tune_cluster()
    tune.kv[("skate_dashboard", "serve/status")] = b"{}"
    assert _client(tune).get("/api/libraries").json() == {"tune": True, "train": True,
                                                          "rllib": False, "serve": True}

"""The dashboard's HTTP API over a fake cluster (no Skate processes): auth, input checking,
pagination totals, filters, errors as JSON. Jobs run for real (``/bin/sh`` commands) under a
JobRunner in a temporary session directory."""

import json
import re

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")  # starlette's TestClient
from starlette.testclient import TestClient

from skate.dashboard.app import Context, create_app
from skate.dashboard.history import ResourceHistory, sample_now
from skate.dashboard.jobs.lifecycle import Settings
from skate.dashboard.jobs.runner import JobRunner
from tests.dashboard.conftest import wait_until
from tests.dashboard.fakes import FakeCluster, actor, driver, group, task

pytestmark = pytest.mark.skate_only

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _tasks():
    # newest first: 100 finished "square", 15 failed "boom", 5 running "square"
    return ([task(i, "square", "RUNNING") for i in range(120, 115, -1)] +
            [task(i, "boom", "FAILED") for i in range(115, 100, -1)] +
            [task(i, "square", "FINISHED") for i in range(100, 0, -1)])


@pytest.fixture
def make_client(tmp_path):
    runners = []

    def make(cluster=None, read_token=False, raise_server_exceptions=True):
        cluster = cluster or FakeCluster(
            tasks=_tasks(), actors=[actor(i, "DEAD" if i < 5 else "ALIVE") for i in range(30)],
            groups=[group(i) for i in range(7)], jobs=[driver("00000002", alive=False)])
        runner = JobRunner(str(tmp_path), "unix:/nonexistent", TOKEN,
                           Settings(stop_grace_s=0.5, dashboard_address="http://test"))
        runner.start()
        runners.append(runner)
        history = ResourceHistory(window_s=60, interval_s=2)
        app = create_app(Context(cluster, history, runner, TOKEN, read_token, "0.1.0"))
        return TestClient(app, raise_server_exceptions=raise_server_exceptions)

    yield make
    for r in runners:
        r.close(timeout=5)


def _wait_status(client, sid, done=("SUCCEEDED", "FAILED", "STOPPED"), timeout=10):
    def finished():
        status = client.get(f"/api/jobs/{sid}").json()["status"]
        return status if status in done else None

    return wait_until(finished, timeout=timeout, interval=0.02)


# -- auth ---------------------------------------------------------------------------------
@pytest.mark.parametrize("method,path", [
    ("POST", "/api/jobs/"), ("POST", "/api/jobs"), ("POST", "/api/jobs/x/stop"),
    ("DELETE", "/api/jobs/x"), ("POST", f"/api/actors/{7:032x}/kill")])
def test_every_write_needs_the_token(make_client, method, path):
    client = make_client()
    missing = client.request(method, path, json={"entrypoint": "echo hi"})
    assert missing.status_code == 401
    assert missing.json()["error"].startswith("This call needs the cluster token")
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = client.request(method, path, json={"entrypoint": "echo hi"},
                           headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"].startswith("Wrong cluster token")
    basic = client.request(method, path, headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    # nothing was submitted: the one job is the fake cluster's driver
    assert [j["type"] for j in client.get("/api/jobs/").json()] == ["DRIVER"]


def test_reads_are_open_unless_read_token(make_client):
    assert make_client().get("/api/nodes").status_code == 200
    gated = make_client(read_token=True)
    for path in ("/api/nodes", "/api/tasks", "/api/actors", "/api/jobs/", "/api/timeline",
                 "/api/cluster/history", "/api/placement_groups", "/api/logs", "/api/objects",
                 "/api/objects/summary", "/metrics", "/api/metrics", "/api/libraries",
                 "/api/tune", "/api/serve", "/api/rllib"):
        r = gated.get(path)
        assert r.status_code == 401 and "cluster token" in r.json()["error"], path
        assert gated.get(path, headers=AUTH).status_code == 200, path
    # the page and the version stay readable: a person must be able to type the token in
    assert gated.get("/").status_code == 200
    assert gated.get("/api/version").json() == {"version": "0.1.0", "ray_version": "0.1.0",
                                                "server": "skate-dashboard", "read_token": True}


# -- tasks --------------------------------------------------------------------------------
def test_tasks_pages_totals_and_summary(make_client):
    client = make_client()
    first = client.get("/api/tasks?per_page=50").json()
    assert (first["total"], first["page"], first["per_page"], first["pages"]) == (120, 1, 50, 3)
    assert [t["task_id"] for t in first["tasks"]] == [f"{i:024x}" for i in range(120, 70, -1)]
    assert "events" not in first["tasks"][0]  # rows are light; /api/tasks/{id} has them
    last = client.get("/api/tasks?per_page=50&page=3").json()
    assert [t["task_id"] for t in last["tasks"]] == [f"{i:024x}" for i in range(20, 0, -1)]
    assert client.get("/api/tasks?per_page=50&page=4").json()["tasks"] == []
    assert first["summary"]["by_state"] == {"RUNNING": 5, "FAILED": 15, "FINISHED": 100}
    assert first["summary"]["by_name"] == {"square": {"RUNNING": 5, "FINISHED": 100},
                                           "boom": {"FAILED": 15}}
    assert first["summary"]["total_tasks"] == 120
    default = client.get("/api/tasks").json()
    assert default["per_page"] == 50 and len(default["tasks"]) == 50


def test_tasks_filters(make_client):
    client = make_client()
    failed = client.get("/api/tasks?state=FAILED&per_page=10&page=2").json()
    assert (failed["total"], failed["pages"], len(failed["tasks"])) == (15, 2, 5)
    assert {t["state"] for t in failed["tasks"]} == {"FAILED"}
    both = client.get("/api/tasks?state=RUNNING&name=square").json()
    assert both["total"] == 5 and {(t["name"], t["state"]) for t in both["tasks"]} == \
        {("square", "RUNNING")}
    by_name = client.get("/api/tasks?name=square&per_page=500").json()
    assert by_name["total"] == 105 and len(by_name["tasks"]) == 105
    assert client.get("/api/tasks?name=nothing").json()["total"] == 0
    one = client.get(f"/api/tasks/{3:024x}").json()
    assert one["events"] == [{"state": "FINISHED", "created_ms": 3}]
    assert client.get("/api/tasks/ffff").status_code == 404


@pytest.mark.parametrize("query,words", [
    ("page=0", "page must be a whole number >= 1, got '0'"),
    ("page=two", "page must be a whole number >= 1, got 'two'"),
    ("per_page=501", "per_page must be a whole number from 1-500, got '501'"),
    ("per_page=-1", "per_page must be"),
    ("state=DONE", "state must be one of PENDING_ARGS_AVAIL"),
    ("name=" + "x" * 201, "name is longer than 200 characters"),
])
def test_malformed_queries_are_400s_that_say_why(make_client, query, words):
    r = make_client().get("/api/tasks?" + query)
    assert r.status_code == 400 and words in r.json()["error"], r.json()


# -- actors and placement groups -----------------------------------------------------------
def test_actors_pages_filters_and_kill(make_client):
    client = make_client()
    everything = client.get("/api/actors?per_page=20").json()
    assert (everything["total"], everything["pages"], len(everything["actors"])) == (30, 2, 20)
    assert everything["summary"] == {"total_actors": 30, "by_state": {"DEAD": 5, "ALIVE": 25}}
    dead = client.get("/api/actors?state=DEAD").json()
    assert dead["total"] == 5 and {a["state"] for a in dead["actors"]} == {"DEAD"}
    assert client.get("/api/actors?class_name=Other").json()["total"] == 0
    assert client.get("/api/actors?state=ZOMBIE").status_code == 400

    alive_id, dead_id = f"{7:032x}", f"{1:032x}"
    r = client.post(f"/api/actors/{alive_id}/kill", headers=AUTH)
    assert r.json() == {"actor_id": alive_id, "killed": True}
    r = client.post(f"/api/actors/{dead_id}/kill", headers=AUTH, json={"no_restart": False})
    assert r.json() == {"actor_id": dead_id, "killed": False}
    assert client.post(f"/api/actors/{99:032x}/kill", headers=AUTH).status_code == 404
    r = client.post("/api/actors/not-hex/kill", headers=AUTH)
    assert r.status_code == 400 and "not an actor id" in r.json()["error"]
    r = client.post(f"/api/actors/{alive_id}/kill", headers=AUTH, content=b"{nope")
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = client.post(f"/api/actors/{alive_id}/kill", headers=AUTH, json={"no_restart": "yes"})
    assert r.status_code == 400


def test_placement_groups_page(make_client):
    r = make_client().get("/api/placement_groups?per_page=5&page=2").json()
    assert (r["total"], r["pages"], [g["name"] for g in r["placement_groups"]]) == \
        (7, 2, ["pg5", "pg6"])
    assert r["summary"] == {"by_state": {"CREATED": 7}}


# -- jobs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("body,words", [
    (b"{not json", "not valid JSON"),
    (b"", "Send the job as a JSON body"),
    (b"[]", "must be a JSON object"),
    (json.dumps({"entrypoint": ""}).encode(), "'entrypoint' must be a non-empty"),
    (json.dumps({"entrypoint": "x", "extra": 1}).encode(), "Unknown field(s) 'extra'"),
    (json.dumps({"entrypoint": "x", "runtime_env": {"pip": ["x"]}}).encode(),
     "runtime_env field(s) 'pip' are not supported"),
    (json.dumps({"entrypoint": "x", "runtime_env": {"working_dir": "s3://b/k"}}).encode(),
     "remote URIs are not supported"),
    (json.dumps({"entrypoint": "x", "runtime_env": {"working_dir": "/no/such/dir"}}).encode(),
     "is not an absolute path of a directory"),
    (json.dumps({"entrypoint": "x", "runtime_env": {"env_vars": {"A": 1}}}).encode(),
     "env_vars'] must be a JSON object of strings"),
    (json.dumps({"entrypoint": "x", "submission_id": "../../etc"}).encode(),
     "'submission_id' must be 1-128 letters"),
    (json.dumps({"entrypoint": "x", "entrypoint_num_cpus": -1}).encode(),
     "entrypoint_num_cpus must be a number >= 0"),
])
def test_malformed_submissions_are_400s(make_client, body, words):
    r = make_client().post("/api/jobs/", headers=AUTH, content=body)
    assert r.status_code == 400 and words in r.json()["error"], r.json()


def test_a_job_runs_logs_and_is_deleted(make_client, tmp_path):
    client = make_client()
    r = client.post("/api/jobs/", headers=AUTH, json={
        "entrypoint": 'echo "hello $GREETING"; echo oops >&2; exit 3', "submission_id": "j-1",
        "runtime_env": {"env_vars": {"GREETING": "there"}, "working_dir": str(tmp_path)},
        "metadata": {"owner": "me"}})
    assert r.json() == {"submission_id": "j-1", "job_id": "j-1"}
    assert _wait_status(client, "j-1") == "FAILED"
    info = client.get("/api/jobs/j-1").json()
    assert (info["driver_exit_code"], info["metadata"], info["type"]) == (3, {"owner": "me"},
                                                                         "SUBMISSION")
    assert info["driver_agent_http_address"] == "http://test"
    assert client.get("/api/jobs/j-1/logs").json() == {"logs": "hello there\noops\n"}
    assert client.get("/api/jobs/j-1/logs/tail").text == "hello there\noops\n"
    dup = client.post("/api/jobs/", headers=AUTH, json={"entrypoint": "x",
                                                        "submission_id": "j-1"})
    assert dup.status_code == 400 and "already exists" in dup.json()["error"]
    assert client.post("/api/jobs/j-1/stop", headers=AUTH).json() == {"stopped": False}
    assert client.delete("/api/jobs/j-1", headers=AUTH).json() == {"deleted": True}
    assert not (tmp_path / "logs" / "job-driver-j-1.log").exists()
    assert client.get("/api/jobs/j-1").status_code == 404
    assert client.get("/api/jobs/j-1/logs").status_code == 404


def test_a_running_job_is_stopped_and_cannot_be_deleted_first(make_client):
    client = make_client()
    sid = client.post("/api/jobs/", headers=AUTH,
                      json={"entrypoint": "echo started; exec sleep 30"}).json()["submission_id"]
    assert sid.startswith("skatesubmit_")
    _wait_status(client, sid, done=("RUNNING",))
    r = client.delete(f"/api/jobs/{sid}", headers=AUTH)
    assert r.status_code == 400 and "stop it first" in r.json()["error"]
    assert client.post(f"/api/jobs/{sid}/stop", headers=AUTH).json() == {"stopped": True}
    assert _wait_status(client, sid) == "STOPPED"
    assert client.get(f"/api/jobs/{sid}").json()["driver_exit_code"] == -15


def test_driver_jobs_are_listed_with_submissions(make_client):
    client = make_client()
    jobs = client.get("/api/jobs/").json()
    assert [(j["type"], j["job_id"], j["status"]) for j in jobs] == \
        [("DRIVER", "00000002", "SUCCEEDED")]
    assert client.get("/api/jobs/00000002").json()["end_time"] == 2000
    assert client.get("/api/jobs/nope").status_code == 404


# -- the rest -------------------------------------------------------------------------------
def test_timeline_is_a_download(make_client):
    r = make_client().get("/api/timeline")
    assert r.headers["content-disposition"].startswith('attachment; filename="skate-timeline-')
    assert len(r.json()) == 120 and r.json()[0]["ph"] == "X"


def test_history_answers_the_samples_per_node():
    cluster = FakeCluster()
    history = ResourceHistory(window_s=10, interval_s=2)
    for t in range(10):
        history.add(sample_now(cluster.status(), clock=lambda t=t: 1000.0 + 2 * t))
    app = create_app(Context(cluster, history, None, TOKEN))
    cols = TestClient(app).get("/api/cluster/history").json()
    assert cols["t"] == [1008.0 + 2 * i for i in range(6)]  # 10 s window: 6 samples
    assert cols["resources"]["CPU"] == {"used": [1.5] * 6, "total": [2.0] * 6}
    # the store's bytes, not the logical resource
    assert cols["resources"]["object_store"] == {"used": [250] * 6, "total": [1000] * 6}
    assert "memory" not in cols["resources"]  # this cluster reports none
    assert cols["nodes"] == {"n1": {"CPU": {"used": [1.5] * 6, "total": [2.0] * 6},
                                    "object_store": {"used": [250] * 6, "total": [1000] * 6}}}
    assert cols["node_labels"] == {"n1": {"node_ip": "127.0.0.1", "is_head_node": True}}
    assert len(cols["host"]["cpu_percent"]) == 6


def test_nodes_have_their_available_resources_and_store(make_client):
    r = make_client().get("/api/nodes").json()
    node = r["nodes"][0]
    assert node["resources_available"] == {"CPU": 0.5, "object_store_memory": 75.0}
    assert node["object_store"]["used"] == 250 and node["object_store"]["capacity"] == 1000
    assert r["resources"] == {"total": {"CPU": 2.0, "object_store_memory": 100.0},
                              "available": {"CPU": 0.5, "object_store_memory": 75.0}}


def test_an_unreachable_cluster_is_503_and_a_bug_is_500_without_traceback(make_client):
    cluster = FakeCluster()
    client = make_client(cluster, raise_server_exceptions=False)
    cluster.fail = ConnectionError("gone")
    r = client.get("/api/nodes")
    assert r.status_code == 503 and r.json() == {"error": "The cluster is unreachable: gone"}
    cluster.fail = RuntimeError("internal detail")
    r = client.get("/api/actors")
    assert r.status_code == 500
    assert r.json()["error"].startswith("The dashboard failed on /api/actors: RuntimeError")
    assert "internal detail" not in r.text and "Traceback" not in r.text


def test_unknown_paths_and_methods_answer_json(make_client):
    client = make_client()
    r = client.get("/api/nothing")
    assert r.status_code == 404 and r.json() == {"error": "No such page or API: /api/nothing"}
    r = client.put("/api/nodes")
    assert r.status_code == 405 and "PUT is not allowed" in r.json()["error"]


def test_the_page_and_its_files_are_served(make_client):
    client = make_client()
    page = client.get("/")
    assert page.status_code == 200 and "<title>Skate dashboard</title>" in page.text
    scripts = re.findall(r'<script src="(/static/[^"]+)"', page.text)
    assert scripts[0] == "/static/vendor/uPlot.iife.min.js" and scripts[-1] == "/static/app.js"
    for path in scripts + ["/static/style.css", "/static/vendor/uPlot.min.css"]:
        assert client.get(path).status_code == 200, path
    # nothing is fetched from elsewhere at run time
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text)
    for path in scripts[1:]:
        assert not re.search(r"""fetch\(["'`]https?:""", client.get(path).text), path

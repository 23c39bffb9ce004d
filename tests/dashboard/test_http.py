"""The dashboard's HTTP API end to end: a head from `skate start --head`, drivers that make
tasks and actors, and the API's answers about them (exact totals, pages, filters, auth)."""

import json
import urllib.error
import urllib.request

import pytest

from tests.dashboard.conftest import started_head, wait_until

pytestmark = pytest.mark.skate_only


def _status(head, method, path, token=None, body=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(head.url + path, method=method, headers=headers,
                                 data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_a_drivers_tasks_pages_and_filters(head):
    head.driver("""
        import skate
        skate.init(address="auto")
        @skate.remote
        def http_square(x):
            return x * x
        @skate.remote
        def http_boom():
            raise ValueError("bad input")
        assert skate.get([http_square.remote(i) for i in range(30)]) == [i * i for i in range(30)]
        for _ in range(3):
            try:
                skate.get(http_boom.remote())
            except ValueError:
                pass
    """)
    # the workers' batches arrive every 0.2 s: wait until the history has every attempt
    wait_until(lambda: head.get("/api/tasks?name=http_square&state=FINISHED")["total"] == 30)
    page = head.get("/api/tasks?name=http_square&per_page=7&page=5")
    assert (page["total"], page["pages"], len(page["tasks"])) == (30, 5, 2)
    seen = {t["task_id"] for p in range(1, 6)
            for t in head.get(f"/api/tasks?name=http_square&per_page=7&page={p}")["tasks"]}
    assert len(seen) == 30  # the pages cover every attempt once
    failed = wait_until(lambda: (r := head.get("/api/tasks?name=http_boom&state=FAILED"))
                        ["total"] == 3 and r)
    assert [t["error_type"] for t in failed["tasks"]] == ["TASK_EXECUTION_EXCEPTION"] * 3
    assert failed["tasks"][0]["error_message"].startswith("ValueError: bad input")
    summary = failed["summary"]
    assert summary["by_name"]["http_square"] == {"FINISHED": 30}
    assert summary["by_name"]["http_boom"] == {"FAILED": 3}
    one = head.get(f"/api/tasks/{failed['tasks'][0]['task_id']}")
    assert [e["state"] for e in one["events"]][-1] == "FAILED"
    status, body = _status(head, "GET", "/api/tasks?state=BOGUS")
    assert status == 400 and "state must be one of" in body["error"]


def test_nodes_history_and_timeline(head):
    nodes = head.get("/api/nodes")
    assert [(n["state"], n["is_head_node"]) for n in nodes["nodes"]] == [("ALIVE", True)]
    assert nodes["resources"]["total"]["CPU"] == 2.0
    hist = wait_until(lambda: (h := head.get("/api/cluster/history"))["t"] and h)
    assert hist["resources"]["CPU"]["total"][-1] == 2.0
    assert 0.0 <= hist["resources"]["CPU"]["used"][-1] <= 2.0
    head.driver("""
        import skate
        skate.init(address="auto")
        @skate.remote
        def traced():
            return 1
        skate.get([traced.remote() for _ in range(3)])
    """)
    events = wait_until(lambda: [e for e in head.get("/api/timeline") if e["name"] == "traced"])
    assert {e["ph"] for e in events} == {"X"}


def test_actors_are_listed_and_killed_with_the_token(head):
    out = head.driver("""
        import skate
        skate.init(address="auto", namespace="http-test")
        @skate.remote
        class Victim:
            def ping(self):
                return "pong"
        v = Victim.options(name="victim", lifetime="detached").remote()
        assert skate.get(v.ping.remote()) == "pong"
        print(v._actor_id.hex())
    """).stdout.split()[-1]
    listed = head.get("/api/actors?class_name=Victim&state=ALIVE")
    assert [a["actor_id"] for a in listed["actors"]] == [out]
    status, body = _status(head, "POST", f"/api/actors/{out}/kill")
    assert status == 401 and "needs the cluster token" in body["error"]
    status, body = _status(head, "POST", f"/api/actors/{out}/kill", token="wrong")
    assert status == 401 and body["error"].startswith("Wrong cluster token")
    status, body = _status(head, "POST", f"/api/actors/{out}/kill", token=head.token)
    assert (status, body) == (200, {"actor_id": out, "killed": True})
    wait_until(lambda: head.get("/api/actors?class_name=Victim")["actors"][0]["state"] == "DEAD")
    status, body = _status(head, "POST", f"/api/actors/{'ab' * 16}/kill", token=head.token)
    assert status == 404 and "No actor" in body["error"]


def test_placement_groups_are_listed(head):
    head.driver("""
        import skate
        from skate.util import placement_group, remove_placement_group
        skate.init(address="auto")
        pg = placement_group([{"CPU": 1}], name="http-pg")
        skate.get(pg.ready())
        remove_placement_group(pg)
    """)
    groups = head.get("/api/placement_groups")["placement_groups"]
    assert [(g["name"], g["state"]) for g in groups if g["name"] == "http-pg"] == \
        [("http-pg", "REMOVED")]


def test_read_token_and_no_dashboard_flags():
    with started_head("--dashboard-read-token") as gated:
        status, body = _status(gated, "GET", "/api/nodes")
        assert status == 401 and "needs the cluster token" in body["error"]
        assert _status(gated, "GET", "/api/nodes", token=gated.token)[0] == 200
        assert gated.get("/api/version")["read_token"] is True
    with started_head("--include-dashboard", "false") as bare:
        assert "dashboard_url" not in bare.info and "dashboard_pid" not in bare.info
        status = bare.cli("start", "--head", "--include-dashboard", "maybe", check=False)
        assert status.returncode == 2 and "expected true or false" in status.stderr

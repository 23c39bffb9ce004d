"""The dashboard's pages end to end, against `skate start --head`: a Tune run's trials and
curves, a Serve deployment's replicas and requests, a live log tail of an actor, objects and
stores, per-node resource samples -- and the dashboard reading it all without joining."""

import json
import os
import re
import textwrap
import urllib.request

import psutil
import pytest

from tests.dashboard.conftest import TALKER, UNTIL_STDIN_CLOSES, free_port, serve_app, wait_until

pytestmark = pytest.mark.skate_only


def _unix_sockets(pid):
    return len(psutil.Process(pid).net_connections(kind="unix"))


def test_the_dashboard_does_not_join_the_cluster(head):
    jobs = head.get("/api/jobs/")
    assert not [j for j in jobs if j["type"] == "DRIVER" and j["status"] == "RUNNING"]
    dash = psutil.Process(head.info["dashboard_pid"])
    assert not [m for m in dash.memory_maps() if "cygrpc" in m.path]  # no driver runtime
    hist = wait_until(lambda: (h := head.get("/api/cluster/history"))["t"] and h)
    node = head.info["node_id"]
    assert hist["nodes"][node]["CPU"]["total"][-1] == 2.0
    assert hist["nodes"][node]["object_store"]["total"][-1] > 0
    assert hist["node_labels"][node] == {"node_ip": "127.0.0.1", "is_head_node": True}


def test_a_tune_runs_trials_and_curves(head):
    head.driver("""
        import skate
        from skate import tune
        skate.init(address="auto")
        def trainable(config):
            for i in range(1, 4):
                tune.report({"loss": config["x"] / i})
        tune.run(trainable, config={"x": tune.grid_search([1.0, 2.0])}, name="dash-e2e",
                 metric="loss", mode="min", verbose=0)
    """)
    listed = head.get("/api/tune?kind=tune")["experiments"]
    (exp,) = [e for e in listed if e["name"] == "dash-e2e"]
    assert (exp["status"], exp["num_trials"], exp["trial_counts"]) == (
        "FINISHED", 2, {"TERMINATED": 2})
    assert head.get("/api/libraries")["tune"] is True
    detail = head.get("/api/tune/tune/dash-e2e")
    curves = {t["config"]["x"]: t["history"] for t in detail["trials"]}
    assert [t["status"] for t in detail["trials"]] == ["TERMINATED", "TERMINATED"]
    assert curves[1.0]["training_iteration"] == [1, 2, 3]
    assert curves[1.0]["loss"] == [1.0, 0.5, 0.333333]
    assert curves[2.0]["loss"] == [2.0, 1.0, 0.666667]


def test_a_serve_deployments_replicas_and_requests(head):
    requests = 7
    code = serve_app(free_port(), "dash-app", "/echo", requests)
    with head.running('import skate\nskate.init(address="auto")\n' + code +
                      UNTIL_STDIN_CLOSES + "serve.shutdown()\n"):
        def shown():
            apps = head.get("/api/serve")["applications"]
            app = next((a for a in apps if a["name"] == "dash-app"), None)
            dep = app and app["deployments"][0]
            # the controller publishes its status within a second of a change
            return dep if dep and dep["requests"] == requests and dep["status"] else None

        dep = wait_until(shown, timeout=20)
        assert (dep["name"], dep["status"], dep["replica_states"], dep["target_replicas"]) == (
            "Greeter", "HEALTHY", {"RUNNING": 1}, 1)
        assert dep["errors"] == 0
        assert head.get("/api/libraries")["serve"] is True
        app = next(a for a in head.get("/api/serve")["applications"] if a["name"] == "dash-app")
        assert (app["status"], app["route_prefix"]) == ("RUNNING", "/echo")


def test_an_actors_output_reaches_a_live_tail_and_the_stream_closes(head):
    out = head.driver(TALKER + textwrap.dedent("""
        import sys
        skate.get(talker.say.remote("first words"))
        # one write: print() writes the text and its newline separately, and the actor's
        # forwarded line can land between the two
        sys.stdout.write(f"ACTOR {talker._actor_id.hex()}\\n")
    """)).stdout
    actor_id = re.search(r"^ACTOR ([0-9a-f]+)$", out, re.M).group(1)
    dash = head.info["dashboard_pid"]
    wait_until(lambda: "first words" in head.get(f"/api/logs/file?actor_id={actor_id}")["lines"])
    before = _unix_sockets(dash)
    resp = urllib.request.urlopen(f"{head.url}/api/logs/stream?actor_id={actor_id}&tail=1",
                                  timeout=15)
    try:
        assert resp.readline() == b"first words\n"
        head.driver("""
            import skate
            skate.init(address="auto", namespace="pages")
            skate.get(skate.get_actor("talker").say.remote("later words"))
        """)
        assert resp.readline() == b"later words\n"
        assert _unix_sockets(dash) > before  # the stream's connection to the node
    finally:
        resp.close()
    # the client went while the log was quiet: the tail's node connection is closed
    wait_until(lambda: _unix_sockets(dash) <= before, timeout=10)
    files = head.get("/api/logs")["nodes"][0]["files"]
    assert any(name.endswith(".out") for name in files["worker_out"])


def test_objects_and_the_stores(head):
    with head.running(textwrap.dedent("""
        import numpy as np
        import skate
        skate.init(address="auto")
        ref = skate.put(np.zeros(2_000_000, dtype=np.uint8))
        print(ref.hex())
    """) + UNTIL_STDIN_CLOSES) as (_, printed):
        oid = printed.split()[-1]
        page = wait_until(lambda: (p := head.get("/api/objects?call_site=skate.put()"))["total"]
                          and p)
        (row,) = [o for o in page["objects"] if o["object_id"] == oid]
        assert (row["reference_type"], row["type"], row["store_state"]) == (
            "LOCAL_REFERENCE", "DRIVER", "IN_MEMORY")
        assert row["object_size"] >= 2_000_000
        summary = head.get("/api/objects/summary")
        assert summary["by_call_site"]["skate.put()"]["total_objects"] >= 1
        (store,) = summary["stores"]
        assert store["node_id"] == head.info["node_id"] and store["used"] >= 2_000_000


def test_the_page_loads_its_new_tabs(head):
    with urllib.request.urlopen(head.url + "/") as resp:
        page = resp.read().decode()
    for tab in ("logs", "objects", "tune", "train", "serve", "rllib"):
        assert f'data-tab="{tab}"' in page
    assert json.loads(urllib.request.urlopen(head.url + "/api/libraries").read()).keys() == {
        "tune", "train", "rllib", "serve"}
    assert os.path.exists(os.path.join(head.session_dir, "logs", "dashboard.log"))

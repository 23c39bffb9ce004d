"""skate.util.state: the cluster's actors, nodes, placement groups and jobs as records."""

import os

import pytest

import skate
from skate.util import state
from skate.util.placement_group import placement_group, remove_placement_group
from tests.core.utils import wait_for_condition

pytestmark = pytest.mark.skate_only  # Ray's state API needs its dashboard process


@pytest.fixture
def cluster(start_cluster):
    return start_cluster(num_cpus=2)


@skate.remote
class Counter:
    def pid(self):
        return os.getpid()


@skate.remote
class Other:
    def ping(self):
        return "pong"


def test_actors_listed_filtered_and_summarized(cluster):
    a = Counter.options(name="counted").remote()
    b = Counter.remote()
    o = Other.remote()
    pids = skate.get([a.pid.remote(), b.pid.remote()])
    skate.get(o.ping.remote())
    alive = state.list_actors(filters=[("state", "=", "ALIVE"), ("class_name", "=", "Counter")])
    assert sorted(r.pid for r in alive) == sorted(pids)
    named = state.get_actor(a._actor_id_bytes.hex())
    assert named.name == "counted" and named.state == "ALIVE" and named.class_name == "Counter"
    assert named.node_id == skate.get_runtime_context().get_node_id()
    assert named.ray_namespace == skate.get_runtime_context().namespace and not named.is_detached
    assert len(state.list_actors(limit=1)) == 1
    before = state.summarize_actors()["cluster"]["summary"]
    assert before["Counter"]["state_counts"].get("ALIVE", 0) >= 2

    skate.kill(b)
    wait_for_condition(lambda: state.get_actor(b._actor_id_bytes.hex()).state == "DEAD")
    dead = state.get_actor(b._actor_id_bytes.hex())
    assert "skate.kill" in dead.death_cause
    others = state.list_actors(filters=[("class_name", "!=", "Counter")])
    assert {r.class_name for r in others} >= {"Other"} and "Counter" not in \
        {r.class_name for r in others}
    assert state.get_actor("00" * 16) is None


def test_nodes_groups_and_jobs(cluster):
    (node,) = state.list_nodes()
    assert node.state == "ALIVE" and node.is_head_node and node.resources_total["CPU"] == 2
    assert state.get_node(node.node_id) == node

    pg = placement_group([{"CPU": 1}], strategy="PACK", name="state-pg")
    assert pg.wait(30)
    (g,) = state.list_placement_groups(filters=[("name", "=", "state-pg")])
    assert g.state == "CREATED" and g.strategy == "PACK"
    assert g.bundles == [{"bundle_id": f"{pg.id.hex()}:0", "node_id": node.node_id,
                          "unit_resources": {"CPU": 1}}]
    remove_placement_group(pg)
    wait_for_condition(lambda: state.get_placement_group(pg.id.hex()).state == "REMOVED")

    job_id = skate.get_runtime_context().get_job_id()
    job = state.get_job(job_id)
    assert job.status == "RUNNING" and job.type == "DRIVER" and job.end_time is None
    assert job.ray_namespace == skate.get_runtime_context().namespace


def test_bad_filters_and_limits_are_clear_errors(cluster):
    with pytest.raises(ValueError, match="ActorState has no field 'colour'"):
        state.list_actors(filters=[("colour", "=", "red")])
    with pytest.raises(ValueError, match="predicate '>'"):
        state.list_actors(filters=[("state", ">", "A")])
    with pytest.raises(ValueError, match=r"\(field, predicate, value\)"):
        state.list_nodes(filters=["state=ALIVE"])
    with pytest.raises(ValueError, match="limit must be a positive int"):
        state.list_jobs(limit=0)


@skate.remote
def square(x):
    return x * x


@skate.remote
def fails():
    raise ValueError("no good")


@skate.remote
def waits_for_child():
    return skate.get(square.remote(3))


@skate.remote(max_retries=1, retry_exceptions=True)
def fails_once(marker):
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first attempt")
    return "second"


def _tasks_settled(n, **filters):
    def check():
        rows = state.list_tasks(filters=[(k, "=", v) for k, v in filters.items()], limit=1000)
        return len(rows) >= n and all(r.state in ("FINISHED", "FAILED") for r in rows)
    return check


def test_tasks_with_their_states_errors_and_attempts(cluster, tmp_path):
    skate.get([square.remote(i) for i in range(4)])
    with pytest.raises(ValueError):
        skate.get(fails.remote())
    assert skate.get(waits_for_child.remote()) == 9
    assert skate.get(fails_once.remote(str(tmp_path / "marker"))) == "second"
    wait_for_condition(_tasks_settled(5, name="square"), timeout=10)
    wait_for_condition(_tasks_settled(2, name="fails_once"), timeout=10)

    (bad,) = state.list_tasks(filters=[("name", "=", "fails")])
    assert bad.state == "FAILED" and bad.error_type == "TASK_EXECUTION_EXCEPTION"
    assert "no good" in bad.error_message
    # no arguments to wait for: it is queued at once (PENDING_ARGS_AVAIL only with refs)
    assert [e["state"] for e in bad.events][:3] == [
        "PENDING_NODE_ASSIGNMENT", "SUBMITTED_TO_WORKER", "RUNNING"]
    with_arg = square.remote(skate.put(5))
    assert skate.get(with_arg) == 25
    wait_for_condition(lambda: [e["state"] for e in (state.get_task(
        with_arg.task_id()) or bad).events][:2] == [
        "PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT"], timeout=10)
    parent = state.list_tasks(filters=[("name", "=", "waits_for_child")])[0]
    assert "RUNNING_IN_RAY_GET" in [e["state"] for e in parent.events]
    child = [t for t in state.list_tasks(filters=[("name", "=", "square")])
             if t.parent_task_id == parent.task_id]
    assert len(child) == 1 and child[0].state == "FINISHED"
    attempts = state.list_tasks(filters=[("name", "=", "fails_once")])
    assert [(t.attempt_number, t.state) for t in attempts] == [(1, "FINISHED"), (0, "FAILED")]
    def workers_reported():  # the owner's FINISHED can arrive before the worker's RUNNING
        rows = state.list_tasks(filters=[("name", "=", "square"), ("state", "=", "FINISHED")])
        return rows and all(r.start_time_ms is not None for r in rows)

    wait_for_condition(workers_reported, timeout=10)
    done = state.list_tasks(filters=[("name", "=", "square"), ("state", "=", "FINISHED")])[0]
    assert done.creation_time_ms <= done.start_time_ms <= done.end_time_ms
    assert done.node_id == skate.get_runtime_context().get_node_id() and done.worker_pid > 0
    assert done.required_resources == {"CPU": 1} and done.type == "NORMAL_TASK"
    assert state.get_task(bad.task_id) == bad
    summary = state.summarize_tasks()["cluster"]
    assert summary["summary"]["square"]["state_counts"]["FINISHED"] >= 5
    assert summary["summary"]["fails"]["state_counts"] == {"FAILED": 1}
    with pytest.raises(ValueError, match="TaskState has no field 'colour'"):
        state.list_tasks(filters=[("colour", "=", "red")])


def test_actor_calls_are_recorded_when_asked(shutdown_only, monkeypatch):
    monkeypatch.setenv("SKATE_TASK_EVENTS", "all")
    skate.init(num_cpus=1)
    c = Counter.remote()
    skate.get(c.pid.remote())
    skate.get(square.remote(2))
    wait_for_condition(_tasks_settled(1, name="Counter.pid"), timeout=10)
    (call,) = state.list_tasks(filters=[("name", "=", "Counter.pid")])
    assert call.type == "ACTOR_TASK" and call.actor_id == c._actor_id_bytes.hex()
    assert call.state == "FINISHED" and [e["state"] for e in call.events] == [
        "SUBMITTED_TO_WORKER", "FINISHED"]
    skate.shutdown()
    monkeypatch.delenv("SKATE_TASK_EVENTS")
    skate.init(num_cpus=1)  # the default: normal tasks only
    c = Counter.remote()
    skate.get(c.pid.remote())
    skate.get(square.remote(3))
    wait_for_condition(_tasks_settled(1, name="square"), timeout=10)
    assert state.list_tasks(filters=[("type", "=", "ACTOR_TASK")]) == []


def test_timeline_is_a_chrome_trace_of_the_runs(cluster, tmp_path):
    skate.get([square.remote(i) for i in range(3)])
    wait_for_condition(_tasks_settled(3, name="square"), timeout=10)
    path = tmp_path / "timeline.json"
    assert skate.timeline(str(path)) is None
    import json

    slices = [e for e in json.loads(path.read_text()) if e["name"] == "square"]
    assert len(slices) >= 3
    assert all(e["ph"] == "X" and e["dur"] >= 0 and e["tid"].startswith("worker ")
               and e["args"]["task_id"] for e in slices)


def test_history_is_bounded_and_can_be_turned_off(shutdown_only, monkeypatch):
    monkeypatch.setenv("SKATE_TASK_EVENTS_MAX_PER_JOB", "5")
    skate.init(num_cpus=1)
    skate.get([square.remote(i) for i in range(20)])
    wait_for_condition(lambda: state.summarize_tasks()["cluster"]["dropped"] != {}, timeout=10)
    wait_for_condition(lambda: sum(state.summarize_tasks()["cluster"]["dropped"].values())
                       == 15, timeout=10)
    assert len(state.list_tasks(limit=100)) == 5
    skate.shutdown()
    monkeypatch.setenv("SKATE_TASK_EVENTS", "0")
    skate.init(num_cpus=1)
    skate.get([square.remote(i) for i in range(3)])
    skate.get(square.remote(1))
    assert state.list_tasks() == []


def test_kill_actor_by_id(cluster):
    c = Counter.remote()
    skate.get(c.pid.remote())
    aid = c._actor_id_bytes.hex()
    assert state.kill_actor(aid) is True
    wait_for_condition(lambda: state.get_actor(aid).state == "DEAD")
    assert state.kill_actor(aid) is False  # already dead
    with pytest.raises(ValueError, match="no actor with id"):
        state.kill_actor("ab" * 16)
    with pytest.raises(ValueError, match="hex"):
        state.kill_actor("not-hex")


def test_published_values_read_back(cluster):
    from skate.experimental import internal_kv

    internal_kv._internal_kv_put("lib/one", b"1", namespace="dash-test")
    internal_kv._internal_kv_put("lib/two", b"2", namespace="dash-test")
    internal_kv._internal_kv_put("other", b"3", namespace="dash-test")
    assert state.get_kv("lib/one", namespace="dash-test") == b"1"
    assert state.get_kv("lib/none", namespace="dash-test") is None
    assert state.list_kv("lib/", namespace="dash-test") == ["lib/one", "lib/two"]


def test_a_nested_function_is_named_as_in_ray(cluster):
    def make():
        @skate.remote
        def inner():
            return 1
        return inner

    ref = make().remote()
    assert skate.get(ref) == 1
    wait_for_condition(lambda: [t.func_or_class_name for t in state.list_tasks(
        filters=[("name", "=", "inner")])] == ["inner"])
    assert [o.call_site for o in state.list_objects(filters=[("object_id", "=", ref.hex())])] \
        == ["inner.remote()"]

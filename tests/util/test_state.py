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

"""Placement groups on a simulated 3-node cluster: strategies, atomicity, removal, errors."""

import pytest

import skate
from skate.cluster_utils import Cluster
from skate.util import (
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from skate.util.scheduling_strategies import PlacementGroupSchedulingStrategy as InGroup
from tests.core.utils import wait_for_condition

pytestmark = pytest.mark.skate_only


@pytest.fixture(scope="module")
def three_nodes():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    try:
        c.add_node(num_cpus=2)
        c.add_node(num_cpus=2)
        skate.init(address=c.address, namespace="pg-tests")
        yield c
    finally:
        skate.shutdown()
        c.shutdown()


@skate.remote(num_cpus=1)
def where():
    return skate.get_runtime_context().get_node_id()


def nodes_of(pg, n):
    return [skate.get(where.options(scheduling_strategy=InGroup(pg, i)).remote(), timeout=30)
            for i in range(n)]


def free_cpus():
    return skate.available_resources().get("CPU", 0)


@pytest.mark.parametrize("strategy, n, distinct", [
    ("PACK", 2, {1}), ("STRICT_PACK", 2, {1}), ("SPREAD", 3, {2, 3}), ("STRICT_SPREAD", 3, {3}),
])
def test_strategies_place_bundles(three_nodes, strategy, n, distinct):
    wait_for_condition(lambda: free_cpus() == 6)
    pg = placement_group([{"CPU": 1}] * n, strategy=strategy)
    try:
        assert skate.get(pg.ready(), timeout=30) is True
        table = placement_group_table(pg)
        assert table["state"] == "CREATED" and table["strategy"] == strategy
        assert len(set(nodes_of(pg, n))) in distinct
        assert set(table["bundles_to_node_id"].values()) == set(nodes_of(pg, n))
    finally:
        remove_placement_group(pg)


def test_reservation_is_all_or_nothing(three_nodes):
    wait_for_condition(lambda: free_cpus() == 6)
    # 4 bundles of 2 CPUs on different nodes can never exist on 3 nodes
    impossible = placement_group([{"CPU": 2}] * 4, strategy="STRICT_SPREAD")
    try:
        assert not impossible.wait(timeout_seconds=1)
        assert placement_group_table(impossible)["state"] == "PENDING"
        wait_for_condition(lambda: free_cpus() == 6)  # nothing half-reserved
    finally:
        remove_placement_group(impossible)


def test_pending_group_is_created_when_room_frees_up(three_nodes):
    wait_for_condition(lambda: free_cpus() == 6)
    first = placement_group([{"CPU": 2}] * 3, strategy="STRICT_SPREAD")
    assert first.wait(30)
    second = placement_group([{"CPU": 1}], strategy="PACK")
    try:
        assert not second.wait(timeout_seconds=0.5)
        remove_placement_group(first)
        assert second.wait(30)
    finally:
        remove_placement_group(second)


def test_removal_ends_actors_inside_and_frees_resources(three_nodes):
    wait_for_condition(lambda: free_cpus() == 6)
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="PACK", name="named-pg")
    assert pg.wait(30)
    assert get_placement_group("named-pg").id == pg.id

    @skate.remote(num_cpus=1)
    class Inside:
        def ping(self):
            return "pong"

    a = Inside.options(scheduling_strategy=InGroup(pg, 1)).remote()
    assert skate.get(a.ping.remote(), timeout=30) == "pong"
    wait_for_condition(lambda: free_cpus() == 4)
    remove_placement_group(pg)

    def ended():  # removal is asynchronous (as in Ray): a call sent at once may still run
        try:
            skate.get(a.ping.remote(), timeout=30)
        except skate.exceptions.RayActorError:
            return True
        return False

    wait_for_condition(ended, timeout=30)
    wait_for_condition(lambda: free_cpus() == 6)
    assert placement_group_table(pg)["state"] == "REMOVED"
    with pytest.raises(ValueError):
        get_placement_group("named-pg")


def test_whole_group_strategy_and_bad_input(three_nodes):
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="PACK")
    try:
        assert pg.wait(30)
        got = skate.get(where.options(scheduling_strategy=InGroup(pg, -1)).remote(), timeout=30)
        assert got in set(placement_group_table(pg)["bundles_to_node_id"].values())
        with pytest.raises(ValueError, match="out of range"):
            where.options(scheduling_strategy=InGroup(pg, 5)).remote()
    finally:
        remove_placement_group(pg)
    for bad in ([], [{}], [{"CPU": -1}], "CPU", [{"CPU": "x"}]):
        with pytest.raises(ValueError):
            placement_group(bad)
    with pytest.raises(ValueError, match="strategy"):
        placement_group([{"CPU": 1}], strategy="CLOSE")

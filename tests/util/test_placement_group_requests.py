"""Placement groups checked as Ray checks them: reserved names, requests that fit no
bundle, the resources a task in a group is told it has, ready() while the group is busy.

Differential: passes against real Ray too (SKATE_TEST_AGAINST_RAY=1).
"""

import pytest

import skate
from skate.exceptions import RayError
from skate.util import placement_group, remove_placement_group
from skate.util.scheduling_strategies import PlacementGroupSchedulingStrategy as InGroup


@pytest.fixture
def cluster(start_cluster):
    return start_cluster(num_cpus=4)


@skate.remote
def assigned():
    return skate.get_runtime_context().get_assigned_resources()


@skate.remote
class Holder:
    def assigned(self):
        return skate.get_runtime_context().get_assigned_resources()


@pytest.fixture
def group(cluster):
    made = []

    def make(bundles):
        pg = placement_group(bundles)
        made.append(pg)
        assert pg.wait(30)
        return pg

    yield make
    for pg in made:
        remove_placement_group(pg)


def test_bundles_may_not_name_reserved_resources(cluster):
    with pytest.raises((ValueError, RayError), match="reserved"):
        placement_group([{"bundle": 1}])


def test_assigned_resources_use_plain_names(group):
    pg = group([{"CPU": 1}, {"CPU": 1, "memory": 100}])
    assert skate.get(assigned.options(scheduling_strategy=InGroup(pg, 0)).remote()) == \
        {"CPU": 1.0}
    assert skate.get(assigned.options(scheduling_strategy=InGroup(pg, 1), memory=100).remote()) \
        == {"CPU": 1.0, "memory": 100.0}


@pytest.mark.parametrize("options", [{"num_cpus": 2}, {"resources": {"x": 1}}])
def test_a_task_that_fits_no_bundle_fails_at_remote(group, options):
    pg = group([{"CPU": 1}, {"CPU": 1}])
    with pytest.raises(ValueError, match="cannot fit into any bundles"):
        assigned.options(scheduling_strategy=InGroup(pg, 0), **options).remote()


def test_default_cpu_against_a_cpu_less_bundle(group):
    pg = group([{"memory": 100}])
    with pytest.raises(ValueError, match="cannot fit into any bundles"):
        Holder.options(scheduling_strategy=InGroup(pg)).remote()
    with pytest.raises(ValueError, match="cannot fit into any bundles"):
        assigned.options(scheduling_strategy=InGroup(pg)).remote()
    a = Holder.options(scheduling_strategy=InGroup(pg), num_cpus=0).remote()
    assert skate.get(a.assigned.remote(), timeout=30) == {}
    assert skate.get(assigned.options(scheduling_strategy=InGroup(pg), num_cpus=0,
                                      memory=50).remote(), timeout=30) == {"memory": 50.0}
    skate.kill(a)


def test_ready_returns_while_the_group_is_fully_used(group):
    pg = group([{"CPU": 1}])
    h = Holder.options(scheduling_strategy=InGroup(pg), num_cpus=1).remote()
    assert skate.get(h.assigned.remote(), timeout=30) == {"CPU": 1.0}
    ready, _ = skate.wait([pg.ready()], timeout=10)
    assert len(ready) == 1
    skate.kill(h)

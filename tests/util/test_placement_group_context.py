"""get_current_placement_group and placement_group_capture_child_tasks (one node)."""

import skate
from skate.util import get_current_placement_group, placement_group, remove_placement_group
from skate.util.scheduling_strategies import PlacementGroupSchedulingStrategy


@skate.remote(num_cpus=1)
def current_group():
    pg = get_current_placement_group()
    return pg.id.hex() if pg else None


@skate.remote(num_cpus=1)
def parent():
    # No strategy given: captured into the caller's group only when it captures.
    return get_current_placement_group().id.hex(), skate.get(current_group.remote())


def test_tasks_know_their_group_and_children_are_captured(start_regular_4cpu):
    assert get_current_placement_group() is None
    pg = placement_group([{"CPU": 1}, {"CPU": 1}])
    try:
        assert pg.wait(30)
        inside = current_group.options(
            scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 0)).remote()
        assert skate.get(inside) == pg.id.hex()
        captured = parent.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
            pg, 0, placement_group_capture_child_tasks=True)).remote()
        assert skate.get(captured) == (pg.id.hex(), pg.id.hex())
        loose = parent.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
            pg, 0, placement_group_capture_child_tasks=False)).remote()
        assert skate.get(loose) == (pg.id.hex(), None)
        assert skate.get(current_group.remote()) is None
    finally:
        remove_placement_group(pg)

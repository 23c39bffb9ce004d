"""``cluster_utils.Cluster`` as Ray's: nodes advertise memory, ``address="auto"`` finds it.

Differential: passes against real Ray too (SKATE_TEST_AGAINST_RAY=1).
"""

import skate
from skate.util import placement_group, remove_placement_group


def test_added_nodes_advertise_memory_and_bundles_may_use_it(cluster):
    sim = cluster(workers=[{"num_cpus": 3}])
    node = next(n for n in skate.nodes() if n["NodeID"] == sim.nodes[1].node_id)
    assert node["Resources"]["memory"] > 500
    pg = placement_group([{"CPU": 3, "memory": 500}])
    try:
        assert pg.wait(30)
    finally:
        remove_placement_group(pg)


def test_init_auto_finds_a_running_cluster(cluster):
    sim = cluster(connect=False)
    skate.init(address="auto")
    try:
        assert {n["NodeID"] for n in skate.nodes() if n["Alive"]} == \
            {n.node_id for n in sim.nodes}
    finally:
        skate.shutdown()

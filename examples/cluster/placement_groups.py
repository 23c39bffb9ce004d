"""Placement groups: reserve CPUs on separate nodes as one unit, run actors in the bundles.

Run: python examples/cluster/placement_groups.py
"""

import skate
from skate.cluster_utils import Cluster
from skate.util import placement_group, placement_group_table, remove_placement_group
from skate.util.scheduling_strategies import PlacementGroupSchedulingStrategy


@skate.remote(num_cpus=1)
class Shard:
    def __init__(self, index):
        self.index = index

    def info(self):
        return self.index, skate.get_runtime_context().get_node_id()[:8]


if __name__ == "__main__":
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    skate.init(address=cluster.address)

    pg = placement_group([{"CPU": 1}] * 3, strategy="STRICT_SPREAD")
    skate.get(pg.ready())
    print("reserved:", placement_group_table(pg)["state"])
    shards = [Shard.options(scheduling_strategy=PlacementGroupSchedulingStrategy(pg, i)).remote(i)
              for i in range(3)]
    print("one shard per node:", skate.get([s.info.remote() for s in shards]))

    # all or nothing: a second group that cannot fit reserves nothing and waits
    waiting = placement_group([{"CPU": 1}], strategy="PACK")
    print("second group ready while the first holds every CPU?", waiting.wait(timeout_seconds=1))
    remove_placement_group(pg)
    print("after removing the first:", waiting.wait(timeout_seconds=10))
    skate.shutdown()
    cluster.shutdown()

"""Helpers for the multi-node tests (importable from workers too)."""

from dataclasses import dataclass

from tests._skate_alias import AGAINST_RAY
from tests.core.utils import wait_for_condition

if AGAINST_RAY:
    from ray.cluster_utils import Cluster
else:
    from skate.cluster_utils import Cluster

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass
class SimCluster:
    """A started ``Cluster`` and its nodes in the order they were added
    (``ray.cluster_utils.Cluster.worker_nodes`` is a set)."""

    cluster: Cluster
    head: object
    workers: list

    @property
    def nodes(self) -> list:
        return [self.head] + self.workers

    @property
    def address(self) -> str:
        return self.cluster.address

    def add_node(self, **node_args):
        node = self.cluster.add_node(**node_args)
        self.workers.append(node)
        return node

    def remove_node(self, node, allow_graceful=False):
        """Kill ``node`` (SIGKILL by default, like a machine dying)."""
        self.workers.remove(node)
        self.cluster.remove_node(node, allow_graceful=allow_graceful)


def wait_schedulable(node_ids, timeout=10):
    """Wait until the driver's node can place work on each of ``node_ids``.

    A node is alive in ``skate.nodes()`` a moment before every node manager
    has heard of it (test_scheduling checks that window separately); this
    also leaves a warm worker on every node.
    """
    import skate
    from skate.exceptions import TaskUnschedulableError
    from skate.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    @skate.remote(num_cpus=0, max_retries=0)
    def probe():
        return skate.get_runtime_context().get_node_id()

    def placed(node_id):
        strategy = NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)
        try:
            return skate.get(probe.options(scheduling_strategy=strategy).remote(),
                             timeout=timeout) == node_id
        except TaskUnschedulableError:
            return False

    for node_id in node_ids:
        wait_for_condition(placed, timeout=timeout, node_id=node_id)


def node_of(node_id):
    """``skate.nodes()``'s entry for ``node_id``."""
    import skate

    return next(n for n in skate.nodes() if n["NodeID"] == node_id)


def store_stats(node_id) -> dict:
    """Skate only: the object store books of one node ({capacity, used, num_objects, ...})."""
    from skate.core import rpc
    from skate.core.node_manager.client import NodeManagerClient

    client = NodeManagerClient(rpc.connect(node_of(node_id)["raylet_address"], name="test-stats"))
    try:
        return client.store_stats(timeout=10)
    finally:
        client.close()

"""Fixtures for the multi-node tests: a simulated cluster (several node managers
on this machine, as ``ray.cluster_utils.Cluster``) that is always torn down.

Against real Ray (SKATE_TEST_AGAINST_RAY=1) the same tests use
``ray.cluster_utils.Cluster``; tests that read Skate internals are
``skate_only``.
"""

import pytest

from tests.cluster.utils import Cluster, SimCluster, wait_schedulable
from tests.conftest import _stop_cluster, assert_no_leaks


@pytest.fixture
def cluster():
    """Factory: ``cluster(head={...}, workers=[{...}, ...], connect=True)``.

    ``head`` and each entry of ``workers`` are ``add_node`` arguments
    (``num_cpus``, ``num_gpus``, ``resources``, ``object_store_memory``); the
    head defaults to one CPU. Returns a ``SimCluster`` (the ``Cluster`` and
    its nodes in the order given). With ``connect`` this process joins it as
    a driver and waits until work can be placed on every node. At teardown
    the driver disconnects, every node is stopped, and no process or
    /dev/shm arena of this test process may remain.
    """
    made = []
    _stop_cluster()  # a cluster left by an earlier module would be joined instead

    def make(head=None, workers=(), connect=True, namespace=None) -> SimCluster:
        c = Cluster(initialize_head=True, head_node_args=dict(head or {"num_cpus": 1}))
        made.append(c)
        sim = SimCluster(c, c.head_node, [c.add_node(**args) for args in workers])
        c.wait_for_nodes()
        if connect:
            c.connect(namespace=namespace)
            wait_schedulable([n.node_id for n in sim.nodes])
        return sim

    try:
        yield make
    finally:
        try:
            _stop_cluster()
        finally:
            for c in made:
                c.shutdown()
        assert_no_leaks(timeout=10)

"""A 3-node cluster on one machine: spillback, custom resources, objects crossing nodes,
a node dying.

Run: python examples/cluster/simulated_cluster.py
"""

import collections

import numpy as np

import skate
from skate.cluster_utils import Cluster


@skate.remote
def where():
    return skate.get_runtime_context().get_node_id()[:8]


@skate.remote(resources={"big_memory": 1}, max_retries=3)
def column_sums(matrix):
    # runs on a node with "big_memory"; the matrix was pulled there from the head
    return matrix.sum(axis=0), skate.get_runtime_context().get_node_id()[:8]


if __name__ == "__main__":
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    workers = [cluster.add_node(num_cpus=2, resources={"big_memory": 1}) for _ in range(2)]
    skate.init(address=cluster.address)
    print("nodes:", len(skate.nodes()), "CPUs:", skate.cluster_resources()["CPU"])

    spread = collections.Counter(skate.get(
        [where.options(scheduling_strategy="SPREAD").remote() for _ in range(12)]))
    print("SPREAD over nodes:", dict(spread))

    matrix = np.random.default_rng(0).random((2_000, 1_000))  # 16 MB, stored on the head
    sums, node = skate.get(column_sums.remote(skate.put(matrix)))
    print(f"computed on node {node}: correct={np.allclose(sums, matrix.sum(axis=0))}")

    cluster.remove_node(workers[0], allow_graceful=False)  # a machine dies
    sums, node = skate.get(column_sums.remote(skate.put(matrix)))
    print(f"after a node died, ran on {node}: correct={np.allclose(sums, matrix.sum(axis=0))}")
    skate.shutdown()
    cluster.shutdown()

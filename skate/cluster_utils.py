"""Simulate a multi-node cluster on one machine (as Ray's ``ray.cluster_utils``).

Each node is its own node manager process group with its own resources, its
own worker pool and its own shared-memory object store, so objects really
move between nodes.

>>> from skate.cluster_utils import Cluster
>>> import skate
>>> cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
>>> worker = cluster.add_node(num_cpus=2, resources={"gpu_box": 1})
>>> skate.init(address=cluster.address)  # doctest: +SKIP
>>> cluster.shutdown()
"""

from __future__ import annotations

import os
import time

from skate.exceptions import RaySystemError

_DEFAULT_STORE = 256 * 1024 * 1024


class ClusterNode:
    """One simulated node; ``node_id`` is what ``skate.nodes()`` reports."""

    def __init__(self, local_node, resources: dict, head: bool):
        self._node = local_node
        self.node_id = local_node.node_id
        self.unique_id = local_node.node_id
        self.resources = resources
        self.is_head = head
        self.address = local_node.raylet_address

    def __repr__(self):
        return f"ClusterNode({'head' if self.is_head else 'worker'}, {self.node_id[:8]})"


def _resources(num_cpus=1, num_gpus=0, resources=None, object_store_memory=None, memory=None,
               **_ignored) -> tuple[dict, int]:
    from skate.core.config import default_memory

    store = object_store_memory or _DEFAULT_STORE
    # every node advertises memory, as Ray's do (bundles and tasks may ask for it)
    total = {"CPU": num_cpus, "GPU": num_gpus, **(resources or {}),
             "object_store_memory": store, "memory": memory or default_memory(store)}
    return {k: v for k, v in total.items() if v}, store


class Cluster:
    """A head plus any number of extra nodes, all on this machine.

    ``add_node(num_cpus=, num_gpus=, resources=, object_store_memory=, memory=)``,
    ``remove_node(node)`` (kills the node's processes, like a machine dying),
    ``address`` (pass it to ``skate.init``; ``init(address="auto")`` finds it too, as
    Ray's does) and ``shutdown()``.
    """

    def __init__(self, initialize_head: bool = False, connect: bool = False,
                 head_node_args: dict | None = None, shutdown_at_exit: bool = True):
        self.head_node: ClusterNode | None = None
        self.worker_nodes: list[ClusterNode] = []
        self._session_dir = None
        self.address = None
        if initialize_head:
            self.add_node(**(head_node_args or {}))
            if connect:
                self.connect()
        if shutdown_at_exit:
            import atexit

            atexit.register(self.shutdown)

    def add_node(self, wait: bool = True, **node_args) -> ClusterNode:
        from skate.core.node import start_head, start_worker_node, write_current

        resources, store = _resources(**node_args)
        if self.head_node is None:
            resources["node:__internal_head__"] = 1
            node = start_head(resources, store, owner_pid=os.getpid())
            self._session_dir = node.session_dir
            self.address = node.gcs_address
            self.token = node.token
            self.head_node = ClusterNode(node, resources, head=True)
            write_current(node, {"cluster_utils": True})
            return self.head_node
        node = start_worker_node(self.address, resources, store, self.token,
                                 owner_pid=os.getpid(), parent_dir=self._session_dir)
        cn = ClusterNode(node, resources, head=False)
        self.worker_nodes.append(cn)
        if wait:
            self._wait_alive(cn.node_id, True)
        return cn

    def remove_node(self, node: ClusterNode, allow_graceful: bool = True) -> None:
        """Stop a node's processes; ``allow_graceful=False`` kills them with SIGKILL."""
        if node is self.head_node:
            raise ValueError("Removing the head node is not supported; call shutdown().")
        if node in self.worker_nodes:
            self.worker_nodes.remove(node)
        if not allow_graceful:
            for p in node._node.procs:
                p.kill()
        node._node.stop()
        self._wait_alive(node.node_id, False)

    def list_all_nodes(self) -> list:
        return ([self.head_node] if self.head_node else []) + list(self.worker_nodes)

    def _nodes(self) -> list:
        from skate.core import rpc
        from skate.core.control_store.client import ControlStoreClient

        c = ControlStoreClient(rpc.connect(self.address, name="cluster-util", token=self.token))
        try:
            return c.get_nodes(timeout=10)
        finally:
            c.close()

    def _wait_alive(self, node_id: str, alive: bool, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = {n["NodeID"]: n["Alive"] for n in self._nodes()}
            if states.get(node_id, False) == alive:
                return
            time.sleep(0.05)
        raise RaySystemError(f"node {node_id} did not become {'alive' if alive else 'dead'} "
                             f"within {timeout} s")

    def wait_for_nodes(self, timeout: float = 30) -> None:
        """Wait until every node added is alive in the control store."""
        for n in self.list_all_nodes():
            self._wait_alive(n.node_id, True, timeout)

    def connect(self, namespace: str | None = None, **kwargs):
        import skate

        return skate.init(address=self.address, namespace=namespace, **kwargs)

    def shutdown(self) -> None:
        import skate
        from skate.core import api

        if skate.is_initialized() and api._node is None:
            skate.shutdown()  # a driver connected to this cluster
        for n in list(self.worker_nodes):
            n._node.stop()
        self.worker_nodes = []
        if self.head_node is not None:
            from skate.core.node import clear_current

            clear_current(self._session_dir)
            self.head_node._node.stop()
            self.head_node = None

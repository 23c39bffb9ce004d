"""The control store's node table: who joined, what they have free, and who is alive.

A node manager registers once and then beats every 0.1 s (``cluster_view``),
reporting its free resources and getting every node's view back. A node whose
connection drops is declared dead at once by the server; one that stays
connected but silent for ``timeout_s`` is found by ``silent``. A dead node
stays in the table (``Alive`` False, with its ``death_reason``) so ``get_nodes``
shows it, and its node manager client is closed and dropped.

Invariant: ``raylets`` holds exactly the nodes whose ``Alive`` is True.
"""

from __future__ import annotations

from skate.core import rpc
from skate.core.node_manager.client import NodeManagerClient


class Nodes:
    """Not thread-safe: the control store calls it under its lock."""

    def __init__(self) -> None:
        self.info: dict[str, dict] = {}  # node -> what it registered, with Alive, NodeID
        self.available: dict[str, dict] = {}  # node -> free resources, from heartbeats
        self.last_seen: dict[str, float] = {}  # node -> monotonic time of its last heartbeat
        self.raylets: dict[str, NodeManagerClient] = {}  # live node -> its node manager

    def register(self, node_id: str, info: dict, now: float) -> None:
        """Connects to the node's node manager (raises OSError if it cannot be reached)."""
        raylet = NodeManagerClient(rpc.connect(info["raylet_address"], name="gcs->raylet"))
        raylet.hello_control_store()
        self.info[node_id] = dict(info, NodeID=node_id, Alive=True)
        self.available[node_id] = dict(info["Resources"])
        self.last_seen[node_id] = now
        self.raylets[node_id] = raylet

    def heartbeat(self, node_id: str | None, available: dict, total: dict | None,
                  now: float) -> bool:
        """Record a beat; False if the node was declared dead (it must stop)."""
        info = self.info.get(node_id) if node_id is not None else None
        if node_id is None or info is None:
            return True  # a driver's view request, or a node not registered yet
        if not info["Alive"]:
            return False
        self.available[node_id] = available
        if total is not None:  # placement group bundles added their resources
            info["Resources"] = total
        self.last_seen[node_id] = now
        return True

    def view(self) -> dict:
        """Every node's (total, available, alive, raylet, transfer, stream addresses)."""
        return {n: (info["Resources"], self.available.get(n, {}), info["Alive"],
                    info["raylet_address"], info.get("transfer_address", ""),
                    info.get("stream_address", ""))
                for n, info in self.info.items()}

    def cluster_resources(self) -> tuple[dict, dict]:
        """(total, available) summed over the live nodes."""
        total: dict = {}
        avail: dict = {}
        for n, info in self.info.items():
            if not info["Alive"]:
                continue
            for k, v in info["Resources"].items():
                total[k] = total.get(k, 0) + v
            for k, v in self.available.get(n, {}).items():
                avail[k] = avail.get(k, 0) + v
        return total, avail

    def silent(self, now: float, timeout_s: float) -> list[str]:
        """Live nodes that have not beaten for longer than ``timeout_s``."""
        return [n for n, info in self.info.items()
                if info["Alive"] and now - self.last_seen.get(n, now) > timeout_s]

    def mark_dead(self, node_id: str, why: str) -> bool:
        """Declare a live node dead and close its node manager client; False if it was not
        live. Closing fails the requests still outstanding on that client."""
        info = self.info.get(node_id)
        if info is None or not info["Alive"]:
            return False
        info["Alive"] = False
        info["death_reason"] = why
        raylet = self.raylets.pop(node_id, None)
        if raylet is not None:
            raylet.close()
        return True

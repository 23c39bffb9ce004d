"""``GET /api/nodes``: every node (dead ones too) with its resources right now -- total and
available -- and its object store's use, and the cluster's totals."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from skate.dashboard.api import ask, context, record


def merge(nodes: list, status: dict) -> tuple[list, dict]:
    """(node rows, {"total", "available"} over the alive nodes): each ``NodeState`` with
    ``resources_available`` and ``object_store`` from ``cluster_status()`` (None for a dead
    node, or one that did not answer).

    >>> from skate.util.state import NodeState
    >>> n = NodeState("a", "10.0.0.1", True, "ALIVE", "10.0.0.1", {"CPU": 2.0})
    >>> rows, res = merge([n], {"nodes": [{"node_id": "a", "state": "ALIVE",
    ...     "resources_total": {"CPU": 2.0}, "resources_available": {"CPU": 0.5},
    ...     "object_store": {"used": 1, "capacity": 8}}]})
    >>> rows[0]["resources_available"], res
    ({'CPU': 0.5}, {'total': {'CPU': 2.0}, 'available': {'CPU': 0.5}})
    """
    live = {n["node_id"]: n for n in status.get("nodes", ())}
    rows, total, available = [], {}, {}
    for node in nodes:
        row = record(node)
        now = live.get(node.node_id, {})
        row["resources_available"] = now.get("resources_available")
        row["object_store"] = now.get("object_store")
        if now.get("resources_total"):
            row["resources_total"] = now["resources_total"]
        rows.append(row)
        if node.state == "ALIVE":
            for name, v in row["resources_total"].items():
                total[name] = total.get(name, 0.0) + v
            for name, v in (row["resources_available"] or row["resources_total"]).items():
                available[name] = available.get(name, 0.0) + v
    return rows, {"total": total, "available": available}


async def list_nodes(request: Request) -> JSONResponse:
    """``{"nodes": [NodeState + resources_available, object_store], "total": n,
    "resources": {"total": {...}, "available": {...}}}``."""
    cluster = context(request).cluster
    nodes = await ask(cluster.nodes)
    rows, resources = merge(nodes, await ask(cluster.status))
    return JSONResponse({"nodes": rows, "total": len(rows), "resources": resources})


routes = [Route("/api/nodes", list_nodes, methods=["GET"])]

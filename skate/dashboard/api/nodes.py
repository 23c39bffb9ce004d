"""``GET /api/nodes``: every node (dead ones too) and the cluster's resources right now."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from skate.dashboard.api import ask, context, record


async def list_nodes(request: Request) -> JSONResponse:
    """``{"nodes": [NodeState...], "total": n, "resources": {"total": {...},
    "available": {...}}}``."""
    cluster = context(request).cluster
    nodes = await ask(cluster.nodes)
    total, available = await ask(cluster.resources)
    return JSONResponse({"nodes": [record(n) for n in nodes], "total": len(nodes),
                         "resources": {"total": total, "available": available}})


routes = [Route("/api/nodes", list_nodes, methods=["GET"])]

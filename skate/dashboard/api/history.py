"""``GET /api/cluster/history``: the resource samples of the last minutes (see
``history.ResourceHistory.columns`` for the shape)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from skate.dashboard.api import context


async def cluster_history(request: Request) -> JSONResponse:
    return JSONResponse(context(request).history.columns())


routes = [Route("/api/cluster/history", cluster_history, methods=["GET"])]

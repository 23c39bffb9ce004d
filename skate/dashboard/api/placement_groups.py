"""``GET /api/placement_groups``: every group (removed ones too), paginated, with counts."""

from __future__ import annotations

from collections import Counter

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from skate.dashboard.api import ask, context, record
from skate.dashboard.params import choice, page_of

STATES = ("PENDING", "CREATED", "REMOVED")


async def list_placement_groups(request: Request) -> JSONResponse:
    q = request.query_params
    state, page = choice(q, "state", STATES), page_of(q)
    groups = await ask(context(request).cluster.placement_groups)
    chosen = [g for g in groups if state in (None, g.state)]
    return JSONResponse({**page.info(len(chosen)),
                         "placement_groups": [record(g) for g in page.slice(chosen)],
                         "summary": {"by_state": dict(Counter(g.state for g in groups))}})


routes = [Route("/api/placement_groups", list_placement_groups, methods=["GET"])]

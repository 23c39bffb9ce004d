"""``GET /api/timeline``: ``skate.timeline()`` as a download (a Chrome trace: open it in
https://ui.perfetto.dev or chrome://tracing)."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from skate.dashboard.api import ask, context


async def timeline(request: Request) -> JSONResponse:
    events = await ask(context(request).cluster.timeline)
    name = time.strftime("skate-timeline-%Y%m%d-%H%M%S.json")
    return JSONResponse(events, headers={"Content-Disposition": f'attachment; filename="{name}"'})


routes = [Route("/api/timeline", timeline, methods=["GET"])]

"""``GET /metrics``: the cluster's metrics in Prometheus' text format (what a Prometheus
server scrapes), and ``GET /api/metrics``: the same as JSON (``skate.util.metrics.snapshot``'s
families). Reads like the others: open, unless the dashboard runs with ``read_token``; the
token-free way is the exporter (``skate start --head --metrics-export-port``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from skate.dashboard.api import ask, context
from skate.dashboard.errors import ApiError

#: Prometheus' text exposition format
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def prometheus(request: Request) -> Response:
    try:
        body = await ask(context(request).cluster.prometheus)
    except ImportError:
        raise ApiError(503, "The Prometheus format needs the prometheus_client package on the "
                            "head: pip install prometheus-client.") from None
    return Response(body, media_type=CONTENT_TYPE)


async def families(request: Request) -> JSONResponse:
    return JSONResponse({"families": await ask(context(request).cluster.metrics)})


routes = [Route("/metrics", prometheus, methods=["GET"]),
          Route("/api/metrics", families, methods=["GET"])]

"""The RLlib page's API: ``GET /api/rllib`` answers ``{"series": {"t": [...], "algorithms":
[{"algorithm", "env_steps_per_s", "episode_return_mean", "env_steps_sampled"}]},
"experiments": [...]}``: the algorithms' gauges as the dashboard sampled them every 2 s
(``metric_history.MetricHistory.rllib``), and the RLlib experiments run through Tune (their
trials' curves: ``GET /api/tune/rllib/{name}``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from skate.dashboard.api import ask, context
from skate.dashboard.api.tune import headers


async def rllib_overview(request: Request) -> JSONResponse:
    ctx = context(request)
    series = ctx.metric_history.rllib() if ctx.metric_history is not None else None
    return JSONResponse({"series": series,
                         "experiments": await ask(headers, ctx.cluster, "rllib")})


routes = [Route("/api/rllib", rllib_overview, methods=["GET"])]

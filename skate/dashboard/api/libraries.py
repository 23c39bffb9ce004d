"""``GET /api/libraries``: which library pages have something to show, so the page shows
their tabs only then: ``{"tune": bool, "train": bool, "rllib": bool, "serve": bool}``.

Tune, Train and RLlib: an experiment of that kind was published into the KV (an RLlib
algorithm's gauges count too); Serve: the controller published its status, or the sampled
metrics hold serve's. One KV listing, no record read.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from skate.dashboard.api import ask, context
from skate.dashboard.api.serve import KEY as SERVE_KEY
from skate.dashboard.api.tune import NAMESPACE, PREFIX


def in_use(cluster, sampled: set) -> dict:
    keys = cluster.kv_keys("", NAMESPACE)
    kinds = {k.split("/")[1] for k in keys if k.startswith(PREFIX) and k.count("/") >= 2}
    return {"tune": bool(kinds), "train": "train" in kinds,
            "rllib": "rllib" in kinds or any(f.startswith("rllib_") for f in sampled),
            "serve": SERVE_KEY in keys or any(f.startswith("serve_") for f in sampled)}


async def libraries(request: Request) -> JSONResponse:
    ctx = context(request)
    sampled = ctx.metric_history.families() if ctx.metric_history is not None else set()
    return JSONResponse(await ask(in_use, ctx.cluster, sampled))


routes = [Route("/api/libraries", libraries, methods=["GET"])]

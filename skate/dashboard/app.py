"""The dashboard's web application: the page, its static files and the JSON API.

``create_app(context)`` builds a Starlette app from a ``Context`` -- the
cluster to read (``cluster.Cluster``), the resource and metric histories, the
job runner and the token -- so the tests build one over fakes and the
dashboard process over the live cluster. The page is three static files (vanilla JavaScript,
no build step) and uPlot, vendored: nothing is fetched from elsewhere.

>>> from skate.dashboard.app import Context, create_app
>>> app = create_app(Context(cluster=None, history=None, jobs=None, token="t"))
>>> sorted(r.path for r in app.routes if r.path.startswith("/api/n"))
['/api/nodes']
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from skate.dashboard import errors
from skate.dashboard.api import (
    actors,
    history,
    jobs,
    libraries,
    logs,
    metrics,
    nodes,
    objects,
    placement_groups,
    rllib,
    serve,
    tasks,
    timeline,
    tune,
)
from skate.dashboard.auth import ReadGate

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")


@dataclass
class Context:
    """What the endpoints work with (``request.app.state.ctx``)."""

    cluster: object  #: a cluster.Cluster
    history: object  #: a history.ResourceHistory
    jobs: object  #: a jobs.runner.JobRunner
    token: str  #: the cluster token every write must carry
    read_token: bool = False  #: reads need the token too
    version: str = ""
    metric_history: object = None  #: a metric_history.MetricHistory (the library pages' plots)


async def index(request: Request) -> FileResponse:
    return FileResponse(os.path.join(STATIC, "index.html"),
                        headers={"Cache-Control": "no-cache"})


async def version(request: Request) -> JSONResponse:
    """What ``JobSubmissionClient`` checks first (as Ray's ``/api/version``); readable
    without the token, so the page knows whether to ask for one."""
    ctx = request.app.state.ctx
    return JSONResponse({"version": ctx.version, "ray_version": ctx.version,
                         "server": "skate-dashboard", "read_token": ctx.read_token})


def create_app(context: Context) -> Starlette:
    routes = [Route("/", index, methods=["GET"]),
              Route("/api/version", version, methods=["GET"]),
              Mount("/static", StaticFiles(directory=STATIC), name="static")]
    for module in (nodes, tasks, actors, placement_groups, jobs, timeline, history, logs,
                   objects, metrics, libraries, tune, serve, rllib):
        routes += module.routes
    app = Starlette(routes=routes, exception_handlers=errors.HANDLERS,
                    middleware=[Middleware(ReadGate, token=context.token,
                                           enabled=context.read_token,
                                           open_paths=("/api/version",))])
    app.state.ctx = context
    return app

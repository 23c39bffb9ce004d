"""The Serve page's API: applications, deployments and their replicas, and the requests.

``GET /api/serve`` answers::

    {"applications": [{"name", "status", "message", "route_prefix", "deployments": [
        {"name", "status", "message", "replica_states": {"RUNNING": 1}, "target_replicas",
         "requests", "errors"}]}],
     "proxy": {"host", "port"} | null, "published_at": seconds | null,
     "series": {"t": [...], "deployments": [{"application", "deployment", "qps",
                "errors_per_s", "p50_ms", "p99_ms"}]}}

The statuses are what the serve controller publishes into the KV when they
change (``skate/serve/controller_report.py``); without it (an older
controller), deployments come from the replica gauges. ``requests`` and
``errors`` are the counters now, summed over the replicas; the series are
computed from the metrics the dashboard samples every 2 s
(``metric_history.MetricHistory.serve``).
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from skate.dashboard.api import ask, context
from skate.dashboard.metric_history import SERVE_ERRORS, SERVE_REQUESTS, extract

NAMESPACE = "skate_dashboard"
KEY = "serve/status"
REPLICAS, TARGET = "serve_deployment_replicas", "serve_deployment_target_replicas"


def published(cluster) -> dict | None:
    raw = cluster.kv_get(KEY, NAMESPACE)
    try:
        status = json.loads(raw) if raw else None
    except ValueError:
        return None
    return status if isinstance(status, dict) else None


def from_gauges(families: list) -> dict:
    """Applications and deployments as the replica gauges tell them (no statuses)."""
    apps: dict = {}
    for f in families:
        if f["name"] not in (REPLICAS, TARGET):
            continue
        for s in f["samples"]:
            tags = s["tags"]
            dep = apps.setdefault(tags.get("application", ""), {"status": None, "message": "",
                                                                 "route_prefix": None,
                                                                 "deployments": {}})
            d = dep["deployments"].setdefault(tags.get("deployment", ""), {
                "status": None, "message": "", "replica_states": {}, "target_replicas": None})
            if f["name"] == TARGET:
                d["target_replicas"] = int(s["value"])
            elif s["value"]:
                d["replica_states"][tags.get("state", "")] = int(s["value"])
    return {"applications": apps, "proxy": None}


def overview(cluster) -> dict:
    families = cluster.metrics()
    status = published(cluster) or from_gauges(families)
    counts, _ = extract(families)
    apps = []
    for name, app in sorted(status.get("applications", {}).items()):
        deps = []
        for dname, d in sorted(app.get("deployments", {}).items()):
            key = (name, dname)
            deps.append({"name": dname, **d,
                         "requests": int(counts.get((SERVE_REQUESTS, key), 0)),
                         "errors": int(counts.get((SERVE_ERRORS, key), 0))})
        apps.append({"name": name, "status": app.get("status"), "message": app.get("message"),
                     "route_prefix": app.get("route_prefix"), "deployments": deps})
    return {"applications": apps, "proxy": status.get("proxy"),
            "published_at": status.get("published_at")}


async def serve_overview(request: Request) -> JSONResponse:
    ctx = context(request)
    body = await ask(overview, ctx.cluster)
    body["series"] = ctx.metric_history.serve() if ctx.metric_history is not None else None
    return JSONResponse(body)


routes = [Route("/api/serve", serve_overview, methods=["GET"])]

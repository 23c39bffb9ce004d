"""The Tune and Train pages' API: the experiments the Tune runner publishes into the KV
(``skate/tune/experiment_summary.py``: every ~2 s while it runs, and at its end).

- ``GET /api/tune?kind=tune|train|rllib``: ``{"experiments": [{"name", "kind", "status",
  "num_trials", "trial_counts", "metric", "mode", "metrics", "start_time", "updated"}]}``,
  newest first; without ``kind``, every one (an sgd run and an RLlib algorithm run through
  Tune are Tune experiments too);
- ``GET /api/tune/{kind}/{name}``: one experiment with its trials (id, name, status, config,
  last results, error) and each trial's curves (``history``: ``training_iteration`` and a
  list per metric).
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from skate.dashboard.api import ask, context
from skate.dashboard.errors import not_found
from skate.dashboard.params import choice

NAMESPACE = "skate_dashboard"
PREFIX = "tune/"
KINDS = ("tune", "train", "rllib")
MAX_LISTED = 100  # experiments read for a listing, the newest names last in the KV's order


def experiment_keys(cluster, kind: str | None = None) -> list:
    """KV keys of the published experiments (``tune/<kind>/<name>``), of one kind or all."""
    return [k for k in cluster.kv_keys(PREFIX + (f"{kind}/" if kind else ""), NAMESPACE)
            if k.count("/") >= 2]


def read(cluster, key: str) -> dict | None:
    raw = cluster.kv_get(key, NAMESPACE)
    if raw is None:
        return None
    try:
        summary = json.loads(raw)
    except ValueError:
        return None
    return summary if isinstance(summary, dict) else None


def headers(cluster, kind: str | None) -> list:
    """The experiments' summaries without their trials, newest first."""
    out = []
    for key in experiment_keys(cluster, kind)[-MAX_LISTED:]:
        s = read(cluster, key)
        if s is None:
            continue
        out.append({k: v for k, v in s.items() if k != "trials"})
    out.sort(key=lambda s: -(s.get("start_time") or 0))
    return out


async def list_experiments(request: Request) -> JSONResponse:
    kind = choice(request.query_params, "kind", KINDS)
    return JSONResponse({"experiments": await ask(headers, context(request).cluster, kind)})


async def get_experiment(request: Request) -> JSONResponse:
    kind, name = request.path_params["kind"], request.path_params["name"]
    summary = None
    if kind in KINDS:
        summary = await ask(read, context(request).cluster, f"{PREFIX}{kind}/{name}")
    if summary is None:
        raise not_found(f"No {kind} experiment named {name!r} was published (the Tune "
                        f"runner publishes one every 2 s while it runs).")
    return JSONResponse(summary)


routes = [Route("/api/tune", list_experiments, methods=["GET"]),
          Route("/api/tune/{kind}/{name}", get_experiment, methods=["GET"])]

"""The dashboard's JSON API, one module per page: nodes, tasks, actors, placement groups,
jobs (Ray's REST paths), the timeline, the resource history, logs, objects, metrics
(``/metrics`` too), and the library pages (tune -- Train's too --, serve, rllib, and which of
them are in use). Each module has its ``routes``; ``app.create_app`` mounts them all."""

from __future__ import annotations

import dataclasses

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from skate.dashboard.errors import ApiError


async def ask(fn, *args):
    """Run a blocking cluster call off the event loop; an unreachable cluster is a 503 and
    a filter the state API refuses a 400, each with the cluster's own message."""
    try:
        return await run_in_threadpool(fn, *args)
    except ConnectionError as e:
        raise ApiError(503, f"The cluster is unreachable: {e}") from None
    except ValueError as e:
        raise ApiError(400, str(e)) from None


def context(request: Request):
    """The running dashboard's ``app.Context``."""
    return request.app.state.ctx


def record(obj, fields=None) -> dict:
    """A state record as a JSON-ready dict (shallow: its values are JSON already), keeping
    only ``fields`` if given."""
    names = fields or [f.name for f in dataclasses.fields(obj)]
    return {name: getattr(obj, name) for name in names}


#: The largest request body read (a job's entrypoint, metadata and runtime_env): a client
#: cannot make the dashboard hold more than this per request.
MAX_BODY_BYTES = 4 << 20


async def json_body(request: Request, default=None):
    """The request's JSON body (``default`` when empty); malformed JSON is a 400, one past
    ``MAX_BODY_BYTES`` a 413 (refused before it is read when its length is declared)."""
    too_big = ApiError(413, f"The request body is larger than {MAX_BODY_BYTES >> 20} MiB.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_big
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return default
    import json

    try:
        return json.loads(raw)
    except ValueError as e:
        raise ApiError(400, f"The request body is not valid JSON: {e}.") from None

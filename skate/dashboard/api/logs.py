"""The Logs page's API: the log files of each node, a file's last lines, and a live tail.

- ``GET /api/logs?node_id=``: ``{"nodes": [{"node_id", "node_ip", "is_head_node",
  "files": {kind: [name]}}]}``, the head first;
- ``GET /api/logs/file?<which>&tail=N``: ``{"lines": [...], "tail": N}``, the last N lines
  (1-10000, default 1000);
- ``GET /api/logs/stream?<which>&tail=N``: text, the last N lines (default 100), then new
  ones as they are written, until the client disconnects.

``<which>`` names one log, as ``skate.state.get_log`` does: ``filename`` (with
``node_id``, else the head's), or ``actor_id``, ``task_id`` or ``pid`` (with
``node_id``) and ``suffix`` ``out`` (default) or ``err`` for that process's
output. A log that does not exist is a 404 before any streaming begins.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from skate.dashboard.api import ask, context
from skate.dashboard.errors import ApiError, bad_request, not_found
from skate.dashboard.log_stream import LogFollower, TooManyStreams
from skate.dashboard.params import choice, text, whole

MAX_TAIL = 10_000


def which(query) -> dict:
    """The ``get_log`` arguments naming one log, checked (a 400 names the fault).

    >>> which({"actor_id": "ab" * 16, "suffix": "err"})
    {'actor_id': 'abababababababababababababababab', 'suffix': 'err'}
    >>> which({"filename": "../x"})
    Traceback (most recent call last):
    ...
    skate.dashboard.errors.ApiError: filename must be a file name, without '/'; got '../x'.
    """
    out: dict = {}
    for key in ("filename", "actor_id", "task_id"):
        value = text(query, key)
        if value is not None:
            out[key] = value
    if query.get("pid"):
        out["pid"] = whole(query, "pid", 0, 1)
    given = [k for k in ("filename", "actor_id", "task_id", "pid") if k in out]
    if len(given) != 1:
        raise bad_request("Name one log: filename (with node_id for another node than the "
                          "head), actor_id, task_id or pid; got "
                          f"{' and '.join(given) or 'none'}.")
    name = out.get("filename")
    if name is not None and ("/" in name or name in (".", "..")):
        raise bad_request(f"filename must be a file name, without '/'; got {name!r}.")
    for key in ("actor_id", "task_id"):
        if key in out:
            try:
                bytes.fromhex(out[key])
            except ValueError:
                raise bad_request(f"{key} must be a hex id, got {out[key]!r}.") from None
    node_id = text(query, "node_id")
    if node_id is not None:
        out["node_id"] = node_id
    suffix = choice(query, "suffix", ("out", "err"))
    if suffix is not None:
        out["suffix"] = suffix
    return out


def _read(cluster, tail: int, args: dict) -> list:
    lines = cluster.log_lines(False, tail, **args)
    try:
        return list(lines)
    finally:
        lines.close()


async def _read_or_404(cluster, tail: int, args: dict) -> list:
    try:
        return await ask(_read, cluster, tail, args)
    except ApiError as e:
        # the query is checked above: what the state API refuses now is a log that is not
        # there (no such actor, node or file)
        if e.status == 400:
            raise not_found(e.message) from None
        raise


async def list_files(request: Request) -> JSONResponse:
    cluster = context(request).cluster
    files = await ask(cluster.log_files, text(request.query_params, "node_id"))
    labels = {n.node_id: n for n in await ask(cluster.nodes)}
    nodes = []
    for node_id, kinds in files.items():
        label = labels.get(node_id)
        nodes.append({"node_id": node_id, "node_ip": label.node_ip if label else "",
                      "is_head_node": bool(label and label.is_head_node),
                      "files": {kind: sorted(names) for kind, names in sorted(kinds.items())}})
    nodes.sort(key=lambda n: (not n["is_head_node"], n["node_id"]))
    return JSONResponse({"nodes": nodes})


async def read_file(request: Request) -> JSONResponse:
    q = request.query_params
    args, tail = which(q), whole(q, "tail", 1000, 1, MAX_TAIL)
    lines = await _read_or_404(context(request).cluster, tail, args)
    return JSONResponse({"lines": lines, "tail": tail, **args})


async def stream(request: Request) -> StreamingResponse:
    q = request.query_params
    args, tail = which(q), whole(q, "tail", 100, 1, MAX_TAIL)
    cluster = context(request).cluster
    await _read_or_404(cluster, 1, args)  # a log that is not there is a 404, not a stream
    follower = LogFollower(lambda: cluster.log_lines(True, tail, **args))
    try:
        follower.start()
    except TooManyStreams as e:
        raise ApiError(503, str(e)) from None
    return StreamingResponse(_relay(follower), media_type="text/plain; charset=utf-8",
                             headers={"Cache-Control": "no-cache",
                                      "X-Content-Type-Options": "nosniff"})


async def _relay(follower: LogFollower):
    """The follower's chunks; stopping it however this generator ends (a client that
    disconnects cancels it)."""
    try:
        async for chunk in follower.chunks():
            yield chunk
    finally:
        follower.stop()


routes = [Route("/api/logs", list_files, methods=["GET"]),
          Route("/api/logs/file", read_file, methods=["GET"]),
          Route("/api/logs/stream", stream, methods=["GET"])]

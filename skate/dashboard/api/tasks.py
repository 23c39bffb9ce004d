"""``GET /api/tasks``: task attempts, newest first, a page at a time, with counts.

Query: ``state`` (one of Ray's task states), ``name`` (the function or class
name, as the summary counts them), ``page`` (from 1), ``per_page`` (1-500,
default 50). The total comes from the summary, which the control store keeps
by name and state, so counting never fetches the records; a page is fetched
with an offset, so a deep one costs no more than the first. ``GET
/api/tasks/{task_id}`` is one attempt with its state changes.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from skate.dashboard.api import ask, context, record
from skate.dashboard.errors import not_found
from skate.dashboard.params import choice, page_of, text

STATES = ("PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT", "SUBMITTED_TO_WORKER", "RUNNING",
          "RUNNING_IN_RAY_GET", "RUNNING_IN_RAY_WAIT", "FINISHED", "FAILED")
#: what a row of the table needs (the events and resources are in the one-task answer)
ROW = ("task_id", "attempt_number", "name", "state", "job_id", "type", "func_or_class_name",
       "actor_id", "node_id", "worker_pid", "error_type", "error_message", "creation_time_ms",
       "start_time_ms", "end_time_ms")


def count(summary: dict, state: str | None, name: str | None) -> int:
    """How many attempts the summary counts for these filters.

    >>> s = {"summary": {"f": {"state_counts": {"FINISHED": 3, "FAILED": 1}},
    ...                  "g": {"state_counts": {"FINISHED": 2}}}}
    >>> count(s, None, None), count(s, "FINISHED", None), count(s, "FAILED", "f")
    (6, 5, 1)
    """
    return sum(n for fname, entry in summary["summary"].items() if name in (None, fname)
               for st, n in entry["state_counts"].items() if state in (None, st))


def by_state(summary: dict) -> dict:
    out: dict = {}
    for entry in summary["summary"].values():
        for st, n in entry["state_counts"].items():
            out[st] = out.get(st, 0) + n
    return out


async def list_tasks(request: Request) -> JSONResponse:
    q = request.query_params
    state, name, page = choice(q, "state", STATES), text(q, "name"), page_of(q)
    cluster = context(request).cluster
    filters = ([("state", "=", state)] if state else []) + \
        ([("func_or_class_name", "=", name)] if name else [])
    summary = await ask(cluster.task_summary)
    total = count(summary, state, name)
    rows = await ask(cluster.tasks, filters, page.size, page.offset) if total else []
    return JSONResponse({
        **page.info(total), "tasks": [record(t, ROW) for t in rows],
        "summary": {"total_tasks": summary["total_tasks"], "by_state": by_state(summary),
                    "by_name": {n: e["state_counts"] for n, e in summary["summary"].items()},
                    "dropped": summary.get("dropped", {})}})


async def get_task(request: Request) -> JSONResponse:
    task_id = request.path_params["task_id"]
    rows = await ask(context(request).cluster.tasks, [("task_id", "=", task_id)], 1)
    if not rows:
        raise not_found(f"No task with id {task_id!r} in the task history.")
    return JSONResponse(record(rows[0]))


routes = [Route("/api/tasks", list_tasks, methods=["GET"]),
          Route("/api/tasks/{task_id}", get_task, methods=["GET"])]

"""``GET /api/actors`` (paginated, filter by ``state`` / ``class_name``) and
``POST /api/actors/{actor_id}/kill`` (a write: it needs the token)."""

from __future__ import annotations

from collections import Counter

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from skate.dashboard.api import ask, context, json_body, record
from skate.dashboard.auth import writes
from skate.dashboard.errors import bad_request, not_found
from skate.dashboard.params import choice, page_of, text

STATES = ("PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD")


async def list_actors(request: Request) -> JSONResponse:
    q = request.query_params
    state, class_name, page = choice(q, "state", STATES), text(q, "class_name"), page_of(q)
    actors = await ask(context(request).cluster.actors)
    chosen = [a for a in actors if state in (None, a.state) and class_name in (None, a.class_name)]
    return JSONResponse({**page.info(len(chosen)),
                         "actors": [record(a) for a in page.slice(chosen)],
                         "summary": {"total_actors": len(actors),
                                     "by_state": dict(Counter(a.state for a in actors))}})


@writes
async def kill_actor(request: Request) -> JSONResponse:
    """Body (optional): ``{"no_restart": true}``; answers ``{"killed": bool}`` (False: it
    was already dead)."""
    actor_id = request.path_params["actor_id"]
    try:
        bytes.fromhex(actor_id)
    except ValueError:
        raise bad_request(f"{actor_id!r} is not an actor id (a hex string).") from None
    body = await json_body(request, {})
    no_restart = body.get("no_restart", True) if isinstance(body, dict) else None
    if not isinstance(no_restart, bool):
        raise bad_request('The body must be a JSON object such as {"no_restart": true}.')
    try:
        killed = await ask(context(request).cluster.kill_actor, actor_id, no_restart)
    except LookupError:
        raise not_found(f"No actor with id {actor_id!r}.") from None
    return JSONResponse({"actor_id": actor_id, "killed": killed})


routes = [Route("/api/actors", list_actors, methods=["GET"]),
          Route("/api/actors/{actor_id}/kill", kill_actor, methods=["POST"])]

"""Who may call what: every write needs the cluster token; reads only with ``read_token``.

The token is the cluster's own (``<session_dir>/token``, mode 0600, also
``SKATE_TOKEN`` in the processes the head starts), sent as
``Authorization: Bearer <token>``. It is compared in constant time. A write
(submitting a job runs arbitrary code on the head) is refused without it
whatever the settings: Ray's open jobs API is the cautionary tale.
"""

from __future__ import annotations

import functools
import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse

from skate.dashboard.errors import ApiError

MISSING = ("This call needs the cluster token: send 'Authorization: Bearer <token>'. The "
           "token is the file <session_dir>/token on the head (or SKATE_TOKEN).")
WRONG = "Wrong cluster token: use the one in <session_dir>/token on the head."


def check(request: Request, token: str) -> None:
    """Raise a 401 ApiError unless the request carries ``token``."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if not header:
        raise ApiError(401, MISSING)
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(),
                                                             token.encode()):
        raise ApiError(401, WRONG)


def writes(endpoint):
    """Mark an endpoint as a write: it runs only for requests that carry the token."""
    @functools.wraps(endpoint)
    async def guarded(request: Request):
        check(request, request.app.state.ctx.token)
        return await endpoint(request)
    return guarded


class ReadGate:
    """ASGI middleware: with ``read_token``, GETs under /api/ and of /metrics need the token
    as well (the page's own files stay readable, so a person can open it and type the token
    in)."""

    def __init__(self, app, token: str, enabled: bool, open_paths: tuple = ()):
        self.app = app
        self.token = token
        self.enabled = enabled
        self.open_paths = open_paths  # readable without the token all the same

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if self.enabled and scope["type"] == "http" and path not in self.open_paths and (
                path.startswith("/api/") or path == "/metrics"):
            try:
                check(Request(scope), self.token)
            except ApiError as e:
                response = JSONResponse({"error": e.message}, status_code=401,
                                        headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

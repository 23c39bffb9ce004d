"""HTTP between the proxy and a replica: the request envelope, and the user's answer as ASGI.

The proxy parses HTTP (uvicorn) and sends a replica a small tuple
(``RequestEnvelope``); the replica rebuilds an ASGI scope from it, so the
user's code sees a real ``starlette.requests.Request`` and may answer with
anything a Ray Serve deployment may: a starlette ``Response`` (streaming ones
too), ``str``, ``bytes``, JSON-able data, or a generator of chunks.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from typing import NamedTuple

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse


class RequestEnvelope(NamedTuple):
    method: str
    path: str
    query_string: bytes
    headers: list  # [(name bytes, value bytes)], names lower-case
    body: bytes
    root_path: str  # the application's route prefix ("" for "/")
    client: tuple | None
    server: tuple | None


class ResponseHead(NamedTuple):
    status: int
    headers: list  # [(name bytes, value bytes)]
    body: bytes
    stream_id: int | None  # not None: more chunks follow (Replica.next_chunks)


def scope_of(env: RequestEnvelope) -> dict:
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": env.method, "scheme": "http", "path": env.path,
            "raw_path": env.path.encode(), "query_string": env.query_string,
            "root_path": env.root_path, "headers": env.headers, "client": env.client,
            "server": env.server}


def receive_of(body: bytes):
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # nothing more comes; a disconnect is never reported
    return receive


def request_of(env: RequestEnvelope) -> Request:
    return Request(scope_of(env), receive_of(env.body))


_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]
_JSON = [(b"content-type", b"application/json")]
_BYTES = [(b"content-type", b"application/octet-stream")]


def quick_head(result) -> ResponseHead | None:
    """str / bytes / JSON-able results answered without building a Response (the hot path)."""
    if isinstance(result, str):
        body = result.encode()
        headers = _TEXT
    elif isinstance(result, (bytes, bytearray, memoryview)):
        body = bytes(result)
        headers = _BYTES
    elif isinstance(result, (dict, list, int, float, bool)) or result is None:
        try:
            body = json.dumps(result).encode()
        except (TypeError, ValueError) as e:
            raise TypeError(f"a deployment returned data that is not JSON-serializable: "
                            f"{e}") from e
        headers = _JSON
    else:
        return None
    return ResponseHead(200, headers + [(b"content-length", str(len(body)).encode())], body,
                        None)


def as_response(result) -> Response:
    """Anything else: a Response as is, a generator as a StreamingResponse."""
    if isinstance(result, Response):
        return result
    if inspect.isgenerator(result) or inspect.isasyncgen(result):
        return StreamingResponse(result)
    raise TypeError(f"a deployment returned {type(result).__name__}, which is not an HTTP "
                    f"answer: return str, bytes, JSON-able data or a starlette Response")


class AsgiCollector:
    """Runs an ASGI app for one request; the head (status, headers, the first body) is
    known as soon as the app sends it, and later chunks queue for ``next_chunks``."""

    def __init__(self):
        self.status = 500
        self.headers: list = []
        self.first: list = []
        self.head_ready = asyncio.Event()
        self.chunks: asyncio.Queue = asyncio.Queue()
        self.done = False
        self._started = False

    async def send(self, message: dict) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
            self.headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
            self._started = True
        elif kind == "http.response.body":
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if not self.head_ready.is_set():
                if body:
                    self.first.append(body)
                if not more:
                    self.done = True
                    self.head_ready.set()
                elif self.first:  # a streaming answer: its head goes out now
                    self.head_ready.set()
            else:
                if body:
                    self.chunks.put_nowait(body)
                if not more:
                    self.done = True
                    self.chunks.put_nowait(None)

    async def run(self, app, scope, receive) -> None:
        try:
            await app(scope, receive, self.send)
        finally:
            if not self.done:  # the app returned (or failed) without ending the body
                self.done = True
                if self.head_ready.is_set():
                    self.chunks.put_nowait(None)
                else:
                    self.head_ready.set()

    def started(self) -> bool:
        return self._started


async def collect_chunks(queue: asyncio.Queue) -> tuple[list, bool]:
    """At least one chunk (or the end), plus whatever else is already queued."""
    out: list = []
    item = await queue.get()
    while True:
        if item is None:
            return out, True
        out.append(item)
        if queue.empty():
            return out, False
        item = queue.get_nowait()

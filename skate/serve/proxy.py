"""The HTTP proxy: uvicorn on the head node, routing requests to applications' replicas.

One actor, one event loop: uvicorn parses HTTP on it, and the proxy's plain
ASGI callable (no framework in between) finds the application by longest
route prefix, hands the request to that application's ingress router and
writes the replica's answer back — streamed when the replica streams. The
routers' in-flight counts and queues give backpressure: 503 when a
deployment's queue is full, 408 past ``request_timeout_s``, 503 when the
replica died with the request, 500 for a failure in user code (logged by the
replica, not sent). ``GET /-/healthz`` and ``GET /-/routes`` are answered
here, as by Ray's proxy.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time

from skate.serve import routing_client
from skate.serve.coalesce import Coalescer
from skate.serve.http_limits import bounded_head_protocol
from skate.serve.http_util import ResponseHead
from skate.serve.replica import MODEL_ID_HEADER
from skate.serve.router import BackPressureError, RequestTimeoutError

MAX_BODY_BYTES = 100 * 2**20  # a request body past this gets 413 (it travels in one RPC)
MAX_HEADER_BYTES = 64 * 2**10  # headers past this get 431 (nginx and Node allow less)
log = logging.getLogger("skate.serve.proxy")


def _plain(status: int, text: str) -> tuple:
    body = text.encode()
    return status, [(b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode())], body


class Proxy:
    """The actor class of the proxy (started by the controller)."""

    def __init__(self, host: str, port: int, controller_name: str,
                 request_timeout_s: float | None = None):
        self.host, self.port = host, port
        self.request_timeout_s = request_timeout_s
        self._server = None
        self._thread: threading.Thread | None = None
        self._loop = None
        self._client = None
        self._coalescer: Coalescer | None = None
        self._stopped: asyncio.Future | None = None
        self._prefixes: list = []  # [(prefix, app, ingress)], longest first
        self._prefix_version = -1

    async def ready(self) -> tuple:
        """Bind the port and start serving; a port in use is an error naming it."""
        sock = self._bind()
        started = asyncio.get_running_loop().create_future()
        caller = asyncio.get_running_loop()

        def report(error):
            if not started.done():
                started.set_exception(error) if error else started.set_result(None)

        self._thread = threading.Thread(
            target=self._serve_forever, args=(sock, lambda e=None: caller.call_soon_threadsafe(
                report, e)), name="skate-serve-proxy", daemon=True)
        self._thread.start()
        await started
        return self.host, self.port

    def _bind(self) -> socket.socket:
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP
        # (with proto 0 every keep-alive answer waits ~40 ms for the client's delayed ACK)
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET,
                             socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as e:
            sock.close()
            raise OSError(f"serve cannot listen on {self.host}:{self.port}: {e.strerror}; pass "
                          f"another port with serve.start(http_options={{'port': ...}})") from None
        sock.listen(2048)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        return sock

    def _serve_forever(self, sock: socket.socket, report) -> None:
        """The HTTP loop, on its own thread: uvloop and httptools when installed (several
        times faster than asyncio's loop and h11), the standard ones otherwise."""
        import uvicorn

        try:
            import uvloop
            loop = uvloop.new_event_loop()
        except ImportError:
            loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop

        async def main():
            self._client = routing_client.client_for(loop)
            self._coalescer = Coalescer(loop)
            # a head past twice the header limit is refused while it arrives (http_limits)
            config = uvicorn.Config(self, lifespan="off", log_level="warning",
                                    access_log=False, timeout_keep_alive=90, loop="none",
                                    proxy_headers=False,
                                    http=bounded_head_protocol(2 * MAX_HEADER_BYTES) or "auto")
            self._server = uvicorn.Server(config)
            serving = loop.create_task(self._server.serve([sock]))
            while not self._server.started:
                if serving.done():
                    serving.result()
                    raise RuntimeError("the HTTP server stopped while starting")
                await asyncio.sleep(0.005)
            report()
            await serving

        try:
            loop.run_until_complete(main())
        except BaseException as e:
            report(e)

    async def watch(self) -> None:
        """Returns only when the proxy stops: the controller learns of a death at once."""
        if self._stopped is None:
            self._stopped = asyncio.get_running_loop().create_future()
        await self._stopped

    async def stop(self) -> None:
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(5)

    # -- ASGI ------------------------------------------------------------------------------
    def _match(self, path: str):
        client = self._client
        if client.version != self._prefix_version:
            self._prefix_version = client.version
            rows = [(p, app, ing) for app, (p, ing) in client.apps.items() if p]
            self._prefixes = sorted(rows, key=lambda r: -len(r[0]))
        for prefix, app, ingress in self._prefixes:
            if prefix == "/" or path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return prefix, app, ingress
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1003})
            return
        path = scope["path"]
        if path.startswith("/-/"):
            await self._special(path, send)
            return
        if not self._client.first.is_set():
            await self._client.first.wait()
        found = self._match(path)
        if found is None:
            await _answer(send, *_plain(404, f"Path '{path}' not found. Ping "
                                             f"http://.../-/routes for routes."))
            return
        prefix, app, ingress = found
        header_bytes = 0
        for name, value in scope["headers"]:
            header_bytes += len(name) + len(value) + 4
            if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY_BYTES:
                await _answer(send, *_too_large())
                return
        if header_bytes > MAX_HEADER_BYTES:
            await _answer(send, *_plain(431, f"Request headers larger than "
                                             f"{MAX_HEADER_BYTES // 1024} KiB."))
            return
        chunks, size = [], 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:  # chunked, or more than its Content-Length said
                await _answer(send, *_too_large())
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        env = (scope["method"], path, scope.get("query_string", b""), scope["headers"], body,
               "" if prefix == "/" else prefix, scope.get("client"), scope.get("server"))
        router = self._client.router(app, ingress)
        timeout = router.request_timeout_s or self.request_timeout_s
        deadline = None if timeout is None else time.monotonic() + timeout
        model_id = ""
        for name, value in scope["headers"]:
            if name == MODEL_ID_HEADER:
                model_id = value.decode()
        try:
            head, actor = await self._coalescer.send(router, env, deadline, model_id)
        except BackPressureError as e:
            await _answer(send, *_plain(503, str(e)))
            return
        except RequestTimeoutError as e:
            await _answer(send, *_plain(408, str(e)))
            return
        except Exception as e:
            from skate.exceptions import RayActorError

            if isinstance(e, RayActorError):
                await _answer(send, *_plain(503, "the replica serving this request died; "
                                                 "retry it"))
            else:
                log.error("request to %s failed: %s", path, e)
                await _answer(send, *_plain(500, "Internal Server Error"))
            return
        head = ResponseHead(*head)
        if head.stream_id is None:
            await _answer(send, head.status, head.headers, head.body)
            return
        await self._stream(send, head, actor)

    async def _stream(self, send, head, actor) -> None:
        await send({"type": "http.response.start", "status": head.status,
                    "headers": head.headers})
        if head.body:
            await send({"type": "http.response.body", "body": head.body, "more_body": True})
        done = False
        try:
            while not done:
                chunks, done = await actor.next_chunks.remote(head.stream_id)
                for c in chunks:
                    await send({"type": "http.response.body", "body": c, "more_body": True})
        except Exception as e:  # the replica died mid-stream: end the body
            log.error("stream broken: %s", e)
            actor.cancel_stream.remote(head.stream_id)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _special(self, path: str, send) -> None:
        if path == "/-/healthz":
            await _answer(send, *_plain(200, "success"))
        elif path == "/-/routes":
            routes = {p: app for app, (p, _) in sorted(self._client.apps.items()) if p}
            body = json.dumps(routes).encode()
            await _answer(send, 200, [(b"content-type", b"application/json"),
                                      (b"content-length", str(len(body)).encode())], body)
        else:
            await _answer(send, *_plain(404, f"Path '{path}' not found."))


def _too_large() -> tuple:
    return _plain(413, f"Request body larger than {MAX_BODY_BYTES // 2**20} MiB: send large "
                       f"inputs through the object store (a handle call with an ObjectRef) "
                       f"or in pieces.")


async def _answer(send, status: int, headers: list, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _make_actor():
    import skate

    return skate.remote(Proxy)


ProxyActor = _make_actor()

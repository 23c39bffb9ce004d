"""A replica: one actor holding one instance of the user's deployment.

The controller starts it (``initialize`` builds the user object, so a failing
constructor comes back as an error the controller can report), the proxy and
handles call it (``handle_http``, ``handle_request``), and the controller
drains and stops it. The replica itself enforces ``max_ongoing_requests``: a
call beyond it is answered ``REJECTED`` at once, and the router tries another
replica. Access lines and user errors go to the replica's own log file
(``<log dir>/serve/``), written in batches off the request path.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import itertools
import logging
import os
import time
import traceback
from dataclasses import dataclass

import skate
from skate import cloudpickle
from skate.serve import http_util
from skate.serve.deployment import HandleMarker
from skate.util import metrics


class Rejected:
    """The answer of a replica that already runs ``max_ongoing_requests`` calls."""

    def __reduce__(self):
        return (_rejected, ())


def _rejected():
    return REJECTED


REJECTED = Rejected()
MODEL_ID_HEADER = b"serve_multiplexed_model_id"
_model_id: contextvars.ContextVar[str] = contextvars.ContextVar("serve_model_id", default="")


@dataclass
class ReplicaContext:
    """What ``serve.get_replica_context()`` returns inside a replica."""

    app_name: str
    deployment: str
    replica_id: str
    servable_object: object = None

    @property
    def replica_tag(self) -> str:
        return self.replica_id


LATENCY_BUCKETS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]

_context: ReplicaContext | None = None
_current: "Replica | None" = None


def current_context() -> ReplicaContext:
    if _context is None:
        raise RuntimeError("serve.get_replica_context() is called outside a replica; call it "
                           "from a deployment's code")
    return _context


def current_model_id() -> str:
    return _model_id.get()


def current_replica() -> "Replica | None":
    return _current


class Replica:
    """The actor class behind every replica (created by the controller)."""

    def __init__(self, app_name: str, deployment: str, replica_id: str, blob: bytes,
                 is_function: bool, max_ongoing: int, controller_name: str):
        self.app_name, self.deployment, self.replica_id = app_name, deployment, replica_id
        self._blob, self._is_function = blob, is_function
        self.max_ongoing = max_ongoing
        self.ongoing = 0
        self._controller_name = controller_name
        self._target = None
        self._asgi = None
        self._streams: dict = {}
        self._stream_ids = itertools.count(1)
        self._stopped: asyncio.Future | None = None
        self._log_lines: list = []
        self._log = None
        tags = {"deployment": deployment, "application": app_name, "replica": replica_id}
        keys = tuple(tags)
        # Ray Serve's metric names, so its Grafana panels read ours
        self._requests = metrics.Counter(
            "serve_deployment_request_counter", "Requests this replica finished.",
            keys).set_default_tags(tags)
        self._errors = metrics.Counter(
            "serve_deployment_error_counter", "Requests this replica failed.",
            keys).set_default_tags(tags)
        self._latency = metrics.Histogram(
            "serve_deployment_processing_latency_ms", "Time to handle a request, ms.",
            LATENCY_BUCKETS_MS, keys).set_default_tags(tags)

    # -- life ------------------------------------------------------------------------------
    async def initialize(self, user_config) -> dict:
        global _context, _current
        self._stopped = asyncio.get_running_loop().create_future()
        target, args, kwargs = cloudpickle.loads(self._blob)
        args = tuple(_handles(a) for a in args)
        kwargs = {k: _handles(v) for k, v in kwargs.items()}
        _context = ReplicaContext(self.app_name, self.deployment, self.replica_id)
        _current = self
        self._open_log()
        if self._is_function:
            self._target = target
        else:
            self._target = target(*args, **kwargs)
            from skate.serve.ingress import app_of, bind_routes

            app = app_of(target)
            if app is not None:
                self._asgi = bind_routes(app, target, self._target)
        _context.servable_object = self._target
        if user_config is not None:
            await self.reconfigure(user_config)
        asyncio.get_running_loop().create_task(self._flush_log_forever())
        return {"node_id": skate.get_runtime_context().get_node_id(), "pid": os.getpid(),
                "log_file": self._log_path}

    async def reconfigure(self, user_config) -> None:
        fn = getattr(self._target, "reconfigure", None)
        if fn is None:
            raise TypeError(f"deployment {self.deployment!r} has a user_config but no "
                            f"reconfigure(self, config) method")
        out = fn(user_config)
        if inspect.isawaitable(out):
            await out

    async def check_health(self) -> None:
        fn = getattr(self._target, "check_health", None)
        if fn is not None:
            out = fn()
            if inspect.isawaitable(out):
                await out

    async def watch(self) -> None:
        """Returns only when the replica stops: the controller learns of a death at once."""
        await self._stopped

    async def drain(self, wait_loop_s: float, timeout_s: float) -> None:
        """Wait for ongoing requests to end (routers have already stopped sending)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            await asyncio.sleep(min(wait_loop_s, max(0.0, deadline - time.monotonic())))
            if self.ongoing == 0:
                break
        self._flush_log()
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)
        fn = getattr(self._target, "__del__", None)
        if fn is not None:
            try:
                fn()
            except Exception:
                self._logger().exception("__del__ of the deployment failed")

    # -- calls -----------------------------------------------------------------------------
    async def handle_request(self, method: str, args: tuple, kwargs: dict, model_id: str):
        if self.ongoing >= self.max_ongoing:
            return REJECTED
        self.ongoing += 1
        t0 = time.perf_counter()
        status = "OK"
        try:
            if model_id:
                _model_id.set(model_id)
            out = self._method(method)(*args, **kwargs)
            if inspect.isawaitable(out):
                out = await out
            return out
        except BaseException:
            status = "ERROR"
            self._logger().error("%s.%s failed:\n%s", self.deployment, method,
                                 traceback.format_exc())
            raise
        finally:
            self.ongoing -= 1
            ms = (time.perf_counter() - t0) * 1000
            self._count(ms, status == "OK")
            self._log_lines.append(f"CALL {method} {status} {ms:.2f}ms")

    @skate.method(num_returns="streaming")
    async def handle_request_stream(self, method: str, args: tuple, kwargs: dict,
                                    model_id: str):
        self.ongoing += 1
        try:
            if model_id:
                _model_id.set(model_id)
            out = self._method(method)(*args, **kwargs)
            if inspect.isasyncgen(out):
                async for item in out:
                    yield item
            elif inspect.isgenerator(out):
                for item in out:
                    yield item
            else:
                raise TypeError(f"{self.deployment}.{method} is called with stream=True but "
                                f"is not a generator")
        finally:
            self.ongoing -= 1

    async def handle_http(self, envelope: tuple):
        """One HTTP request; answers a plain ``ResponseHead`` tuple (pickled fast)."""
        if self.ongoing >= self.max_ongoing:
            return REJECTED
        env = http_util.RequestEnvelope(*envelope)
        self.ongoing += 1
        t0 = time.perf_counter()
        head = None
        try:
            head = await self._http(env)
            return tuple(head)
        except Exception:
            self._logger().error("%s %s failed:\n%s", env.method, env.path,
                                 traceback.format_exc())
            head = http_util.ResponseHead(500, [(b"content-type", b"text/plain")],
                                          b"Internal Server Error", None)
            return tuple(head)
        finally:
            self.ongoing -= 1
            ms = (time.perf_counter() - t0) * 1000
            status = head.status if head else 500
            self._count(ms, status < 500)
            self._log_lines.append(f"{env.method} {env.path} {status} {ms:.2f}ms")

    def _count(self, ms: float, ok: bool) -> None:
        self._requests.inc()
        self._latency.observe(ms)
        if not ok:
            self._errors.inc()

    async def handle_http_batch(self, envelopes: list) -> tuple:
        """Several requests in one call (see coalesce.py): (answers, seconds taken)."""
        t0 = time.perf_counter()
        if len(envelopes) == 1:
            heads = [await self.handle_http(envelopes[0])]
        else:
            heads = await asyncio.gather(*(self.handle_http(e) for e in envelopes))
        return heads, time.perf_counter() - t0

    async def _http(self, env: http_util.RequestEnvelope) -> http_util.ResponseHead:
        for name, value in env.headers:
            if name == MODEL_ID_HEADER:
                _model_id.set(value.decode())
        if self._asgi is None:
            fn = self._target if self._is_function else self._method("__call__")
            out = fn(http_util.request_of(env))
            if inspect.isawaitable(out):
                out = await out
            head = http_util.quick_head(out)
            if head is not None:
                return head
            app = http_util.as_response(out)
        else:
            app = self._asgi
        collector = http_util.AsgiCollector()
        task = asyncio.get_running_loop().create_task(
            collector.run(app, http_util.scope_of(env), http_util.receive_of(env.body)))
        await collector.head_ready.wait()
        if task.done() and task.exception() is not None and not collector.started():
            raise task.exception()  # type: ignore[misc]
        parts = collector.first
        if collector.done:  # it may have ended after its head: the rest is queued
            while not collector.chunks.empty():
                c = collector.chunks.get_nowait()
                if c is not None:
                    parts.append(c)
        body = b"".join(parts)
        if collector.done:
            if task.done() and task.exception() is not None:
                self._logger().error("%s %s failed after its head was sent:\n%s", env.method,
                                     env.path, "".join(traceback.format_exception(
                                         task.exception())))
            return http_util.ResponseHead(collector.status, collector.headers, body, None)
        sid = next(self._stream_ids)
        self._streams[sid] = (collector, task)
        return http_util.ResponseHead(collector.status, collector.headers, body, sid)

    async def next_chunks(self, stream_id: int) -> tuple[list, bool]:
        """The next chunks of a streaming answer (at least one, or the end)."""
        collector, task = self._streams[stream_id]
        chunks, done = await http_util.collect_chunks(collector.chunks)
        if done:
            del self._streams[stream_id]
        return chunks, done

    async def cancel_stream(self, stream_id: int) -> None:
        entry = self._streams.pop(stream_id, None)
        if entry is not None:
            entry[1].cancel()

    def _method(self, name: str):
        if self._is_function:
            if name != "__call__":
                raise AttributeError(f"function deployment {self.deployment!r} has no method "
                                     f"{name!r}")
            return self._target
        fn = getattr(self._target, name, None)
        if fn is None or not callable(fn):
            raise AttributeError(f"deployment {self.deployment!r} has no method {name!r}")
        return fn

    # -- multiplexing ------------------------------------------------------------------------
    def report_models(self, model_ids: list) -> None:
        controller = skate.get_actor(self._controller_name, namespace="serve")
        controller.record_models.remote(self.app_name, self.deployment, self.replica_id,
                                        list(model_ids))

    # -- logs ------------------------------------------------------------------------------
    def _open_log(self) -> None:
        folder = os.path.join(skate.get_runtime_context().get_log_dir(), "serve")
        os.makedirs(folder, exist_ok=True)
        safe = f"{self.app_name}_{self.replica_id}".replace("#", "_").replace("/", "_")
        self._log_path = os.path.join(folder, f"replica_{safe}.log")
        self._log = open(self._log_path, "a", buffering=1 << 16)

    def _logger(self) -> logging.Logger:
        log = logging.getLogger(f"skate.serve.replica.{self.replica_id}")
        if not log.handlers and self._log is not None:
            h = logging.StreamHandler(self._log)
            h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            log.addHandler(h)
            log.propagate = False
        return log

    def _flush_log(self) -> None:
        lines, self._log_lines = self._log_lines, []
        if self._log is None:
            return
        if lines:
            self._log.write("\n".join(lines) + "\n")
        self._log.flush()

    async def _flush_log_forever(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            self._flush_log()


def _handles(value):
    from skate.serve.handle import DeploymentHandle

    if isinstance(value, HandleMarker):
        return DeploymentHandle(value.deployment_name, value.app_name)
    if isinstance(value, list):
        return [_handles(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_handles(v) for v in value)
    if isinstance(value, dict):
        return {k: _handles(v) for k, v in value.items()}
    return value

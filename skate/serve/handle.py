"""Handles: calling a deployment from Python, inside or outside other deployments.

``handle.method.remote(*args)`` returns a ``DeploymentResponse`` at once; the
request is routed on an event loop — the caller's own when there is one (a
deployment, an ``async def`` driver), else a background loop thread. Inside
a deployment a response is awaited (``await resp``); outside, ``resp.result()``
blocks. A response passed as an argument to another handle call is resolved
by the router before that call is sent: the caller never waits for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

from skate.serve import routing_client


class DeploymentHandle:
    """Calls one deployment of one application.

    >>> from skate import serve
    >>> @serve.deployment
    ... class Adder:
    ...     def add(self, a, b):
    ...         return a + b
    >>> handle = serve.run(Adder.bind(), name="adder", route_prefix=None)
    >>> handle.add.remote(2, 3).result()
    5
    >>> serve.delete("adder")
    """

    def __init__(self, deployment_name: str, app_name: str = "default",
                 method_name: str = "__call__", multiplexed_model_id: str = "",
                 stream: bool = False):
        self.deployment_name = deployment_name
        self.app_name = app_name
        self._method = method_name
        self._model_id = multiplexed_model_id
        self._stream = stream

    def options(self, *, method_name: str | None = None, multiplexed_model_id: str | None = None,
                stream: bool | None = None, use_new_handle_api: bool = True,
                **_ignored) -> "DeploymentHandle":
        """A handle calling another method, for a multiplexed model, or streaming."""
        return DeploymentHandle(
            self.deployment_name, self.app_name,
            self._method if method_name is None else method_name,
            self._model_id if multiplexed_model_id is None else multiplexed_model_id,
            self._stream if stream is None else stream)

    def __getattr__(self, name: str) -> "DeploymentHandle":
        if name.startswith("_"):
            raise AttributeError(name)
        return self.options(method_name=name)

    def remote(self, *args, **kwargs):
        """Send the call; returns a ``DeploymentResponse`` (or a generator with stream=True)."""
        if self._stream:
            return DeploymentResponseGenerator(self, args, kwargs)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            bg = routing_client.BackgroundLoop.get()
            return DeploymentResponse(asyncio.run_coroutine_threadsafe(
                self._call(args, kwargs), bg.loop))
        return DeploymentResponse(loop.create_task(self._call(args, kwargs)), loop)

    async def _router(self):
        client = routing_client.client_for(asyncio.get_running_loop())
        return await client.known_router(self.app_name, self.deployment_name)

    async def _call(self, args: tuple, kwargs: dict):
        args, kwargs = await _resolved(args, kwargs)
        router = await self._router()
        method, model_id = self._method, self._model_id
        return await router.call(
            lambda actor: actor.handle_request.remote(method, args, kwargs, model_id),
            None, model_id)

    def __reduce__(self):
        return (DeploymentHandle, (self.deployment_name, self.app_name, self._method,
                                   self._model_id, self._stream))

    def __repr__(self):
        return f"DeploymentHandle(deployment={self.deployment_name!r}, app={self.app_name!r})"


async def _resolved(args: tuple, kwargs: dict):
    if any(isinstance(a, DeploymentResponse) for a in args):
        args = tuple([await a if isinstance(a, DeploymentResponse) else a for a in args])
    if any(isinstance(v, DeploymentResponse) for v in kwargs.values()):
        kwargs = {k: (await v if isinstance(v, DeploymentResponse) else v)
                  for k, v in kwargs.items()}
    return args, kwargs


class DeploymentResponse:
    """The future result of a handle call: ``await`` it in async code, ``.result()`` outside."""

    def __init__(self, fut, loop: asyncio.AbstractEventLoop | None = None):
        self._fut = fut  # an asyncio task on `loop`, or a concurrent future (background loop)
        self._loop = loop

    def result(self, timeout_s: float | None = None):
        """Block until the answer is there (raises the deployment's error, or TimeoutError)."""
        if isinstance(self._fut, concurrent.futures.Future):
            try:
                return self._fut.result(timeout_s)
            except concurrent.futures.TimeoutError:
                raise TimeoutError(f"the deployment did not answer within {timeout_s} s") from None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise RuntimeError("DeploymentResponse.result() blocks the event loop it runs on; "
                               "use `await response` inside async code")
        out = asyncio.run_coroutine_threadsafe(_await(self._fut), self._loop)
        try:
            return out.result(timeout_s)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"the deployment did not answer within {timeout_s} s") from None

    def __await__(self):
        if isinstance(self._fut, concurrent.futures.Future):
            return asyncio.wrap_future(self._fut).__await__()
        return self._fut.__await__()

    def cancel(self) -> None:
        if isinstance(self._fut, concurrent.futures.Future):
            self._fut.cancel()
        else:
            self._loop.call_soon_threadsafe(self._fut.cancel)


async def _await(task):
    return await task


class DeploymentResponseGenerator:
    """The items a generator method yields (``handle.options(stream=True)``), as they come."""

    def __init__(self, handle: DeploymentHandle, args: tuple, kwargs: dict):
        self._handle, self._args, self._kwargs = handle, args, kwargs
        self._agen = None
        self._bg = None

    async def _items(self):
        h = self._handle
        args, kwargs = await _resolved(self._args, self._kwargs)
        router = await h._router()
        rid = await router.assign(None, h._model_id)
        try:
            gen = router.actor(rid).handle_request_stream.remote(h._method, args, kwargs,
                                                                 h._model_id)
            async for ref in gen:
                yield await ref
        finally:
            router.done(rid)

    def __aiter__(self):
        if self._agen is None:
            self._agen = self._items()
        return self

    async def __anext__(self):
        if self._agen is None:
            self._agen = self._items()
        return await self._agen.__anext__()

    def __iter__(self):
        return self

    def __next__(self):
        if self._bg is None:
            self._bg = routing_client.BackgroundLoop.get()
            self._agen = self._items()
        try:
            return asyncio.run_coroutine_threadsafe(self._agen.__anext__(),
                                                    self._bg.loop).result()
        except StopAsyncIteration:
            raise StopIteration from None

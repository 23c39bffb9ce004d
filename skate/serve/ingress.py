"""``@serve.ingress(app)``: a FastAPI or Starlette app answering a deployment's HTTP.

The app's routes may be methods of the deployment class (``self`` first).
In each replica ``bind_routes`` rebuilds those routes around the replica's
own instance: a Starlette route gets the bound method, a FastAPI route gets
``self`` supplied as a dependency, so FastAPI still sees (and validates)
every other parameter — path parameters, query parameters, request models.
"""

from __future__ import annotations

import inspect


def ingress(app):
    """Mount ``app`` (FastAPI or Starlette) on a deployment class.

    >>> from starlette.applications import Starlette
    >>> from skate import serve
    >>> web = Starlette()
    >>> @serve.deployment
    ... @serve.ingress(web)
    ... class Api:
    ...     pass
    >>> Api.name
    'Api'
    """
    if not callable(app):
        raise TypeError(f"@serve.ingress needs an ASGI app (FastAPI or Starlette), got "
                        f"{type(app).__name__}")

    def wrap(cls):
        if not inspect.isclass(cls):
            raise TypeError("@serve.ingress goes on a class (under @serve.deployment)")
        cls.__serve_asgi_app__ = _AppHolder(app)
        return cls
    return wrap


class _AppHolder:
    """Carries the ASGI app on the class (pickled with it by ``dumps``, in one stream, so
    the routes' endpoints stay the class's own functions)."""

    def __init__(self, app):
        self.app = app


def dumps(value) -> bytes:
    """cloudpickle, plus a reducer for Starlette's ``State`` (``app.state``), which does
    not unpickle as is (its ``__getattr__`` recurses before ``_state`` exists). Used for
    every deployment: a pydantic model defined in a function keeps that function's
    namespace, which may hold the app, so an app can be anywhere in a deployment."""
    import copyreg
    import io
    from collections import ChainMap

    from starlette.datastructures import State

    from skate import cloudpickle

    class AppPickler(cloudpickle.Pickler):
        dispatch_table = ChainMap({State: lambda st: (State, (dict(st._state),))},
                                  getattr(cloudpickle.Pickler, "dispatch_table",
                                          copyreg.dispatch_table))

    f = io.BytesIO()
    AppPickler(f, protocol=5).dump(value)
    return f.getvalue()


def app_of(cls):
    """The ASGI app ``@serve.ingress`` put on ``cls`` (None if none)."""
    holder = getattr(cls, "__serve_asgi_app__", None)
    return None if holder is None else holder.app


def _own(cls, endpoint) -> bool:
    name = getattr(endpoint, "__name__", None)
    return name is not None and inspect.isfunction(endpoint) and \
        getattr(cls, name, None) is endpoint


def bind_routes(app, cls, instance):
    """Point the app's class-method routes at ``instance``; returns the app."""
    routes = getattr(getattr(app, "router", None), "routes", None)
    if routes is None:
        return app
    for i, route in enumerate(list(routes)):
        endpoint = getattr(route, "endpoint", None)
        if endpoint is None or not _own(cls, endpoint):
            continue
        if type(route).__module__.startswith("fastapi"):
            routes[i] = _fastapi_route(route, endpoint, instance)
        else:
            from starlette.routing import Route

            routes[i] = Route(route.path, endpoint.__get__(instance), methods=route.methods,
                              name=route.name, include_in_schema=route.include_in_schema)
    if hasattr(app, "openapi_schema"):
        app.openapi_schema = None  # rebuilt without `self`
    return app


def _fastapi_route(route, endpoint, instance):
    from fastapi import Depends
    from fastapi.routing import APIRoute

    sig = inspect.signature(endpoint)
    params = list(sig.parameters.values())
    first = params[0].replace(default=Depends(lambda: instance),
                              kind=inspect.Parameter.POSITIONAL_OR_KEYWORD)
    rest = [p for p in params[1:]]
    # keyword-only afterwards keeps the order valid when `self` gains a default
    rest = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            if p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD else p for p in rest]

    def call(*args, **kwargs):
        return endpoint(*args, **kwargs)

    async def acall(*args, **kwargs):
        return await endpoint(*args, **kwargs)

    fn = acall if inspect.iscoroutinefunction(endpoint) else call
    fn.__name__ = endpoint.__name__
    fn.__doc__ = endpoint.__doc__
    fn.__signature__ = sig.replace(parameters=[first] + rest)  # type: ignore[attr-defined]
    accepted = set(inspect.signature(APIRoute.__init__).parameters) - {"self", "path",
                                                                       "endpoint"}
    kwargs = {k: getattr(route, k) for k in accepted if hasattr(route, k)}
    return APIRoute(route.path, fn, **kwargs)

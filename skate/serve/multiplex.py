"""``@serve.multiplexed``: many models over few replicas, each replica an LRU cache.

The decorated ``async def get_model(self, model_id)`` loads a model; calls
for a model the replica holds return it at once, a new one is loaded (one
load per id, even when requests for it arrive together) and, past
``max_num_models_per_replica``, the least recently used model is dropped
(its ``__del__`` runs, if any). Each change is reported to the controller,
so routers send a model's requests to replicas that already hold it.
The id of the current request: ``serve.get_multiplexed_model_id()`` (the
``serve_multiplexed_model_id`` header, or ``handle.options(multiplexed_model_id=...)``).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect


class _ModelCache:
    def __init__(self, load, capacity: int):
        self.load, self.capacity = load, capacity
        self.models: collections.OrderedDict = collections.OrderedDict()
        self.loading: dict = {}  # id -> future of the load in progress

    async def get(self, owner, model_id: str):
        if not isinstance(model_id, str) or not model_id:
            raise ValueError("a multiplexed model id must be a non-empty str (set the "
                             "serve_multiplexed_model_id header or "
                             "handle.options(multiplexed_model_id=...))")
        if model_id in self.models:
            self.models.move_to_end(model_id)
            return self.models[model_id]
        pending = self.loading.get(model_id)
        if pending is not None:
            return await asyncio.shield(pending)
        fut = asyncio.get_running_loop().create_future()
        self.loading[model_id] = fut
        try:
            model = self.load(owner, model_id) if owner is not None else self.load(model_id)
            if inspect.isawaitable(model):
                model = await model
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # retrieved: no "never retrieved" warning when nobody else waits
            raise
        finally:
            self.loading.pop(model_id, None)
        while len(self.models) >= self.capacity:
            _, old = self.models.popitem(last=False)
            release = getattr(old, "__del__", None)
            if release is not None:
                try:
                    release()
                except Exception:
                    pass
        self.models[model_id] = model
        fut.set_result(model)
        self._report()
        return model

    def _report(self) -> None:
        from skate.serve.replica import current_replica

        rep = current_replica()
        if rep is not None:
            rep.report_models(list(self.models))


def multiplexed(_fn=None, *, max_num_models_per_replica: int = 3):
    """Cache what an ``async def get_model(self, model_id)`` loads (LRU, per replica).

    >>> from skate import serve
    >>> class Models:
    ...     @serve.multiplexed(max_num_models_per_replica=2)
    ...     async def get_model(self, model_id):
    ...         return f"model {model_id}"
    >>> import asyncio
    >>> asyncio.run(Models().get_model("a"))
    'model a'
    """
    if isinstance(max_num_models_per_replica, bool) or not isinstance(
            max_num_models_per_replica, int) or max_num_models_per_replica < 1:
        raise ValueError(f"max_num_models_per_replica must be an int >= 1, got "
                         f"{max_num_models_per_replica!r}")

    def deco(fn):
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"@serve.multiplexed needs an async def (got {fn.__name__})")
        params = list(inspect.signature(fn).parameters)
        is_method = bool(params) and params[0] == "self"
        attr = f"__serve_models_{fn.__name__}"

        def cache_of(owner):
            holder = owner if owner is not None else wrapper
            c = holder.__dict__.get(attr)
            if c is None:
                c = _ModelCache(fn, max_num_models_per_replica)
                setattr(holder, attr, c)
            return c

        if is_method:
            @functools.wraps(fn)
            async def wrapper(self, model_id):
                return await cache_of(self).get(self, model_id)
        else:
            @functools.wraps(fn)
            async def wrapper(model_id):
                return await cache_of(None).get(None, model_id)
        return wrapper

    return deco(_fn) if _fn is not None else deco

"""``@serve.batch``: concurrent calls of one method become one call on a list.

Callers each pass one item and get one result back; underneath, the first
waiting call opens a batch, which is sent when it holds ``max_batch_size``
items or ``batch_wait_timeout_s`` has passed since it opened, whichever is
first. The method must return one result per item, in order. An exception
fails every call of that batch.
"""

from __future__ import annotations

import asyncio
import functools
import inspect


class _Batcher:
    def __init__(self, fn, max_batch_size: int, timeout_s: float):
        self.fn, self.max_batch_size, self.timeout_s = fn, max_batch_size, timeout_s
        self.queue: list = []  # (item, future)
        self.full = None  # asyncio.Event: a batch is full
        self.task = None

    async def submit(self, owner, item):
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.queue.append((item, fut))
        if self.full is None:
            self.full = asyncio.Event()
        if len(self.queue) >= self.max_batch_size:
            self.full.set()
        if self.task is None or self.task.done():
            self.task = loop.create_task(self._run(owner))
        return await fut

    async def _run(self, owner) -> None:
        while self.queue:
            if len(self.queue) < self.max_batch_size:
                try:
                    await asyncio.wait_for(self.full.wait(), self.timeout_s)
                except asyncio.TimeoutError:
                    pass
            batch, self.queue = (self.queue[:self.max_batch_size],
                                 self.queue[self.max_batch_size:])
            self.full.clear()
            if len(self.queue) >= self.max_batch_size:
                self.full.set()
            items = [b[0] for b in batch]
            try:
                out = self.fn(owner, items) if owner is not None else self.fn(items)
                if inspect.isawaitable(out):
                    out = await out
                out = list(out)
                if len(out) != len(batch):
                    raise TypeError(f"@serve.batch method {self.fn.__name__} returned "
                                    f"{len(out)} results for a batch of {len(batch)}")
            except Exception as e:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            for (_, fut), r in zip(batch, out):
                if not fut.done():
                    fut.set_result(r)


def batch(_fn=None, *, max_batch_size: int = 10, batch_wait_timeout_s: float = 0.01):
    """Batch concurrent calls of an ``async def`` method (or function) taking a list.

    >>> from skate import serve
    >>> class Model:
    ...     @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.01)
    ...     async def predict(self, xs):
    ...         return [x * 2 for x in xs]
    >>> import asyncio
    >>> m = Model()
    >>> async def main():
    ...     return await asyncio.gather(*(m.predict(i) for i in range(6)))
    >>> asyncio.run(main())
    [0, 2, 4, 6, 8, 10]
    """
    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or \
            max_batch_size < 1:
        raise ValueError(f"max_batch_size must be an int >= 1, got {max_batch_size!r}")
    if isinstance(batch_wait_timeout_s, bool) or not isinstance(
            batch_wait_timeout_s, (int, float)) or batch_wait_timeout_s < 0:
        raise ValueError(f"batch_wait_timeout_s must be a number >= 0, got "
                         f"{batch_wait_timeout_s!r}")

    def deco(fn):
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"@serve.batch needs an async def (got {fn.__name__}, which is "
                            f"not a coroutine function)")
        params = list(inspect.signature(fn).parameters)
        is_method = bool(params) and params[0] == "self"
        attr = f"__serve_batcher_{fn.__name__}"

        def batcher_of(owner):
            holder = owner if owner is not None else wrapper
            b = holder.__dict__.get(attr)
            if b is None:
                b = _Batcher(fn, max_batch_size, batch_wait_timeout_s)
                setattr(holder, attr, b)
            return b

        if is_method:
            @functools.wraps(fn)
            async def wrapper(self, item):
                return await batcher_of(self).submit(self, item)
        else:
            @functools.wraps(fn)
            async def wrapper(item):
                return await batcher_of(None).submit(None, item)
        return wrapper

    return deco(_fn) if _fn is not None else deco

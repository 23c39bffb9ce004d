"""HTTP requests bound for one replica in the same loop turn travel as one actor call.

Under load the proxy parses several requests per event-loop turn. Each is
still routed on its own (``Router.assign``: counts, queues, backpressure), but
those that picked the same replica in that turn are sent together —
``handle_http_batch([...])`` — and the replica runs them concurrently and
answers them in one message. The per-call costs (submission, reply, wake-up)
are then shared. A batch's answers return together, so a fast request could
wait for a slow one: requests are coalesced only while the replica's
recent batches took under ``FAST_S`` (an exponential average it reports),
which keeps that wait below the cost it saves.
"""

from __future__ import annotations

import asyncio

from skate.serve.router import RETRY, Router

FAST_S = 0.002  # coalesce only for replicas whose batches take less than this


class Coalescer:
    """The proxy's sender (one per event loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.pending: dict = {}  # (router id, replica id) -> [(envelope, future)]
        self.slow: dict = {}  # replica id -> exponential average of batch seconds

    async def send(self, router: Router, env: tuple, deadline: float | None,
                   model_id: str = ""):
        """(answer head, actor that answered); retried while replicas reject."""
        while True:
            rid = await router.assign(deadline, model_id)
            actor = router.actor(rid)
            fut = self.loop.create_future()
            key = (id(router), rid)
            batch = self.pending.get(key)
            if batch is None:
                batch = self.pending[key] = []
                self.loop.call_soon(self._flush, key, actor, rid)
            batch.append((env, fut))
            out = await router.answer(rid, fut, deadline)
            if out is not RETRY:
                return out, actor

    def _flush(self, key, actor, rid: str) -> None:
        items = self.pending.pop(key)
        if len(items) == 1 or self.slow.get(rid, 0.0) >= FAST_S:
            for env, fut in items:
                ref = actor.handle_http.remote(env)
                ref.as_future().add_done_callback(lambda f, fut=fut: _copy(f, fut))
            return
        ref = actor.handle_http_batch.remote([env for env, _ in items])
        ref.as_future().add_done_callback(lambda f: self._answered(f, items, rid))

    def _answered(self, f: asyncio.Future, items: list, rid: str) -> None:
        if f.cancelled() or f.exception() is not None:
            for _, fut in items:
                if not fut.done():
                    fut.set_exception(f.exception() or asyncio.CancelledError())
            return
        heads, took = f.result()
        prev = self.slow.get(rid, took)
        self.slow[rid] = 0.8 * prev + 0.2 * took
        for (_, fut), head in zip(items, heads):
            if not fut.done():
                fut.set_result(head)


def _copy(src: asyncio.Future, dst: asyncio.Future) -> None:
    if dst.done():
        return
    if src.cancelled():
        dst.cancel()
    elif src.exception() is not None:
        dst.set_exception(src.exception())
    else:
        dst.set_result(src.result())

"""asyncio drop-in: an existing asyncio program awaits tasks and async actor calls directly."""

import asyncio

import pytest

import skate
from tests.core.utils import rendezvous


@skate.remote
def meet(directory, name, n):
    # returns only once n tasks are running at the same time
    return rendezvous(directory, name, n, timeout=60)


@skate.remote
def square(x):
    return x * x


@skate.remote
def fail(msg):
    raise ValueError(msg)


@skate.remote
class Barrier:
    """An async actor: every ``arrive`` waits until ``n`` calls are inside at once."""

    def __init__(self, n):
        self.n = n
        self.inside = 0
        self.all_in = None

    async def arrive(self, i):
        if self.all_in is None:
            self.all_in = asyncio.Event()
        self.inside += 1
        if self.inside == self.n:
            self.all_in.set()
        await asyncio.wait_for(self.all_in.wait(), 60)
        return i


def test_gather_tasks_and_async_actor_calls_concurrently(skate_cluster, tmp_path):
    """Tasks and actor calls run at the same time, and the driver's own coroutines too."""
    directory = str(tmp_path / "meet")
    barrier = Barrier.remote(5)

    async def local_work():
        await asyncio.sleep(0)  # the event loop stays free while refs are awaited
        return "local"

    async def main():
        return await asyncio.gather(
            meet.remote(directory, "a", 2),
            meet.remote(directory, "b", 2),
            *[barrier.arrive.remote(i) for i in range(5)],
            local_work(),
        )

    results = asyncio.run(main())
    assert results == [2, 2, 0, 1, 2, 3, 4, "local"]


def test_await_in_an_existing_program(skate_cluster):
    async def pipeline(x):
        y = await square.remote(x)
        return await square.remote(y)

    async def main():
        return await asyncio.gather(*(pipeline(x) for x in range(5)))

    assert asyncio.run(main()) == [x**4 for x in range(5)]


def test_as_completed_and_wait_for(skate_cluster, tmp_path):
    directory = str(tmp_path / "never")

    async def main():
        done = [await f for f in asyncio.as_completed([square.remote(i) for i in range(4)])]
        pending = meet.remote(directory, "x", 2)  # one participant of two never arrives
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(pending.as_future()), 0.1)
        skate.cancel(pending)
        return sorted(done)

    assert asyncio.run(main()) == [0, 1, 4, 9]


def test_exceptions_raise_at_await(skate_cluster):
    async def main():
        with pytest.raises(ValueError, match="boom"):
            await fail.remote("boom")
        results = await asyncio.gather(fail.remote("x"), square.remote(3), return_exceptions=True)
        return [type(r) if isinstance(r, Exception) else r for r in results]

    out = asyncio.run(main())
    assert issubclass(out[0], ValueError) and out[1] == 9

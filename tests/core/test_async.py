"""asyncio integration: awaiting ObjectRefs in drivers and async actors."""

import asyncio

import numpy as np
import pytest

import skate
from tests.core.utils import touch, wait_for_file


@pytest.fixture
def cluster(start_cluster):
    return start_cluster(num_cpus=2)


@skate.remote
def double(x):
    return x * 2


@skate.remote
def fail(msg):
    raise ValueError(msg)


def test_await_ref_in_asyncio_driver(cluster):
    async def main():
        a = await double.remote(21)
        b = await skate.put("put value")
        c = await double.remote(double.remote(1))  # ref argument
        return a, b, c

    assert asyncio.run(main()) == (42, "put value", 4)


def test_await_numpy_result(cluster):
    @skate.remote
    def make():
        return np.arange(1_000_000)

    async def main():
        return await make.remote()

    out = asyncio.run(main())
    assert out.shape == (1_000_000,) and out[-1] == 999_999


def test_wrap_future(cluster):
    async def main():
        fut = double.remote(5).future()
        return await asyncio.wrap_future(fut)

    assert asyncio.run(main()) == 10


def test_future_result_without_asyncio(cluster):
    fut = double.remote(8).future()
    assert fut.result(timeout=30) == 16


def test_gather_many(cluster):
    async def main():
        return await asyncio.gather(*[double.remote(i) for i in range(200)])

    assert asyncio.run(main()) == [i * 2 for i in range(200)]


def test_await_does_not_block_event_loop(cluster, tmp_path):
    release = str(tmp_path / "release")

    @skate.remote(num_cpus=0)
    def blocked(path):
        wait_for_file(path)
        return "released"

    async def main():
        ref = blocked.remote(release)
        waiter = asyncio.ensure_future(_await(ref))
        # While the await is pending, the loop keeps running other coroutines:
        # this one releases the task.
        await asyncio.sleep(0)
        assert not waiter.done()
        touch(release)
        return await asyncio.wait_for(waiter, timeout=30)

    async def _await(ref):
        return await ref

    assert asyncio.run(main()) == "released"


def test_await_error_raises(cluster):
    async def main():
        await fail.remote("async-boom")

    with pytest.raises(ValueError, match="async-boom") as info:
        asyncio.run(main())
    assert isinstance(info.value, skate.exceptions.RayTaskError)


def test_asyncio_wait_for_timeout_on_ref(cluster, tmp_path):
    release = str(tmp_path / "release")

    @skate.remote(num_cpus=0)
    def blocked(path):
        wait_for_file(path)
        return 1

    async def main():
        ref = blocked.remote(release)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.wrap_future(ref.future()), timeout=0.2)
        touch(release)
        return await ref

    assert asyncio.run(main()) == 1


def test_async_actor_awaits_task_refs(cluster):
    @skate.remote
    class Aggregator:
        async def total(self, n):
            values = await asyncio.gather(*[double.remote(i) for i in range(n)])
            return sum(values)

        async def chain(self, x):
            ref = double.remote(x)
            y = await ref
            return await double.remote(y)

        async def passed_ref(self, refs):
            return [await r for r in refs]

    agg = Aggregator.remote()
    assert skate.get(agg.total.remote(20)) == sum(i * 2 for i in range(20))
    assert skate.get(agg.chain.remote(3)) == 12
    assert skate.get(agg.passed_ref.remote([double.remote(1), skate.put(7)])) == [2, 7]


def test_async_actor_awaits_other_actor(cluster):
    @skate.remote
    class Echo:
        async def echo(self, x):
            await asyncio.sleep(0)
            return x

    @skate.remote
    class Caller:
        def __init__(self, other):
            self.other = other

        async def call(self, x):
            return await self.other.echo.remote(x)

    c = Caller.remote(Echo.remote())
    assert skate.get([c.call.remote(i) for i in range(10)]) == list(range(10))


def test_await_actor_call_in_driver(cluster):
    @skate.remote
    class Counter:
        def __init__(self):
            self.n = 0

        def inc(self):
            self.n += 1
            return self.n

    c = Counter.remote()

    async def main():
        results = await asyncio.gather(*[c.inc.remote() for _ in range(10)])
        return sorted(results)

    assert asyncio.run(main()) == list(range(1, 11))


@pytest.mark.skate_only  # beyond Ray, which refuses `async def` at decoration
def test_async_def_task_runs_to_completion(start_cluster):
    start_cluster(num_cpus=2)

    @skate.remote
    async def slow_add(a, b):
        await asyncio.sleep(0.01)
        return a + b

    assert skate.get(slow_add.remote(2, 3), timeout=30) == 5

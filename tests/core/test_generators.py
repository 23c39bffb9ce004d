"""Streaming generators: tasks and actor methods that yield return refs as they go.

Differential: passes against real Ray too (SKATE_TEST_AGAINST_RAY=1).
"""

import asyncio
import os

import numpy as np
import pytest

import skate
from skate.exceptions import RayActorError
from tests.core.utils import touch, wait_for_file


@pytest.fixture
def cluster(start_cluster):
    return start_cluster(num_cpus=2)


@skate.remote
def count(n):
    for i in range(n):
        yield i


@skate.remote
def big_then_fail(n):
    for i in range(n):
        yield np.full(100_000, i)  # through the store
    raise ValueError("generator broke")


@skate.remote
def waits_between(release):
    yield "first"
    wait_for_file(release, timeout=60)
    yield "second"


def test_generator_task_streams_refs(cluster):
    gen = count.remote(5)
    assert isinstance(gen, skate.ObjectRefGenerator)
    assert [skate.get(ref) for ref in gen] == [0, 1, 2, 3, 4]


def test_items_arrive_while_the_task_still_runs(cluster, tmp_path):
    release = str(tmp_path / "release")
    gen = waits_between.remote(release)
    assert skate.get(next(gen), timeout=30) == "first"  # the task is still waiting
    touch(release)
    assert skate.get(next(gen), timeout=30) == "second"
    with pytest.raises(StopIteration):
        next(gen)


def test_an_error_comes_after_the_items_yielded_before_it(cluster):
    gen = big_then_fail.remote(3)
    got = [int(skate.get(next(gen)).max()) for _ in range(3)]
    assert got == [0, 1, 2]
    with pytest.raises(ValueError, match="generator broke"):
        skate.get(next(gen))
    with pytest.raises(StopIteration):
        next(gen)


def test_explicit_streaming_option(cluster):
    gen = count.options(num_returns="streaming").remote(2)
    assert [skate.get(r) for r in gen] == [0, 1]


@skate.remote
class Streamer:
    def sync_gen(self, n):
        for i in range(n):
            yield i * 10

    async def async_gen(self, n):
        for i in range(n):
            await asyncio.sleep(0)
            yield i * 100

    def die_midway(self, release):
        yield 1
        wait_for_file(release, timeout=60)  # the first item has reached the caller
        os._exit(1)


@skate.remote
class AsyncStreamer:
    async def async_gen(self, n):
        for i in range(n):
            await asyncio.sleep(0)
            yield i + 0.5


def test_actor_generator_methods(cluster):
    a = Streamer.remote()
    assert [skate.get(r) for r in a.sync_gen.remote(3)] == [0, 10, 20]
    b = AsyncStreamer.remote()
    assert [skate.get(r) for r in b.async_gen.remote(3)] == [0.5, 1.5, 2.5]


def test_async_iteration_of_a_generator(cluster):
    b = AsyncStreamer.remote()

    async def consume():
        return [await ref async for ref in b.async_gen.remote(3)]

    assert asyncio.run(consume()) == [0.5, 1.5, 2.5]


def test_a_crashed_actor_generator_raises_on_the_caller_side(cluster, tmp_path):
    a = Streamer.remote()
    release = str(tmp_path / "release")
    gen = a.die_midway.remote(release)
    assert skate.get(next(gen), timeout=30) == 1
    touch(release)
    with pytest.raises(RayActorError):
        skate.get(next(gen), timeout=30)


@skate.remote(max_retries=1)
def dies_once(token):
    yield 0
    yield 1
    if not os.path.exists(token):
        open(token, "w").close()
        os._exit(1)  # the worker dies mid-stream; the retry runs it again
    yield 2


def test_a_retried_generator_delivers_each_item_once(cluster, tmp_path):
    gen = dies_once.remote(str(tmp_path / "token"))
    assert [skate.get(r, timeout=30) for r in gen] == [0, 1, 2]

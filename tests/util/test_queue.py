"""skate.util.queue.Queue: an actor-backed FIFO shared by tasks, actors and the driver."""

import asyncio
import queue as stdlib_queue

import pytest

import skate
from skate.exceptions import RayActorError
from skate.util.queue import Empty, Full, Queue


@skate.remote
def produce(q, items):
    for item in items:
        q.put(item)
    return len(items)


@skate.remote
def consume(q, n, timeout):
    return [q.get(timeout=timeout) for _ in range(n)]


@skate.remote
class Relay:
    """An actor that moves items from one queue to another."""

    def __init__(self, source, sink):
        self.source, self.sink = source, sink

    def relay(self, n):
        for _ in range(n):
            self.sink.put(self.source.get(timeout=30) * 10)
        return n


@pytest.fixture
def q(skate_cluster):
    queue = Queue()
    yield queue
    queue.shutdown(force=True)


@pytest.fixture
def small(skate_cluster):
    queue = Queue(maxsize=2)
    yield queue
    queue.shutdown(force=True)


def test_fifo_and_sizes(q):
    assert q.empty() and q.qsize() == 0 and q.size() == 0 and len(q) == 0
    for i in range(5):
        q.put(i)
    assert not q.empty() and q.qsize() == 5 and len(q) == 5 and not q.full()
    assert [q.get() for _ in range(5)] == [0, 1, 2, 3, 4]
    assert q.empty()


def test_same_behaviour_as_the_stdlib_queue(q):
    """The same sequence of operations on both queues gives the same answers."""
    ours, theirs = q, stdlib_queue.Queue()

    def script(queue):
        out = []
        queue.put("a")
        queue.put_nowait({"b": 1})
        out.append(queue.qsize())
        out.append(queue.get())
        out.append(queue.get_nowait())
        out.append(queue.empty())
        for call in (
            lambda: queue.get_nowait(),
            lambda: queue.get(timeout=0.05),
            lambda: queue.get(block=False),
        ):
            try:
                call()
            except stdlib_queue.Empty as e:
                out.append(isinstance(e, stdlib_queue.Empty))
        return out

    assert script(ours) == script(theirs)


def test_full_and_empty_errors(small):
    small.put(1)
    small.put_nowait(2)
    assert small.full()
    with pytest.raises(Full):
        small.put_nowait(3)
    with pytest.raises(Full):
        small.put(3, block=False)
    with pytest.raises(Full):
        small.put(3, timeout=0.05)
    with pytest.raises(stdlib_queue.Full):  # Full is the stdlib's Full too
        small.put(3, timeout=0)
    assert [small.get(), small.get()] == [1, 2]
    with pytest.raises(Empty):
        small.get_nowait()
    with pytest.raises(Empty):
        small.get(timeout=0.05)
    assert issubclass(Empty, stdlib_queue.Empty) and issubclass(Full, stdlib_queue.Full)


def test_negative_timeout(q):
    with pytest.raises(ValueError, match="non-negative"):
        q.get(timeout=-1)
    with pytest.raises(ValueError, match="non-negative"):
        q.put(1, timeout=-1)


def test_batches(small):
    small.put_nowait_batch([1, 2])
    with pytest.raises(Full):
        small.put_nowait_batch([3])
    assert small.get_nowait_batch(0) == []
    with pytest.raises(Empty):
        small.get_nowait_batch(3)
    assert small.qsize() == 2  # a failed batch takes nothing
    assert small.get_nowait_batch(2) == [1, 2]
    with pytest.raises(Full):
        small.put_nowait_batch([1, 2, 3])
    assert small.empty()  # nor adds anything
    with pytest.raises(TypeError):
        small.put_nowait_batch(5)
    with pytest.raises(TypeError):
        small.get_nowait_batch("2")
    with pytest.raises(ValueError):
        small.get_nowait_batch(-1)


def test_blocking_get_waits_for_a_put_from_a_task(q):
    waiting = consume.remote(q, 3, 60)
    assert skate.get(produce.remote(q, ["x", "y", "z"])) == 3
    assert skate.get(waiting) == ["x", "y", "z"]


def test_blocking_put_waits_for_space(small):
    small.put_nowait_batch([1, 2])
    producer = produce.remote(small, [3, 4])  # blocks until the driver makes room
    got = [small.get(timeout=60) for _ in range(4)]
    assert got == [1, 2, 3, 4] and skate.get(producer) == 2


def test_queue_passes_through_actors(q, skate_cluster):
    out = Queue()
    relay = Relay.remote(q, out)
    done = relay.relay.remote(3)
    for i in range(3):
        q.put(i)
    assert skate.get(done) == 3
    assert out.get_nowait_batch(3) == [0, 10, 20]
    out.shutdown()


def test_blocked_getters_do_not_block_the_actor(q):
    """Ten gets wait at once; other calls are answered meanwhile; one batch serves all."""

    async def main():
        getters = [asyncio.ensure_future(q.get_async(timeout=60)) for _ in range(10)]
        await asyncio.sleep(0)
        assert await q.actor.qsize.remote() == 0  # the actor still answers
        q.put_nowait_batch(list(range(10)))
        return await asyncio.gather(*getters)

    assert sorted(asyncio.run(main())) == list(range(10))


def test_async_variants(small):
    async def main():
        await small.put_async(1)
        await small.put_async(2)
        with pytest.raises(Full):
            await small.put_async(3, block=False)
        with pytest.raises(Full):
            await small.put_async(3, timeout=0.05)
        got = [await small.get_async(), await small.get_async(timeout=1)]
        with pytest.raises(Empty):
            await small.get_async(block=False)
        with pytest.raises(Empty):
            await small.get_async(timeout=0.05)
        with pytest.raises(ValueError):
            await small.get_async(timeout=-1)
        return got

    assert asyncio.run(main()) == [1, 2]


def test_shutdown_ends_the_actor(skate_cluster):
    queue = Queue()
    actor = queue.actor
    queue.put(1)
    queue.shutdown()
    with pytest.raises(RayActorError):
        skate.get(actor.qsize.remote(), timeout=30)
    queue.shutdown()  # twice is fine
    forced = Queue()
    actor = forced.actor
    forced.shutdown(force=True)
    with pytest.raises(RayActorError):
        skate.get(actor.qsize.remote(), timeout=30)


@pytest.mark.skate_only  # Ray fails with AttributeError on None
def test_use_after_shutdown_says_so(skate_cluster):
    queue = Queue()
    queue.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        queue.put(2)
    with pytest.raises(RuntimeError, match="shut down"):
        queue.get()


def test_actor_options_name_the_queue(skate_cluster):
    queue = Queue(actor_options={"name": "jobs"})
    assert skate.get_actor("jobs") == queue.actor
    queue.shutdown()


@pytest.mark.skate_only  # Ray accepts it and fails later, in the actor
def test_invalid_maxsize(skate_cluster):
    with pytest.raises(TypeError):
        Queue(maxsize="3")

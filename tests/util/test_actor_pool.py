"""skate.util.ActorPool: Ray's ActorPool semantics over actors the caller made."""

import os

import pytest

import skate
from skate.exceptions import ActorDiedError
from skate.util import ActorPool
from tests.core.utils import touch, wait_for_file


@skate.remote
class Worker:
    def double(self, v):
        return 2 * v

    def gated(self, gate, v):
        wait_for_file(gate, timeout=60)
        return v

    def pid(self, _):
        return os.getpid()

    def die(self, _):
        os._exit(1)

    @skate.method(num_returns=2)
    def pair(self, v):
        return v, -v


def double(actor, v):
    return actor.double.remote(v)


@pytest.fixture
def actors(skate_cluster):
    handles = [Worker.remote(), Worker.remote()]
    yield handles
    for a in handles:
        skate.kill(a)


def test_map_in_order(actors):
    pool = ActorPool(actors)
    assert list(pool.map(double, range(10))) == [2 * v for v in range(10)]


def test_map_unordered_yields_in_completion_order(actors, tmp_path):
    gate = str(tmp_path / "gate")
    pool = ActorPool(actors)
    results = pool.map_unordered(
        lambda a, v: a.gated.remote(gate, v) if v == "slow" else a.double.remote(v),
        ["slow", 1, 2, 3],
    )
    # one actor is held by the slow value; the other runs every fast one meanwhile
    assert [next(results) for _ in range(3)] == [2, 4, 6]
    touch(gate)
    assert list(results) == ["slow"]


def test_map_uses_every_actor(actors):
    pool = ActorPool(actors)
    assert len(set(pool.map(lambda a, v: a.pid.remote(v), range(4)))) == 2


def test_submit_get_next_has_next(actors):
    pool = ActorPool(actors)
    assert not pool.has_next()
    for v in range(5):  # more values than actors: the rest queue
        pool.submit(double, v)
    assert pool.has_next()
    assert [pool.get_next() for _ in range(5)] == [0, 2, 4, 6, 8]
    assert not pool.has_next()
    with pytest.raises(StopIteration):
        pool.get_next()
    with pytest.raises(StopIteration):
        pool.get_next_unordered()


def test_get_next_timeout_keeps_the_task(actors, tmp_path):
    gate = str(tmp_path / "gate")
    pool = ActorPool(actors)
    pool.submit(lambda a, v: a.gated.remote(gate, v), "late")
    with pytest.raises(TimeoutError):
        pool.get_next(timeout=0.05)
    assert pool.has_next()
    touch(gate)
    assert pool.get_next(timeout=60) == "late"


def test_get_next_ignore_if_timedout_drops_the_task(actors, tmp_path):
    gate = str(tmp_path / "gate")
    pool = ActorPool(actors[:1])
    pool.submit(lambda a, v: a.gated.remote(gate, v), "dropped")
    pool.submit(double, 21)
    with pytest.raises(TimeoutError, match="ignored"):
        pool.get_next(timeout=0.05, ignore_if_timedout=True)
    touch(gate)
    assert pool.get_next() == 42  # the queued value ran once the actor came back
    assert not pool.has_next()


def test_get_next_unordered_timeout(actors, tmp_path):
    gate = str(tmp_path / "gate")
    pool = ActorPool(actors)
    pool.submit(lambda a, v: a.gated.remote(gate, v), 1)
    with pytest.raises(TimeoutError):
        pool.get_next_unordered(timeout=0.05)
    assert pool.has_next()
    touch(gate)
    assert pool.get_next_unordered(timeout=60) == 1


@pytest.mark.skate_only  # Ray 2.x raises UnboundLocalError here (a bug in its ActorPool)
def test_get_next_unordered_ignore_if_timedout_drops_the_oldest(actors, tmp_path):
    gate = str(tmp_path / "gate")
    pool = ActorPool(actors)
    pool.submit(lambda a, v: a.gated.remote(gate, v), 1)
    pool.submit(lambda a, v: a.gated.remote(gate, v), 2)
    with pytest.raises(TimeoutError, match="ignored"):
        pool.get_next_unordered(timeout=0.05, ignore_if_timedout=True)
    touch(gate)
    assert pool.get_next_unordered(timeout=60) == 2
    assert not pool.has_next()


def test_get_next_after_get_next_unordered(actors, tmp_path):
    gate = str(tmp_path / "gate")
    pool = ActorPool(actors)
    pool.submit(lambda a, v: a.gated.remote(gate, v), 0)
    pool.submit(double, 1)
    assert pool.get_next_unordered() == 2  # index 1 finished first
    with pytest.raises(ValueError, match="get_next_unordered"):
        pool.get_next()
    touch(gate)
    assert pool.get_next_unordered() == 0


def test_has_free_pop_idle_push(actors):
    pool = ActorPool(actors[:1])
    assert pool.has_free()
    pool.submit(double, 1)
    assert not pool.has_free() and pool.pop_idle() is None
    assert pool.get_next() == 2
    assert pool.pop_idle() == actors[0]
    assert not pool.has_free()
    pool.push(actors[0])
    with pytest.raises(ValueError, match="already belongs"):
        pool.push(actors[0])
    pool.submit(double, 2)
    with pytest.raises(ValueError, match="already belongs"):
        pool.push(actors[0])  # busy counts too


def test_push_starts_a_queued_value(actors):
    pool = ActorPool([])
    pool.submit(double, 5)
    assert pool.has_next() is False  # queued: nothing submitted without an actor
    pool.push(actors[0])
    assert pool.get_next() == 10


def test_map_drops_uncollected_results(actors):
    pool = ActorPool(actors)
    pool.submit(double, 100)
    assert list(pool.map(double, [1, 2])) == [2, 4]


def test_dead_actor_leaves_the_pool(actors):
    pool = ActorPool(actors[:1])
    pool.submit(lambda a, v: a.die.remote(v), None)
    with pytest.raises(ActorDiedError):
        pool.get_next()
    assert not pool.has_free() and pool.pop_idle() is None


@pytest.mark.skate_only  # Ray 2.x's ActorPool cannot wait on a list of refs (TypeError)
def test_several_returns_per_value(actors):
    pool = ActorPool(actors)
    assert list(pool.map(lambda a, v: a.pair.remote(v), [1, 2])) == [[1, -1], [2, -2]]
    pool.submit(lambda a, v: a.pair.remote(v), 3)
    assert pool.get_next(timeout=60) == [3, -3]
    pool.submit(lambda a, v: a.pair.remote(v), 4)
    assert pool.get_next_unordered(timeout=60) == [4, -4]

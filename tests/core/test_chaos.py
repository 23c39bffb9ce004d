"""Kill -9 random workers at 5 per second while real work runs: nothing is lost.

Every test runs its workload under a ``WorkerKiller`` and then checks the
whole outcome: every result exactly right, every CPU back, nothing left
pending, the node manager's watchdog never tripped (queued work that fits
always had a worker starting for it), and a new task runs at once.
"""

import asyncio
import time

import numpy as np
import pytest

import skate
from skate.core import runtime
from tests.core.chaos import WorkerKiller, work
from tests.core.utils import wait_for_condition

pytestmark = pytest.mark.skate_only

KILL_INTERVAL_S = 0.2  # 5 kills a second
DEADLINE_S = 90


@pytest.fixture
def cluster(start_cluster):
    return start_cluster(num_cpus=2)


def scheduler_state() -> dict:
    return runtime.core().raylet.scheduler_state()


def assert_settled(baseline_trips: int = 0) -> None:
    """After the killing: resources back to total, nothing pending, work runs again."""
    total = skate.cluster_resources()["CPU"]
    wait_for_condition(lambda: skate.available_resources().get("CPU") == total, timeout=10)
    wait_for_condition(lambda: scheduler_state()["pending"] == 0, timeout=10)
    assert scheduler_state()["watchdog_trips"] == baseline_trips

    @skate.remote
    def after():
        return "still working"

    assert skate.get(after.remote(), timeout=20) == "still working"


def under_kills(seed: int, workload, min_kills: int = 3, deadline_s: float = DEADLINE_S) -> int:
    """Run ``workload()`` (which checks its own results) under the killer, again and again
    until at least ``min_kills`` workers were killed during it; returns the rounds run."""
    deadline = time.monotonic() + deadline_s
    rounds = 0
    with WorkerKiller(KILL_INTERVAL_S, seed=seed) as killer:
        while rounds == 0 or killer.kills < min_kills:
            assert time.monotonic() < deadline, f"only {killer.kills} kills in {deadline_s} s"
            workload()
            rounds += 1
    return rounds


def test_flat_tasks_survive_random_kills(cluster):
    @skate.remote(max_retries=-1)
    def square(i):
        work(10_000)
        return i * i

    def workload():
        refs = [square.remote(i) for i in range(2000)]
        assert skate.get(refs, timeout=DEADLINE_S) == [i * i for i in range(2000)]

    under_kills(1, workload)
    assert_settled()


def test_nested_tasks_survive_random_kills(cluster):
    @skate.remote(max_retries=-1)
    def child(i):
        return i + 1

    @skate.remote(max_retries=-1)
    def parent(i):
        return skate.get(child.remote(i)) * 2

    def workload():
        results = skate.get([parent.remote(i) for i in range(400)], timeout=DEADLINE_S)
        assert results == [(i + 1) * 2 for i in range(400)]

    under_kills(2, workload)
    assert_settled()


def test_restartable_actor_acknowledges_every_call(cluster):
    @skate.remote(max_restarts=-1, max_task_retries=-1)
    class Echo:
        def echo(self, i):
            work(50_000)
            return i

    a = Echo.remote()

    def workload():
        assert skate.get([a.echo.remote(i) for i in range(300)], timeout=DEADLINE_S) == \
            list(range(300))

    under_kills(3, workload)
    assert skate.get(a.echo.remote(-1), timeout=20) == -1
    skate.kill(a)
    assert_settled()


def test_objects_passed_between_tasks_survive_random_kills(cluster):
    n = 60_000  # 480 KB each: every array goes through the shared-memory store

    @skate.remote(max_retries=-1)
    def make(i):
        return np.full(n, i, dtype=np.int64)

    @skate.remote(max_retries=-1)
    def total(a, b):
        return int(a.sum() + b.sum())

    def workload():
        arrays = [make.remote(i) for i in range(60)]
        sums = [total.remote(arrays[i], arrays[i + 1]) for i in range(59)]
        assert skate.get(sums, timeout=DEADLINE_S) == [n * (2 * i + 1) for i in range(59)]

    under_kills(4, workload)
    assert_settled()


@pytest.mark.slow
# Its own deadlines allow 400 s: at 5 kills a second a worker often dies before it is up,
# so on a slower machine progress slows sharply (here: 10 s alone, 45-54 s beside one
# extra busy process).
@pytest.mark.timeout(450)
def test_everything_at_once_survives_random_kills(cluster):
    """Async and threaded actors, generators, actors made inside tasks, puts inside tasks —
    and afterwards no orphan actor (one whose creator was killed) still holds a lease."""
    # Defined here, so workers get them by value: defined at module level, each new worker
    # would import this test module (and pytest) first, slowing every start under the kills.
    @skate.remote(max_restarts=-1, max_task_retries=-1)
    class AsyncEcho:
        async def echo(self, i):
            work(20_000)
            await asyncio.sleep(0)  # a yield point between calls, not a wait
            return i

    @skate.remote(max_restarts=-1, max_task_retries=-1, max_concurrency=4)
    class ThreadedEcho:
        def echo(self, i):
            work(30_000)
            return i

    @skate.remote(max_retries=-1)
    def stream(n):
        for i in range(n):
            yield i

    @skate.remote(max_retries=-1)
    def make_actor_and_call(i):
        a = ThreadedEcho.remote()
        result = skate.get(a.echo.remote(i))
        skate.kill(a)
        return result

    @skate.remote(max_retries=-1)
    def put_and_read(i):
        ref = skate.put(np.full(50_000, i, dtype=np.int64))
        return int(skate.get(ref).sum())

    a, t = AsyncEcho.remote(), ThreadedEcho.remote()

    def workload():
        assert skate.get([a.echo.remote(i) for i in range(300)], timeout=DEADLINE_S) == \
            list(range(300))
        assert skate.get([t.echo.remote(i) for i in range(300)], timeout=DEADLINE_S) == \
            list(range(300))
        for _ in range(20):
            assert [skate.get(r, timeout=60) for r in stream.remote(20)] == list(range(20))
        assert skate.get([make_actor_and_call.remote(i) for i in range(40)],
                         timeout=3 * DEADLINE_S) == list(range(40))
        assert skate.get([put_and_read.remote(i) for i in range(100)], timeout=DEADLINE_S) == \
            [50_000 * i for i in range(100)]

    under_kills(5, workload, min_kills=10, deadline_s=400)
    skate.kill(a)
    skate.kill(t)
    assert_settled()
    wait_for_condition(lambda: scheduler_state()["leases"] == 0, timeout=15)

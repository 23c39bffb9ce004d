"""A worker killed at each moment of its life: the work is retried or fails typed.

Each test starts its workers with a ``SKATE_TEST_KILL_AT`` hook (see
skate/core/kill_points.py) that kills the first worker to reach one exact
point; the next worker runs normally. Afterwards every CPU is back.
"""

import os

import numpy as np
import pytest

import skate
from skate.core import runtime
from skate.exceptions import RayActorError, WorkerCrashedError, WorkerStartupError
from tests.core.utils import wait_for_condition

pytestmark = pytest.mark.skate_only


@pytest.fixture
def cluster(start_cluster):
    return start_cluster(num_cpus=2)


def hook(tmp_path, point: str) -> dict:
    return {"env_vars": {"SKATE_TEST_KILL_AT": f"{point}@{tmp_path / point}"}}


def fired(tmp_path, point: str) -> bool:
    return os.path.exists(tmp_path / point)


def node_state() -> dict:
    return runtime.core().raylet.scheduler_state()


def assert_resources_back() -> None:
    total = skate.cluster_resources()["CPU"]
    wait_for_condition(lambda: skate.available_resources().get("CPU") == total, timeout=10)
    assert node_state()["watchdog_trips"] == 0


@skate.remote
def add(a, b):
    return a + b


# -------------------------------------------------------------- tasks
@pytest.mark.parametrize("point", ["start", "registered"])
def test_worker_killed_while_starting_is_replaced(cluster, tmp_path, point):
    before = node_state()["failed_starts"]
    ref = add.options(runtime_env=hook(tmp_path, point), max_retries=1).remote(1, 2)
    assert skate.get(ref, timeout=30) == 3
    assert fired(tmp_path, point)
    if point == "start":
        assert node_state()["failed_starts"] == before + 1
    assert_resources_back()


def test_worker_killed_with_its_lease_grant_in_flight(cluster, tmp_path):
    ref = add.options(runtime_env=hook(tmp_path, "lease_granted"), max_retries=1).remote(2, 3)
    assert skate.get(ref, timeout=30) == 5
    assert fired(tmp_path, "lease_granted")
    assert_resources_back()


def test_worker_killed_with_a_task_push_in_flight(cluster, tmp_path):
    ok = add.options(runtime_env=hook(tmp_path, "push_task"), max_retries=1).remote(3, 4)
    assert skate.get(ok, timeout=30) == 7
    (tmp_path / "push_task").unlink()
    lost = add.options(runtime_env=hook(tmp_path, "push_task"), max_retries=0).remote(3, 4)
    with pytest.raises(WorkerCrashedError, match="add"):
        skate.get(lost, timeout=30)
    assert_resources_back()


def test_worker_killed_while_blocked_in_get_with_its_cpu_lent_out(cluster, tmp_path):
    @skate.remote
    def parent(i):
        return skate.get(add.remote(i, 1)) * 10

    ref = parent.options(runtime_env=hook(tmp_path, "blocked"), max_retries=1).remote(4)
    assert skate.get(ref, timeout=30) == 50
    assert fired(tmp_path, "blocked")
    assert_resources_back()


def test_worker_killed_between_store_create_and_seal(cluster, tmp_path):
    @skate.remote
    def big(i):
        return np.full(500_000, i, dtype=np.int64)  # 4 MB: through the store

    before = runtime.core().raylet.store_stats()["num_objects"]
    ref = big.options(runtime_env=hook(tmp_path, "seal"), max_retries=1).remote(7)
    arr = skate.get(ref, timeout=30)
    assert arr.shape == (500_000,) and int(arr.min()) == int(arr.max()) == 7
    assert fired(tmp_path, "seal")
    del arr, ref
    # the dead writer's half-written block was dropped, the retry's copy freed with its ref
    wait_for_condition(
        lambda: runtime.core().raylet.store_stats()["num_objects"] == before, timeout=10)
    assert_resources_back()


def test_workers_that_cannot_start_fail_the_task_with_their_error(cluster):
    # a malformed hook makes every worker of this env exit at import: a crash loop
    env = {"env_vars": {"SKATE_TEST_KILL_AT": "no-such-point@x"}}
    ref = add.options(runtime_env=env, max_retries=3).remote(1, 1)
    with pytest.raises(WorkerStartupError, match="no-such-point") as info:
        skate.get(ref, timeout=60)
    assert "in a row exited before they were ready" in str(info.value)

    @skate.remote(runtime_env=env)
    class Never:
        def ping(self):
            return 1

    with pytest.raises(RayActorError, match="no-such-point"):
        skate.get(Never.remote().ping.remote(), timeout=60)
    # work with a healthy environment is not held up by it
    assert skate.get(add.remote(2, 2), timeout=20) == 4
    assert_resources_back()


# -------------------------------------------------------------- actors
@skate.remote
class Counter:
    def __init__(self):
        self.n = 0

    def incr(self):
        self.n += 1
        return self.n

    def pid(self):
        return os.getpid()


def test_actor_worker_killed_during_creation_restarts(cluster, tmp_path):
    a = Counter.options(runtime_env=hook(tmp_path, "create_actor"), max_restarts=1).remote()
    assert skate.get(a.incr.remote(), timeout=30) == 1
    assert fired(tmp_path, "create_actor")
    (tmp_path / "b").mkdir()
    b = Counter.options(runtime_env=hook(tmp_path / "b", "create_actor"),
                        max_restarts=0).remote()
    with pytest.raises(RayActorError):
        skate.get(b.incr.remote(), timeout=30)
    skate.kill(a)
    assert_resources_back()


def test_actor_killed_again_while_restarting(cluster, tmp_path):
    token = tmp_path / "create_actor"
    token.touch()  # the first creation passes the hook ...
    a = Counter.options(runtime_env=hook(tmp_path, "create_actor"), max_restarts=-1,
                        max_task_retries=-1).remote()
    first = skate.get(a.pid.remote(), timeout=30)
    token.unlink()  # ... the restart's creation dies, and the one after it runs
    os.kill(first, 9)
    assert skate.get(a.incr.remote(), timeout=30) == 1
    assert fired(tmp_path, "create_actor")
    assert skate.get(a.pid.remote(), timeout=30) != first
    skate.kill(a)
    assert_resources_back()


def test_actor_killed_with_a_call_in_flight(cluster, tmp_path):
    retried = Counter.options(runtime_env=hook(tmp_path, "actor_call"), max_restarts=1,
                              max_task_retries=1).remote()
    assert skate.get(retried.incr.remote(), timeout=30) == 1
    assert fired(tmp_path, "actor_call")
    (tmp_path / "l").mkdir()
    lost = Counter.options(runtime_env=hook(tmp_path / "l", "actor_call"), max_restarts=1,
                           max_task_retries=0).remote()
    with pytest.raises(RayActorError):
        skate.get(lost.incr.remote(), timeout=30)
    assert skate.get(lost.incr.remote(), timeout=30) == 1  # it restarted for later calls
    skate.kill(retried)
    skate.kill(lost)
    assert_resources_back()

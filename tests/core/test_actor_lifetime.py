"""How actors end: out of scope, __ray_terminate__, exit_actor(), kill — and atexit.

Differential: passes against real Ray too (SKATE_TEST_AGAINST_RAY=1).
"""

import asyncio
import atexit
import gc
import os
import subprocess
import sys

import psutil
import pytest

import skate
from skate.exceptions import RayActorError
from tests.core.utils import wait_for_condition, wait_for_file


@pytest.fixture
def cluster(start_cluster):
    return start_cluster(num_cpus=2)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@skate.remote
class Marker:
    """Writes ``path`` from an atexit handler, so a test sees how the process ended."""

    def __init__(self, path, exit_in_init=False):
        atexit.register(lambda: open(path, "w").close())
        if exit_in_init:
            skate.actor.exit_actor()

    def pid(self):
        return os.getpid()

    def quit(self):
        skate.actor.exit_actor()
        return "code after exit_actor() ran"

    def slow(self, path):
        wait_for_file(path)
        return "done"


@skate.remote
class AsyncMarker:
    def __init__(self, path):
        atexit.register(lambda: open(path, "w").close())

    async def pid(self):
        return os.getpid()

    async def quit(self):
        await self._nested()

    async def _nested(self):
        await asyncio.sleep(0)
        skate.actor.exit_actor()


@skate.remote
def use(handle):
    return skate.get(handle.pid.remote())


def test_every_actor_has_ray_ready(cluster, tmp_path):
    a = Marker.remote(str(tmp_path / "x"))
    assert skate.get(a.__ray_ready__.remote(), timeout=30) is True


def test_exit_actor_ends_the_actor_at_once_and_runs_atexit(cluster, tmp_path):
    flag = tmp_path / "atexit"
    a = Marker.remote(str(flag))
    pid = skate.get(a.pid.remote())
    with pytest.raises(RayActorError, match="exit_actor"):
        skate.get(a.quit.remote(), timeout=30)
    wait_for_condition(lambda: _gone(pid), timeout=10)
    assert flag.exists()
    with pytest.raises(RayActorError):
        skate.get(a.pid.remote(), timeout=30)


def test_calls_queued_behind_exit_actor_fail(cluster, tmp_path):
    a = Marker.remote(str(tmp_path / "atexit"))
    skate.get(a.__ray_ready__.remote())
    release = str(tmp_path / "release")
    first = a.slow.remote(release)
    quit_ref = a.quit.remote()
    behind = [a.pid.remote() for _ in range(3)]
    open(release, "w").close()
    assert skate.get(first, timeout=30) == "done"
    for ref in [quit_ref] + behind:
        with pytest.raises(RayActorError):
            skate.get(ref, timeout=30)


@pytest.fixture
def busy_cpus():
    """Two spinning processes: the caller's threads then run late, as on a loaded CI box."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        yield
    finally:
        for h in hogs:
            h.kill()
            h.wait()


@pytest.mark.slow
def test_calls_answered_before_exit_actor_succeed_under_load(cluster, busy_cpus):
    # The control store's "dead" can reach the caller before the actor's last replies are
    # read off its connection; those calls ran, so they must succeed. Under load this
    # lost about one round in ten before the submitter waited for the connection's end.
    for _ in range(40):
        a = Marker.remote("/dev/null")
        skate.get(a.__ray_ready__.remote(), timeout=30)
        answered = [a.pid.remote() for _ in range(200)]
        quit_ref = a.quit.remote()
        behind = a.pid.remote()
        assert len(set(skate.get(answered, timeout=60))) == 1
        for ref in (quit_ref, behind):
            with pytest.raises(RayActorError, match="exit_actor"):
                skate.get(ref, timeout=30)


def test_exit_actor_in_init_ends_it_after_construction(cluster, tmp_path):
    flag = tmp_path / "atexit"
    a = Marker.remote(str(flag), exit_in_init=True)
    with pytest.raises(RayActorError):
        skate.get(a.pid.remote(), timeout=30)
    wait_for_condition(flag.exists, timeout=10)


def test_exit_actor_from_a_nested_coroutine(cluster, tmp_path):
    flag = tmp_path / "atexit"
    a = AsyncMarker.remote(str(flag))
    pid = skate.get(a.pid.remote())
    with pytest.raises(RayActorError):
        skate.get(a.quit.remote(), timeout=30)
    wait_for_condition(lambda: _gone(pid), timeout=10)
    assert flag.exists()


def test_ray_terminate_runs_atexit(cluster, tmp_path):
    flag = tmp_path / "atexit"
    a = Marker.remote(str(flag))
    pid = skate.get(a.pid.remote())
    a.__ray_terminate__.remote()
    wait_for_condition(lambda: _gone(pid), timeout=10)
    assert flag.exists()


def test_kill_does_not_run_atexit(cluster, tmp_path):
    flag = tmp_path / "atexit"
    a = Marker.remote(str(flag))
    pid = skate.get(a.pid.remote())
    skate.kill(a)
    wait_for_condition(lambda: _gone(pid), timeout=10)
    assert not flag.exists()


def test_out_of_scope_runs_atexit_and_submitted_calls_finish(cluster, tmp_path):
    flag = tmp_path / "atexit"
    release = str(tmp_path / "release")
    a = Marker.remote(str(flag))
    pid = skate.get(a.pid.remote())
    pending = a.slow.remote(release)
    del a
    gc.collect()
    open(release, "w").close()
    assert skate.get(pending, timeout=30) == "done"
    wait_for_condition(lambda: _gone(pid), timeout=10)
    assert flag.exists()


def test_handle_passed_to_a_finished_task_does_not_keep_the_actor(cluster, tmp_path):
    a = Marker.remote(str(tmp_path / "atexit"))
    pid = skate.get(a.pid.remote())
    assert skate.get(use.remote(a), timeout=30) == pid
    del a
    gc.collect()
    wait_for_condition(lambda: _gone(pid), timeout=15)


def test_calls_from_a_borrower_run_before_the_actor_ends(cluster, tmp_path):
    @skate.remote
    def call_many(handle, n):
        return skate.get([handle.pid.remote() for _ in range(n)])

    a = Marker.remote(str(tmp_path / "atexit"))
    pid = skate.get(a.pid.remote())
    ref = call_many.remote(a, 50)
    del a
    gc.collect()
    assert skate.get(ref, timeout=60) == [pid] * 50
    wait_for_condition(lambda: _gone(pid), timeout=15)


def test_exit_actor_outside_an_actor_is_a_clear_error(cluster):
    with pytest.raises(TypeError, match="actor"):
        skate.actor.exit_actor()


@skate.remote
def create_and_wait(directory):
    child = Marker.remote(os.path.join(directory, "child-atexit"))
    child_pid = skate.get(child.pid.remote())
    with open(os.path.join(directory, "pids.tmp"), "w") as f:
        f.write(f"{os.getpid()} {child_pid}")
    os.replace(os.path.join(directory, "pids.tmp"), os.path.join(directory, "pids"))
    wait_for_file(os.path.join(directory, "never"), timeout=120)


def test_an_actor_dies_with_the_worker_that_created_it(cluster, tmp_path):
    ref = create_and_wait.options(max_retries=0).remote(str(tmp_path))
    wait_for_file(str(tmp_path / "pids"), timeout=30)
    owner_pid, child_pid = map(int, (tmp_path / "pids").read_text().split())
    os.kill(owner_pid, 9)
    wait_for_condition(lambda: _gone(child_pid), timeout=15)
    with pytest.raises(skate.exceptions.RayError):
        skate.get(ref, timeout=30)

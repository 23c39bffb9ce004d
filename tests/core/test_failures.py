"""Errors: application exceptions, retries, worker crashes, cancellation,
bad arguments / options, infeasible requests."""

import os
import signal
import threading

import pytest

import skate
from skate.exceptions import (
    GetTimeoutError,
    RayError,
    RayTaskError,
    TaskCancelledError,
    WorkerCrashedError,
)
from tests.core.utils import touch, wait_for_condition, wait_for_file


@pytest.fixture
def cluster(start_cluster):
    return start_cluster(num_cpus=2)


class MyError(Exception):
    pass


def _attempts(path):
    try:
        with open(path) as f:
            return len(f.read().splitlines())
    except FileNotFoundError:
        return 0


def _record_attempt(path):
    with open(path, "a") as f:
        f.write("attempt\n")
    return _attempts(path)


# ----------------------------------------------------- application errors
def test_task_exception_propagates(cluster):
    @skate.remote
    def raiser():
        raise ValueError("boom-123")

    ref = raiser.remote()
    with pytest.raises(ValueError) as info:
        skate.get(ref)
    e = info.value
    assert isinstance(e, RayTaskError)
    assert isinstance(e, RayError)
    assert isinstance(e.cause, ValueError)
    text = str(e)
    # The remote traceback is part of the message.
    assert "boom-123" in text
    assert "raiser" in text
    assert 'raise ValueError("boom-123")' in text
    # Getting the same failed object again raises again.
    with pytest.raises(ValueError, match="boom-123"):
        skate.get(ref)


def test_custom_exception_type_and_attributes(cluster):
    @skate.remote
    def raise_custom():
        err = MyError("custom-message")
        err.code = 42
        raise err

    with pytest.raises(MyError, match="custom-message") as info:
        skate.get(raise_custom.remote())
    assert isinstance(info.value, RayTaskError)
    assert info.value.code == 42


def test_nested_task_exception(cluster):
    @skate.remote
    def inner():
        raise KeyError("inner-key")

    @skate.remote
    def outer():
        return skate.get(inner.remote())

    with pytest.raises(KeyError) as info:
        skate.get(outer.remote())
    assert isinstance(info.value, RayTaskError)
    assert "inner-key" in str(info.value)


def test_failed_dependency_fails_dependent_task(cluster, tmp_path):
    marker = str(tmp_path / "dependent_ran")

    @skate.remote
    def fail():
        raise ValueError("dep-boom")

    @skate.remote
    def dependent(x, path):
        touch(path)
        return x

    with pytest.raises(ValueError, match="dep-boom"):
        skate.get(dependent.remote(fail.remote(), marker))
    assert not os.path.exists(marker)  # never ran


def test_get_list_with_one_failure(cluster):
    @skate.remote
    def maybe_fail(i):
        if i == 3:
            raise IndexError("three")
        return i

    with pytest.raises(IndexError, match="three"):
        skate.get([maybe_fail.remote(i) for i in range(6)])


# ------------------------------------------------------------------ retries
def test_retry_exceptions(cluster, tmp_path):
    log = str(tmp_path / "attempts")

    @skate.remote(max_retries=2, retry_exceptions=True)
    def flaky(path):
        n = _record_attempt(path)
        if n < 3:
            raise ValueError(f"attempt {n}")
        return n

    assert skate.get(flaky.remote(log), timeout=60) == 3
    assert _attempts(log) == 3


def test_retry_exceptions_exhausted(cluster, tmp_path):
    log = str(tmp_path / "attempts")

    @skate.remote(max_retries=1, retry_exceptions=True)
    def always(path):
        n = _record_attempt(path)
        raise ValueError(f"attempt {n}")

    with pytest.raises(ValueError, match="attempt 2"):
        skate.get(always.remote(log), timeout=60)
    assert _attempts(log) == 2


def test_application_errors_not_retried_by_default(cluster, tmp_path):
    log = str(tmp_path / "attempts")

    @skate.remote(max_retries=3)
    def fails(path):
        _record_attempt(path)
        raise ValueError("no retry")

    with pytest.raises(ValueError):
        skate.get(fails.remote(log))
    assert _attempts(log) == 1


def test_retry_exceptions_allowlist(cluster, tmp_path):
    @skate.remote(max_retries=2)
    def flaky(path):
        n = _record_attempt(path)
        if n < 3:
            raise ValueError(f"attempt {n}")
        return n

    matching = str(tmp_path / "matching")
    assert skate.get(flaky.options(retry_exceptions=[ValueError]).remote(matching)) == 3
    assert _attempts(matching) == 3

    other = str(tmp_path / "other")
    with pytest.raises(ValueError, match="attempt 1"):
        skate.get(flaky.options(retry_exceptions=[KeyError]).remote(other))
    assert _attempts(other) == 1


def _die_once(marker):
    """SIGKILL the current worker the first time, succeed afterwards."""
    if not os.path.exists(marker):
        touch(marker)
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"


def test_worker_killed_task_retried_by_default(cluster, tmp_path):
    @skate.remote
    def task(path):
        return _die_once(path)

    assert skate.get(task.remote(str(tmp_path / "m")), timeout=60) == "survived"


def test_worker_killed_task_retried_max_retries(cluster, tmp_path):
    @skate.remote(max_retries=1)
    def task(path):
        return _die_once(path)

    assert skate.get(task.remote(str(tmp_path / "m")), timeout=60) == "survived"


def test_worker_killed_no_retries(cluster, tmp_path):
    marker = str(tmp_path / "m")

    @skate.remote(max_retries=0)
    def task(path):
        return _die_once(path)

    with pytest.raises(WorkerCrashedError):
        skate.get(task.remote(marker), timeout=60)
    assert os.path.exists(marker)

    @skate.remote(max_retries=0)
    def exits():
        os._exit(1)

    with pytest.raises(WorkerCrashedError):
        skate.get(exits.remote(), timeout=60)

    # The cluster recovers: new workers run new tasks.
    @skate.remote
    def ok():
        return "ok"

    assert skate.get([ok.remote() for _ in range(4)], timeout=60) == ["ok"] * 4


# ------------------------------------------------------------- cancellation
def test_cancel_running_task(cluster, tmp_path):
    started = str(tmp_path / "started")

    @skate.remote
    def loop(path):
        import time as _time

        touch(path)
        while True:
            _time.sleep(0.01)

    ref = loop.remote(started)
    wait_for_condition(lambda: os.path.exists(started), timeout=30)
    skate.cancel(ref)
    with pytest.raises(TaskCancelledError):
        skate.get(ref, timeout=30)
    # The worker (or a replacement) keeps serving tasks.
    wait_for_condition(lambda: skate.available_resources().get("CPU", 0) == 2)

    @skate.remote
    def ok():
        return 1

    assert skate.get(ok.remote(), timeout=30) == 1


def test_cancel_busy_python_loop(cluster, tmp_path):
    started = str(tmp_path / "started")

    @skate.remote
    def spin(path):
        touch(path)
        x = 0
        while True:
            x += 1

    ref = spin.remote(started)
    wait_for_condition(lambda: os.path.exists(started), timeout=30)
    skate.cancel(ref)
    with pytest.raises(TaskCancelledError):
        skate.get(ref, timeout=30)


def test_cancel_force(cluster, tmp_path):
    import psutil

    started = str(tmp_path / "started")

    @skate.remote(max_retries=0)
    def loop(path):
        with open(path, "w") as f:
            f.write(str(os.getpid()))
        while True:
            wait_for_file(path + ".never", timeout=3600)

    ref = loop.remote(started)
    wait_for_condition(lambda: os.path.exists(started) and open(started).read(), timeout=30)
    pid = int(open(started).read())
    skate.cancel(ref, force=True)
    with pytest.raises(TaskCancelledError):
        skate.get(ref, timeout=30)

    def worker_gone():
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_for_condition(worker_gone, timeout=30)


def test_cancel_pending_task(cluster, tmp_path):
    release = str(tmp_path / "release")

    @skate.remote(num_cpus=2)
    def hog(path):
        wait_for_file(path)
        return "hog"

    @skate.remote(num_cpus=1)
    def queued(path):
        touch(path)
        return "queued"

    ran = str(tmp_path / "queued_ran")
    h = hog.remote(release)
    wait_for_condition(lambda: skate.available_resources().get("CPU", 0) == 0)
    q = queued.remote(ran)
    skate.cancel(q)
    with pytest.raises(TaskCancelledError):
        skate.get(q, timeout=30)
    touch(release)
    assert skate.get(h, timeout=30) == "hog"
    assert not os.path.exists(ran)


def test_cancel_finished_task_is_noop(cluster):
    @skate.remote
    def f():
        return 5

    ref = f.remote()
    assert skate.get(ref) == 5
    skate.cancel(ref)
    assert skate.get(ref) == 5


def test_cancel_bad_argument(cluster):
    with pytest.raises(TypeError):
        skate.cancel(1)


# ------------------------------------------------------------ serialization
def test_unserializable_argument(cluster):
    @skate.remote
    def f(x):
        return x

    with pytest.raises(TypeError, match="serialize"):
        f.remote(threading.Lock())
    with pytest.raises(TypeError):
        skate.put(threading.Lock())


def test_unserializable_return_value(cluster):
    @skate.remote
    def make_lock():
        return threading.Lock()

    ref = make_lock.remote()  # submission is fine
    with pytest.raises(RayTaskError) as info:
        skate.get(ref)
    assert isinstance(info.value, TypeError)


# ------------------------------------------------------------- bad calls
def test_calling_remote_function_directly(cluster):
    @skate.remote
    def f():
        return 1

    with pytest.raises(TypeError, match="remote"):
        f()


def test_remote_on_plain_function():
    def plain():
        return 1

    with pytest.raises(AttributeError):
        plain.remote()


def test_invalid_option_name():
    def g():
        return 1

    with pytest.raises(ValueError, match="Invalid option keyword"):
        skate.remote(num_cpu=1)(g)
    with pytest.raises(ValueError, match="Invalid option keyword"):
        skate.remote(g).options(no_such_option=True)
    # Task-only options are invalid for actors and vice versa.
    with pytest.raises(ValueError):
        skate.remote(max_restarts=1)(g)

    class A:
        pass

    with pytest.raises(ValueError):
        skate.remote(max_calls=1)(A)
    with pytest.raises(ValueError):
        skate.remote(A).options(num_returns=2)


def test_invalid_option_type():
    def g():
        return 1

    with pytest.raises(TypeError):
        skate.remote(num_cpus="x")(g)
    with pytest.raises(TypeError):
        skate.remote(g).options(num_gpus="two")
    with pytest.raises(ValueError):
        skate.remote(num_cpus=-1)(g)


# --------------------------------------------------------------- infeasible
def test_infeasible_task_stays_pending(cluster):
    @skate.remote
    def f():
        return 1

    too_big = f.options(num_cpus=100).remote()
    unknown = f.options(resources={"does_not_exist": 1}).remote()
    try:
        ready, not_ready = skate.wait([too_big, unknown], num_returns=2, timeout=1)
        assert ready == [] and len(not_ready) == 2
        with pytest.raises(GetTimeoutError):
            skate.get(too_big, timeout=0.5)
        # The rest of the cluster keeps working.
        assert skate.get(f.remote(), timeout=30) == 1
    finally:
        skate.cancel(too_big)
        skate.cancel(unknown)
    with pytest.raises(TaskCancelledError):
        skate.get(too_big, timeout=30)


def test_infeasible_actor_stays_pending(cluster):
    @skate.remote(num_cpus=100)
    class Huge:
        def m(self):
            return 1

    h = Huge.remote()
    try:
        ready, _ = skate.wait([h.m.remote()], timeout=1)
        assert ready == []
    finally:
        skate.kill(h)

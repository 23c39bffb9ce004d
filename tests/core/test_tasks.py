"""Remote functions: declaration, options, arguments, returns, nesting."""

import os

import numpy as np
import pytest

import skate
from tests.core.utils import rendezvous, touch, wait_for_condition, wait_for_file

MB = 1024 * 1024
CLUSTER = {"num_cpus": 2, "resources": {"custom": 2}}


@pytest.fixture
def cluster(start_cluster):
    return start_cluster(**CLUSTER)


# ---------------------------------------------------------------- declaration
@skate.remote
def add(a, b=10):
    return a + b


@skate.remote(num_returns=2, num_cpus=1)
def split_pair(x):
    return x, -x


def test_decorator_without_and_with_args(cluster):
    assert skate.get(add.remote(1, 2)) == 3
    assert skate.get(add.remote(1)) == 11
    pos, neg = split_pair.remote(5)
    assert skate.get([pos, neg]) == [5, -5]


def test_remote_applied_as_function(cluster):
    def mul(a, b):
        return a * b

    remote_mul = skate.remote(mul)
    assert skate.get(remote_mul.remote(6, 7)) == 42
    remote_mul2 = skate.remote(num_cpus=0.5)(mul)
    assert skate.get(remote_mul2.remote(2, 3)) == 6


def test_kwargs(cluster):
    @skate.remote
    def f(a, b=2, *args, c=3, **kwargs):
        return a, b, args, c, kwargs

    assert skate.get(f.remote(1)) == (1, 2, (), 3, {})
    assert skate.get(f.remote(1, 5, 6, 7, c=8, d=9)) == (1, 5, (6, 7), 8, {"d": 9})
    assert skate.get(f.remote(a=4, c=0)) == (4, 2, (), 0, {})
    with pytest.raises(TypeError):
        f.remote()  # missing required argument: checked at submission time


def test_options_override(cluster):
    @skate.remote(num_cpus=1)
    def assigned():
        return skate.get_runtime_context().get_assigned_resources()

    assert skate.get(assigned.remote()) == {"CPU": 1.0}
    assert skate.get(assigned.options(num_cpus=0.5).remote()) == {"CPU": 0.5}
    assert skate.get(assigned.options(resources={"custom": 1}).remote()) == {
        "CPU": 1.0,
        "custom": 1.0,
    }
    # options() returns a new callable and does not mutate the original.
    assert skate.get(assigned.remote()) == {"CPU": 1.0}

    @skate.remote
    def one():
        return 1, 2

    a, b = one.options(num_returns=2).remote()
    assert skate.get(a) == 1 and skate.get(b) == 2
    assert skate.get(one.remote()) == (1, 2)


def test_num_returns(cluster):
    @skate.remote(num_returns=3)
    def three():
        return "a", "b", "c"

    refs = three.remote()
    assert isinstance(refs, list) and len(refs) == 3
    assert all(isinstance(r, skate.ObjectRef) for r in refs)
    assert skate.get(refs) == ["a", "b", "c"]

    @skate.remote(num_returns=1)
    def single():
        return [1, 2]

    assert skate.get(single.remote()) == [1, 2]


def test_num_returns_zero(cluster, tmp_path):
    marker = str(tmp_path / "ran")

    @skate.remote(num_returns=0)
    def side_effect(path):
        touch(path)

    assert side_effect.remote(marker) is None
    wait_for_condition(lambda: os.path.exists(marker))


def test_num_returns_mismatch_errors_at_get(cluster):
    @skate.remote(num_returns=2)
    def wrong():
        return 1

    a, b = wrong.remote()
    with pytest.raises(skate.exceptions.RayTaskError):
        skate.get(a)


# ------------------------------------------------------------------ arguments
def test_objectref_args_resolved_at_top_level(cluster):
    @skate.remote
    def kind(x, y=None):
        return type(x).__name__, type(y).__name__, x, y

    ref = skate.put(41)
    assert skate.get(kind.remote(ref)) == ("int", "NoneType", 41, None)
    # Keyword arguments are resolved too.
    assert skate.get(kind.remote(1, y=ref)) == ("int", "int", 1, 41)
    # A ref produced by another task.
    assert skate.get(kind.remote(add.remote(1, 1))) == ("int", "NoneType", 2, None)


def test_nested_refs_passed_through_unresolved(cluster):
    @skate.remote
    def inspect(lst, dct):
        inner = lst[0]
        assert isinstance(inner, skate.ObjectRef)
        assert isinstance(dct["k"], skate.ObjectRef)
        return skate.get(inner) + skate.get(dct["k"])

    r1 = skate.put(1)
    r2 = add.remote(1, 1)
    assert skate.get(inspect.remote([r1], {"k": r2})) == 3


def test_same_ref_many_args(cluster):
    @skate.remote
    def total(*xs):
        return sum(xs)

    ref = skate.put(2)
    assert skate.get(total.remote(*([ref] * 50))) == 100
    refs = [skate.put(i) for i in range(100)]
    assert skate.get(total.remote(*refs)) == sum(range(100))


def test_refs_returned_from_tasks(cluster):
    @skate.remote
    def make_put():
        return skate.put("from put")

    @skate.remote
    def make_task_ref():
        return add.remote(20, 22)

    @skate.remote
    def make_list():
        return [skate.put(i) for i in range(3)]

    inner = skate.get(make_put.remote())
    assert isinstance(inner, skate.ObjectRef)
    assert skate.get(inner) == "from put"
    inner2 = skate.get(make_task_ref.remote())
    assert isinstance(inner2, skate.ObjectRef)
    assert skate.get(inner2) == 42
    assert skate.get(skate.get(make_list.remote())) == [0, 1, 2]


def test_large_numpy_args_and_returns(cluster):
    @skate.remote
    def double(a):
        return a * 2

    @skate.remote
    def make(n):
        return np.arange(n, dtype=np.float64)

    arr = np.random.default_rng(0).random(5 * MB)  # 40 MB
    out = skate.get(double.remote(arr))
    assert out.shape == arr.shape and out.dtype == arr.dtype
    np.testing.assert_array_equal(out, arr * 2)

    big = skate.get(make.remote(6 * MB))  # 48 MB returned
    assert big.shape == (6 * MB,)
    assert big[0] == 0 and big[-1] == 6 * MB - 1

    # Passing via put() ref works the same way.
    ref = skate.put(arr)
    np.testing.assert_array_equal(skate.get(double.remote(ref)), arr * 2)


# ---------------------------------------------------------------- nesting
def test_nested_tasks(cluster):
    @skate.remote
    def inner(x):
        return x * 10

    @skate.remote
    def outer(x):
        return skate.get(inner.remote(x)) + 1

    assert skate.get([outer.remote(i) for i in range(5)]) == [1, 11, 21, 31, 41]


def test_nested_tasks_all_cpus_busy_no_deadlock(cluster):
    # 4 parents on 2 CPUs, each blocks in get() on 3 children: a parent that
    # blocks in get() must give its CPU back, or this deadlocks.
    @skate.remote
    def child(i):
        return i

    @skate.remote
    def parent(i):
        return sum(skate.get([child.remote(i * 10 + j) for j in range(3)]))

    assert skate.get([parent.remote(i) for i in range(4)], timeout=60) == [3, 33, 63, 93]


def test_recursive_fib(cluster):
    @skate.remote
    def fib(n):
        if n <= 1:
            return n
        return sum(skate.get([fib.remote(n - 1), fib.remote(n - 2)]))

    assert skate.get(fib.remote(5), timeout=90) == 5


# ------------------------------------------------------------------- options
def test_max_calls_restarts_worker(cluster):
    @skate.remote(max_calls=1)
    def pid():
        return os.getpid()

    pids = [skate.get(pid.remote()) for _ in range(3)]
    assert len(set(pids)) == 3
    assert os.getpid() not in pids

    @skate.remote
    def reused_pid():
        return os.getpid()

    # Without max_calls, sequential calls can reuse a worker.
    seq = [skate.get(reused_pid.remote()) for _ in range(6)]
    assert len(set(seq)) < 6


def test_runtime_env_env_vars(cluster):
    @skate.remote(runtime_env={"env_vars": {"SKATE_TEST_VAR": "decorator"}})
    def read_env():
        return os.environ.get("SKATE_TEST_VAR")

    @skate.remote
    def read_env_plain():
        return os.environ.get("SKATE_TEST_VAR")

    assert skate.get(read_env.remote()) == "decorator"
    assert (
        skate.get(
            read_env_plain.options(runtime_env={"env_vars": {"SKATE_TEST_VAR": "options"}}).remote()
        )
        == "options"
    )
    # The variable does not leak into tasks that did not ask for it.
    assert skate.get(read_env_plain.remote()) is None
    assert "SKATE_TEST_VAR" not in os.environ


def test_fractional_cpus_run_concurrently(cluster, tmp_path):
    # 4 tasks x 0.5 CPU fit at once on 2 CPUs: all four must be running
    # simultaneously to pass the rendezvous (tasks stay *running*, they do
    # not block in get(), so each really holds its CPU share).
    @skate.remote(num_cpus=0.5)
    def meet(d, i):
        return rendezvous(d, str(i), 4)

    rdv = str(tmp_path / "rdv")
    assert skate.get([meet.remote(rdv, i) for i in range(4)], timeout=60) == [4, 4, 4, 4]


def test_custom_resources(cluster, tmp_path):
    assert skate.cluster_resources()["custom"] == 2

    @skate.remote(resources={"custom": 1}, num_cpus=0)
    def meet(d, i):
        return rendezvous(d, str(i), 2)

    assert skate.get([meet.remote(str(tmp_path / "rdv"), i) for i in range(2)], timeout=60) == [
        2,
        2,
    ]

    # A running task holds its resources; they come back when it finishes.
    release = str(tmp_path / "release")

    @skate.remote(resources={"custom": 2}, num_cpus=0)
    def hold(path):
        wait_for_file(path)
        return "released"

    ref = hold.remote(release)
    wait_for_condition(lambda: skate.available_resources().get("custom", 0) == 0)
    touch(release)
    assert skate.get(ref, timeout=30) == "released"
    wait_for_condition(lambda: skate.available_resources().get("custom", 0) == 2)


def test_cpu_resources_held_while_running(cluster, tmp_path):
    release = str(tmp_path / "release")

    @skate.remote(num_cpus=2)
    def hold(path):
        wait_for_file(path)
        return skate.get_runtime_context().get_assigned_resources()

    ref = hold.remote(release)
    wait_for_condition(lambda: skate.available_resources().get("CPU", 0) == 0)
    touch(release)
    assert skate.get(ref, timeout=30) == {"CPU": 2.0}
    wait_for_condition(lambda: skate.available_resources().get("CPU", 0) == 2)

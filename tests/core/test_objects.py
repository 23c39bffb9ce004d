"""The object store: put / get / wait, zero-copy numpy, lifetimes, spilling."""

import gc
import glob
import os
import time

import numpy as np
import pytest

import skate
from skate.exceptions import GetTimeoutError
from tests.core.utils import touch, wait_for_file

MB = 1024 * 1024


class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


@pytest.fixture
def cluster(start_cluster):
    return start_cluster(num_cpus=2)


# ----------------------------------------------------------------- put / get
@pytest.mark.parametrize(
    "value",
    [
        0,
        -7,
        2**70,
        3.5,
        float("inf"),
        1 + 2j,
        True,
        None,
        "",
        "héllo wörld",
        b"",
        b"\x00\xffbytes",
        bytearray(b"abc"),
        [],
        [1, "two", 3.0, None],
        (1, (2, (3,))),
        {"a": 1, "b": [1, 2], 3: "x"},
        {1, 2, 3},
        frozenset({"x"}),
        Point(1, 2),
        [Point(0, 0), {"nested": Point(3, 4)}],
        "x" * (2 * MB),
        b"y" * (3 * MB),
        list(range(10000)),
    ],
    ids=lambda v: type(v).__name__,
)
def test_put_get_roundtrip(cluster, value):
    ref = skate.put(value)
    assert isinstance(ref, skate.ObjectRef)
    assert skate.get(ref) == value


def test_put_get_exception_and_local_class(cluster):
    class Local:
        def __init__(self, v):
            self.v = v

    got = skate.get(skate.put(Local(5)))
    assert got.v == 5
    err = skate.get(skate.put(ValueError("stored, not raised")))
    assert isinstance(err, ValueError) and str(err) == "stored, not raised"


@pytest.mark.parametrize(
    "dtype", [np.float64, np.float32, np.int64, np.int8, np.uint16, np.bool_, np.complex128]
)
def test_put_get_numpy(cluster, dtype):
    arr = (np.arange(1000) % 7).astype(dtype).reshape(10, 100)
    out = skate.get(skate.put(arr))
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)
    # Non-contiguous and object arrays.
    np.testing.assert_array_equal(skate.get(skate.put(arr.T)), arr.T)
    np.testing.assert_array_equal(skate.get(skate.put(arr[:, ::3])), arr[:, ::3])
    scalar = skate.get(skate.put(arr[0, 1]))
    assert scalar == arr[0, 1] and type(scalar) is type(arr[0, 1])


def test_put_get_numpy_object_and_nested(cluster):
    obj = np.array([1, "a", None], dtype=object)
    np.testing.assert_array_equal(skate.get(skate.put(obj)), obj)
    nested = {"w": np.ones((100, 100)), "b": [np.zeros(3), np.arange(5)], "meta": "m"}
    out = skate.get(skate.put(nested))
    np.testing.assert_array_equal(out["w"], nested["w"])
    np.testing.assert_array_equal(out["b"][1], nested["b"][1])
    assert out["meta"] == "m"


def test_get_list(cluster):
    refs = [skate.put(i) for i in range(20)]
    assert skate.get(refs) == list(range(20))
    assert skate.get([]) == []
    assert skate.get(refs[:1]) == [0]


def test_objectref_identity(cluster):
    ref = skate.put("v")
    other = skate.put("v")
    assert isinstance(ref.hex(), str) and len(ref.hex()) > 0
    assert ref == ref and ref != other
    assert ref.hex() != other.hex()
    d = {ref: 1, other: 2}
    assert d[ref] == 1 and d[other] == 2
    assert ref.hex() in repr(ref)


def test_get_timeout(cluster, tmp_path):
    release = str(tmp_path / "release")

    @skate.remote
    def blocked(path):
        wait_for_file(path)
        return "done"

    ref = blocked.remote(release)
    with pytest.raises(GetTimeoutError) as info:
        skate.get(ref, timeout=0.3)
    # GetTimeoutError is also the builtin TimeoutError.
    assert isinstance(info.value, TimeoutError)
    with pytest.raises(TimeoutError):
        skate.get([skate.put(1), ref], timeout=0)
    touch(release)
    assert skate.get(ref, timeout=30) == "done"
    # A ready object with timeout=0 is returned immediately.
    assert skate.get(skate.put(3), timeout=0) == 3


def test_get_timeout_wall_clock(cluster, tmp_path):
    # timeout is honoured promptly (not rounded up to seconds).
    release = str(tmp_path / "release")

    @skate.remote
    def blocked(path):
        wait_for_file(path)

    ref = blocked.remote(release)
    start = time.monotonic()
    with pytest.raises(GetTimeoutError):
        skate.get(ref, timeout=0.5)
    assert time.monotonic() - start < 5
    touch(release)
    skate.get(ref, timeout=30)


def test_get_non_ref_raises(cluster):
    # Ray: a non-ref, non-list argument is a ValueError ...
    for bad in (1, "x", (skate.put(1),), None):
        with pytest.raises(ValueError, match="ObjectRef"):
            skate.get(bad)
    # ... while a list containing a non-ref is a TypeError.
    with pytest.raises(TypeError, match="not an .*ObjectRef"):
        skate.get([skate.put(1), 2])


def test_put_objectref_raises(cluster):
    ref = skate.put(1)
    with pytest.raises(TypeError, match="ObjectRef"):
        skate.put(ref)
    # Wrapping the ref in a container is the documented way.
    wrapped = skate.get(skate.put([ref]))
    assert wrapped[0] == ref
    assert skate.get(wrapped[0]) == 1


# ----------------------------------------------------------------- zero copy
def test_numpy_zero_copy_read_only(cluster):
    arr = np.arange(2 * MB, dtype=np.float64)  # 16 MB
    ref = skate.put(arr)
    a = skate.get(ref)
    b = skate.get(ref)
    assert a.flags.writeable is False
    with pytest.raises(ValueError, match="read-only"):
        a[0] = 1.0
    # Both gets map the same shared-memory buffer: no copy was made.
    assert np.shares_memory(a, b)
    np.testing.assert_array_equal(a, arr)
    # A copy is writable.
    c = a.copy()
    c[0] = 99.0
    assert c[0] == 99.0 and a[0] == 0.0
    # Arrays inside containers, and task args, are read-only too.
    nested = skate.get(skate.put({"x": arr}))
    assert nested["x"].flags.writeable is False

    @skate.remote
    def writeable(x):
        return x.flags.writeable

    assert skate.get(writeable.remote(arr)) is False

    @skate.remote
    def make():
        return np.ones(2 * MB)

    out = skate.get(make.remote())
    assert out.flags.writeable is False and out.sum() == 2 * MB


# ---------------------------------------------------------------------- wait
def test_wait_basic(cluster, tmp_path):
    release = str(tmp_path / "release")

    @skate.remote
    def blocked(path):
        wait_for_file(path)
        return 1

    slow = blocked.remote(release)
    fast = [skate.put(i) for i in range(3)]

    ready, not_ready = skate.wait(fast + [slow], num_returns=3)
    assert ready == fast and not_ready == [slow]

    ready, not_ready = skate.wait([slow], timeout=0.2)
    assert ready == [] and not_ready == [slow]

    ready, not_ready = skate.wait([slow] + fast, num_returns=4, timeout=0.3)
    assert set(ready) == set(fast) and not_ready == [slow]

    ready, not_ready = skate.wait([slow], num_returns=1, timeout=0)
    assert ready == [] and not_ready == [slow]

    touch(release)
    ready, not_ready = skate.wait([slow], num_returns=1, timeout=30)
    assert ready == [slow] and not_ready == []


def test_wait_default_num_returns_is_one(cluster):
    refs = [skate.put(i) for i in range(5)]
    ready, not_ready = skate.wait(refs)
    assert len(ready) == 1 and len(not_ready) == 4
    assert set(ready + not_ready) == set(refs)


def test_wait_preserves_input_order(cluster, tmp_path):
    release = str(tmp_path / "release")

    # num_cpus=0: the blocked tasks must not starve the quick ones of CPUs.
    @skate.remote(num_cpus=0)
    def blocked(path, i):
        wait_for_file(path)
        return i

    @skate.remote
    def quick(i):
        return i

    slow = [blocked.remote(release, i) for i in range(3)]
    done = [quick.remote(i) for i in range(4)]
    mixed = [done[0], slow[0], done[1], slow[1], done[2], slow[2], done[3]]
    skate.get(done)
    ready, not_ready = skate.wait(mixed, num_returns=4, timeout=10)
    # Both lists keep the relative order of the input list.
    assert ready == done
    assert not_ready == slow

    ready, not_ready = skate.wait(list(reversed(mixed)), num_returns=2, timeout=10)
    assert len(ready) == 2 and set(ready) <= set(done)
    order = list(reversed(mixed))
    assert order.index(ready[0]) < order.index(ready[1])
    assert [order.index(r) for r in not_ready] == sorted(order.index(r) for r in not_ready)
    touch(release)
    assert skate.get(slow, timeout=30) == [0, 1, 2]


def test_wait_fetch_local(cluster):
    @skate.remote
    def f(i):
        return np.full(1000, i)

    refs = [f.remote(i) for i in range(4)]
    ready, not_ready = skate.wait(refs, num_returns=4, timeout=30, fetch_local=False)
    assert ready == refs and not_ready == []
    ready, not_ready = skate.wait(refs, num_returns=4, timeout=30, fetch_local=True)
    assert ready == refs
    assert [int(a[0]) for a in skate.get(ready)] == [0, 1, 2, 3]


def test_wait_bad_arguments(cluster):
    ref = skate.put(1)
    with pytest.raises(TypeError):
        skate.wait(ref)  # a single ref, not a list
    with pytest.raises(TypeError):
        skate.wait([1])
    with pytest.raises(ValueError):
        skate.wait([ref, ref])  # duplicates
    with pytest.raises(ValueError):
        skate.wait([ref], num_returns=2)
    assert skate.wait([]) == ([], [])


# ----------------------------------------------------------------- lifetimes
def test_ref_inside_put_object_kept_alive(cluster):
    inner = skate.put(np.arange(1000))
    inner_hex = inner.hex()
    outer = skate.put([inner])
    del inner
    gc.collect()
    got = skate.get(outer)[0]
    assert got.hex() == inner_hex
    assert skate.get(got).sum() == sum(range(1000))


def test_ref_inside_task_result_kept_alive(cluster):
    @skate.remote
    def make():
        # The task's own reference to the inner object dies with the task.
        return [skate.put("inner value"), skate.put(np.ones(10))]

    outer = make.remote()
    inner = skate.get(outer)
    assert skate.get(inner[0]) == "inner value"
    assert skate.get(inner[1]).sum() == 10


def test_ref_passed_to_task_kept_alive_after_driver_drops_it(cluster, tmp_path):
    release = str(tmp_path / "release")

    @skate.remote
    def use_later(lst, path):
        wait_for_file(path)
        return skate.get(lst[0]).sum()

    inner = skate.put(np.ones(MB))
    ref = use_later.remote([inner], release)
    del inner
    gc.collect()
    touch(release)
    assert skate.get(ref, timeout=30) == MB


# -------------------------------------------------------- memory management
PUT_LOOP_CLUSTER = {"num_cpus": 2, "object_store_memory": 500 * MB}


def test_put_loop_bounded_memory(start_cluster):
    start_cluster(**PUT_LOOP_CLUSTER)
    for i in range(50):
        ref = skate.put(np.full(100 * MB // 8, i, dtype=np.int64))
        arr = skate.get(ref)
        assert arr[0] == i and arr[-1] == i
        del arr, ref


@pytest.mark.skate_only
def test_put_loop_shm_stays_bounded(start_cluster):
    """Skate: dropped objects are freed, /dev/shm never holds 50 x 100 MB."""
    start_cluster(**PUT_LOOP_CLUSTER)

    def shm_bytes():
        # memory really used (allocated blocks) by this process's own arenas
        total = 0
        for p in glob.glob(f"/dev/shm/skate-s*-p{os.getpid()}-*"):
            try:
                total += os.stat(p).st_blocks * 512
            except OSError:
                pass
        return total

    peak = 0
    for i in range(50):
        ref = skate.put(np.full(100 * MB // 8, i, dtype=np.int64))
        assert skate.get(ref)[0] == i
        del ref
        peak = max(peak, shm_bytes())
    assert peak <= 600 * MB, f"/dev/shm/skate* peaked at {peak / MB:.0f} MB"


@pytest.mark.slow
def test_spilling_keeps_all_objects(start_cluster):
    # 10 x 100 MB with a 300 MB store: objects must be spilled and restored.
    start_cluster(num_cpus=2, object_store_memory=300 * MB)
    refs = [skate.put(np.full(100 * MB // 8, i, dtype=np.int64)) for i in range(10)]
    for i, ref in enumerate(refs):
        arr = skate.get(ref)
        assert arr.shape == (100 * MB // 8,)
        assert arr[0] == i and arr[-1] == i and arr[len(arr) // 2] == i
        del arr
    # Restored objects can be read again, and used by tasks.

    @skate.remote
    def first(a):
        return int(a[0])

    assert skate.get([first.remote(r) for r in refs[:3]]) == [0, 1, 2]
    assert int(skate.get(refs[0])[-1]) == 0

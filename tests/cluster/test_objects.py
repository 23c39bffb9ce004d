"""Objects crossing nodes: large arrays arrive intact, results come back,
many small objects, a third node reading a second node's object, and proof
(from the store books) that bytes really moved."""

import hashlib

import numpy as np
import pytest

import skate
from skate.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from tests.cluster.utils import GiB, MiB, store_stats
from tests.core.utils import wait_for_condition

STORE = 512 * MiB


def _on(node):
    return NodeAffinitySchedulingStrategy(node_id=node.node_id, soft=False)


def _random_bytes(nbytes, seed=0):
    return np.frombuffer(np.random.default_rng(seed).bytes(nbytes), dtype=np.uint8)


def _sha(arr):
    return hashlib.sha256(memoryview(np.ascontiguousarray(arr)).cast("B")).hexdigest()


@skate.remote
def digest(arr):
    """Where it ran, and what it received."""
    return skate.get_runtime_context().get_node_id(), arr.nbytes, _sha(arr)


@skate.remote
def length(arr):
    return len(arr)


def _two_nodes(cluster, store=STORE):
    return cluster(head={"num_cpus": 1, "object_store_memory": store},
                   workers=[{"num_cpus": 1, "object_store_memory": store}])


# ----------------------------------------------------------------- large arrays
def test_100mb_array_put_on_one_node_is_read_intact_on_another(cluster):
    c = _two_nodes(cluster)
    arr = _random_bytes(100 * MiB)
    ref = skate.put(arr)
    assert skate.get(digest.options(scheduling_strategy=_on(c.workers[0])).remote(ref),
                     timeout=120) == (c.workers[0].node_id, arr.nbytes, _sha(arr))
    # and still intact where it was made
    assert skate.get(digest.options(scheduling_strategy=_on(c.head)).remote(ref),
                     timeout=120) == (c.head.node_id, arr.nbytes, _sha(arr))


@pytest.mark.slow
def test_1gb_array_crosses_nodes_both_ways(cluster):
    store = int(2.5 * GiB)
    c = _two_nodes(cluster, store)
    b = c.workers[0]
    arr = _random_bytes(GiB, seed=1)
    ref = skate.put(arr)
    assert skate.get(digest.options(scheduling_strategy=_on(b)).remote(ref),
                     timeout=300) == (b.node_id, GiB, _sha(arr))
    del ref

    @skate.remote
    def make(nbytes, seed):
        return _random_bytes(nbytes, seed)

    back = skate.get(make.options(scheduling_strategy=_on(b)).remote(GiB, 1), timeout=300)
    assert back.nbytes == GiB and _sha(back) == _sha(arr)


def test_task_on_another_node_reads_an_object_and_its_large_result_comes_back(cluster):
    c = _two_nodes(cluster)
    b = c.workers[0]
    x = np.arange(6 * MiB, dtype=np.float64)  # 48 MiB

    @skate.remote
    def transform(a):
        return skate.get_runtime_context().get_node_id(), a[::-1] * 2.0 + 1.0

    where, y = skate.get(transform.options(scheduling_strategy=_on(b)).remote(skate.put(x)),
                         timeout=120)
    assert where == b.node_id
    assert y.dtype == np.float64 and y.shape == x.shape
    np.testing.assert_array_equal(y, x[::-1] * 2.0 + 1.0)
    assert not y.flags.writeable  # a view of the driver's node's store, as for any get


def test_object_made_on_one_node_is_read_on_a_third(cluster):
    c = cluster(workers=[{"num_cpus": 1}, {"num_cpus": 1}])
    b, third = c.workers

    @skate.remote
    def make(nbytes):
        return _random_bytes(nbytes, seed=7)

    @skate.remote
    def read_nested(refs):
        return skate.get(refs[0]).nbytes, _sha(skate.get(refs[0]))

    ref = make.options(scheduling_strategy=_on(b)).remote(20 * MiB)
    expected = _sha(_random_bytes(20 * MiB, seed=7))
    # as a direct argument (resolved before the task runs) and nested (a get inside it)
    assert skate.get(digest.options(scheduling_strategy=_on(third)).remote(ref),
                     timeout=120) == (third.node_id, 20 * MiB, expected)
    assert skate.get(read_nested.options(scheduling_strategy=_on(third)).remote([ref]),
                     timeout=120) == (20 * MiB, expected)
    assert _sha(skate.get(ref, timeout=120)) == expected


# ---------------------------------------------------------------- many objects
def test_many_small_objects_cross_nodes(cluster):
    c = cluster(workers=[{"num_cpus": 1}])
    b = c.workers[0]

    @skate.remote
    def total(refs):
        return sum(int(np.asarray(v).sum()) for v in skate.get(refs))

    @skate.remote
    def small(i):
        return i

    @skate.remote
    def medium(i):
        return np.full(150 * 1024 // 8, i, dtype=np.int64)  # over the 100 KiB inline limit

    tiny = [skate.put(i) for i in range(1000)]
    stored = [skate.put(np.full(150 * 1024 // 8, i, dtype=np.int64)) for i in range(60)]
    per = 150 * 1024 // 8
    assert skate.get(total.options(scheduling_strategy=_on(b)).remote(tiny),
                     timeout=120) == sum(range(1000))
    assert skate.get(total.options(scheduling_strategy=_on(b)).remote(stored),
                     timeout=120) == per * sum(range(60))

    assert skate.get([small.options(scheduling_strategy=_on(b)).remote(i) for i in range(1000)],
                     timeout=120) == list(range(1000))
    made = skate.get([medium.options(scheduling_strategy=_on(b)).remote(i) for i in range(60)],
                     timeout=120)
    assert [(len(a), int(a[0]), int(a[-1])) for a in made] == [(per, i, i) for i in range(60)]


# ------------------------------------------------------ proof from the store books
@pytest.mark.skate_only
def test_reading_on_another_node_copies_the_bytes_into_its_store(cluster):
    c = _two_nodes(cluster)
    head, b = c.head, c.workers[0]
    before_b, before_head = store_stats(b.node_id), store_stats(head.node_id)
    assert before_b["num_objects"] == 0

    arr = _random_bytes(100 * MiB, seed=3)
    ref = skate.put(arr)
    assert store_stats(head.node_id)["used"] >= before_head["used"] + arr.nbytes
    assert store_stats(b.node_id) == before_b  # nothing moves before someone there reads it

    assert skate.get(length.options(scheduling_strategy=_on(b)).remote(ref),
                     timeout=120) == arr.nbytes
    after_b = store_stats(b.node_id)
    assert after_b["num_objects"] == 1
    assert after_b["used"] >= arr.nbytes  # the secondary copy

    # and back: a result made on B lands in the head's store when the driver reads it
    @skate.remote
    def make(nbytes):
        return _random_bytes(nbytes, seed=4)

    used_head = store_stats(head.node_id)["used"]
    result = skate.get(make.options(scheduling_strategy=_on(b)).remote(50 * MiB), timeout=120)
    assert _sha(result) == _sha(_random_bytes(50 * MiB, seed=4))
    assert store_stats(head.node_id)["used"] >= used_head + 50 * MiB


@pytest.mark.skate_only
def test_object_read_on_another_node_is_freed_when_its_last_reference_goes(cluster):
    c = _two_nodes(cluster)
    head, b = c.head, c.workers[0]
    ref = skate.put(_random_bytes(100 * MiB, seed=5))
    assert skate.get(length.options(scheduling_strategy=_on(b)).remote(ref),
                     timeout=120) == 100 * MiB
    assert store_stats(head.node_id)["num_objects"] == 1
    del ref
    wait_for_condition(lambda: store_stats(head.node_id)["num_objects"] == 0, timeout=10)
    # and the copy B pulled goes too (an object is freed everywhere): B's arena is free
    # again for the next object, whose pages are then already mapped
    wait_for_condition(lambda: store_stats(b.node_id)["num_objects"] == 0, timeout=10)
    assert store_stats(b.node_id)["used"] == 0


@pytest.mark.parametrize("head_store, b_store", [(64 * MiB, STORE), (STORE, 64 * MiB),
                                                 (64 * MiB, 64 * MiB)])
def test_object_larger_than_an_arena_crosses_nodes_through_files(cluster, head_store, b_store):
    """Larger than the sender's arena, it is sent from its spill file; larger than the
    reader's, it is received into one."""
    c = cluster(head={"num_cpus": 1, "object_store_memory": head_store},
                workers=[{"num_cpus": 1, "object_store_memory": b_store}])
    arr = _random_bytes(100 * MiB, seed=6)
    ref = skate.put(arr)
    assert skate.get(digest.options(scheduling_strategy=_on(c.workers[0])).remote(ref),
                     timeout=120) == (c.workers[0].node_id, arr.nbytes, _sha(arr))

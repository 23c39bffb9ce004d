"""skate.util.multiprocessing.Pool: the stdlib Pool's interface, checked against the stdlib."""

import multiprocessing
import os
import pickle
import threading

import pytest

import skate
from skate.exceptions import RayActorError
from skate.util.multiprocessing import AsyncResult, Pool, PoolTerminatedError
from skate.util.multiprocessing import TimeoutError as PoolTimeoutError
from tests.core.utils import rendezvous, run_driver, touch, wait_for_file

pytestmark = pytest.mark.skate_only


# -- functions the pools run (module level: the stdlib pickles them by reference) ----------------
def square(x):
    return x * x


def add(a, b=0, *, c=0):
    return a + b + c


def fail_on_five(x):
    if x == 5:
        raise ValueError(f"five is not allowed ({x})")
    return x


class CustomError(Exception):
    pass


def raise_custom(x):
    raise CustomError(x)


def wait_then(path, value):
    wait_for_file(path, timeout=60)
    return value


def pid_of(_):
    return os.getpid()


_init_calls = []


def remember_init(tag):
    _init_calls.append((tag, os.getpid()))


def init_calls(_):
    return list(_init_calls)


def bad_init():
    raise KeyError("missing setting")


def meet(args):
    directory, name = args
    return rendezvous(directory, name, 2, timeout=60)


def crash(_):
    os._exit(1)


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stdlib_pool():
    # spawn, not fork: the test process runs Skate's threads, which fork would copy mid-state.
    pool = multiprocessing.get_context("spawn").Pool(2)
    yield pool
    pool.terminate()
    pool.join()


@pytest.fixture
def pool(skate_cluster):
    p = Pool(2)
    yield p
    p.terminate()


# -- differential: the same calls on both pools -----------------------------------------------
# (method, a function making its arguments: generators are consumed by the first pool)
DIFFERENTIAL = [
    ("map", lambda: (square, range(50))),
    ("map", lambda: (square, range(50), 7)),
    ("map", lambda: (square, [])),
    ("map", lambda: (square, (x for x in range(9)))),
    ("starmap", lambda: (add, [(1, 2), (3, 4), (5, 6)])),
    ("starmap", lambda: (add, [(i, i) for i in range(20)], 3)),
    ("apply", lambda: (add, (1, 2), {"c": 3})),
    ("apply", lambda: (square, (7,))),
]


@pytest.mark.parametrize(
    "method,make_args", DIFFERENTIAL, ids=[f"{m}-{i}" for i, (m, _) in enumerate(DIFFERENTIAL)]
)
def test_same_results_as_stdlib(pool, stdlib_pool, method, make_args):
    ours = getattr(pool, method)(*make_args())
    theirs = getattr(stdlib_pool, method)(*make_args())
    assert ours == theirs


@pytest.mark.parametrize("chunksize", [1, 3, 100])
def test_imap_same_as_stdlib(pool, stdlib_pool, chunksize):
    assert list(pool.imap(square, range(30), chunksize)) == list(
        stdlib_pool.imap(square, range(30), chunksize)
    )
    assert sorted(pool.imap_unordered(square, range(30), chunksize)) == sorted(
        stdlib_pool.imap_unordered(square, range(30), chunksize)
    )


@pytest.mark.parametrize("method", ["map", "imap", "apply"])
def test_exception_types_match_stdlib(pool, stdlib_pool, method):
    def outcome(p):
        try:
            if method == "map":
                p.map(fail_on_five, range(10), 2)
            elif method == "imap":
                list(p.imap(fail_on_five, range(10)))
            else:
                p.apply(raise_custom, (3,))
        except Exception as e:  # noqa: BLE001 - compared below
            return type(e), str(e)
        return None

    ours, theirs = outcome(pool), outcome(stdlib_pool)
    assert ours == theirs and ours is not None


def test_exception_carries_remote_traceback(pool):
    with pytest.raises(ValueError) as info:
        pool.map(fail_on_five, range(10))
    assert type(info.value) is ValueError
    assert "fail_on_five" in str(info.value.__cause__)  # the stdlib's RemoteTraceback


def test_map_async_callback_runs_before_get_returns(pool, stdlib_pool):
    seen, seen_stdlib = [], []
    result = pool.map_async(square, range(10), callback=seen.append)
    assert isinstance(result, AsyncResult)
    assert result.get(timeout=60) == [x * x for x in range(10)]
    stdlib_pool.map_async(square, range(10), callback=seen_stdlib.append).get(timeout=60)
    assert seen == seen_stdlib == [[x * x for x in range(10)]]
    assert result.ready() and result.successful()


def test_error_callback_receives_the_exception(pool):
    errors, values = [], []
    result = pool.map_async(
        fail_on_five, range(10), callback=values.append, error_callback=errors.append
    )
    with pytest.raises(ValueError):
        result.get(timeout=60)
    assert values == [] and len(errors) == 1
    assert type(errors[0]) is ValueError and "five" in str(errors[0])
    assert result.ready() and not result.successful()


def test_apply_async_callbacks(pool):
    values, errors = [], []
    ok = pool.apply_async(add, (1,), {"b": 2}, callback=values.append)
    bad = pool.apply_async(raise_custom, ("x",), error_callback=errors.append)
    assert ok.get(timeout=60) == 3 and values == [3]
    with pytest.raises(CustomError):
        bad.get(timeout=60)
    assert isinstance(errors[0], CustomError)
    assert pool.apply_async(add, (1,), kwargs={"c": 5}).get(timeout=60) == 6  # Ray's name


def test_starmap_async(pool):
    seen = []
    result = pool.starmap_async(add, [(1, 1), (2, 2)], callback=seen.append)
    assert result.get(timeout=60) == [2, 4] and seen == [[2, 4]]


def test_get_timeout_wait_ready_successful(pool, tmp_path):
    gate = str(tmp_path / "gate")
    result = pool.apply_async(wait_then, (gate, "done"))
    with pytest.raises(multiprocessing.TimeoutError):
        result.get(timeout=0.05)
    assert PoolTimeoutError is multiprocessing.TimeoutError
    result.wait(timeout=0.05)
    assert not result.ready()
    with pytest.raises(ValueError, match="not ready"):
        result.successful()
    touch(gate)
    result.wait()
    assert result.ready() and result.successful() and result.get(timeout=0) == "done"


def test_imap_next_timeout_then_results(pool, tmp_path):
    gate = str(tmp_path / "gate")
    results = pool.imap(_wait_then_star, [(gate, 1), (gate, 2)])
    with pytest.raises(multiprocessing.TimeoutError):
        results.next(timeout=0.05)
    touch(gate)
    assert list(results) == [1, 2]


def _wait_then_star(args):
    return wait_then(*args)


def test_imap_error_in_the_middle_then_continues(pool):
    results = pool.imap(fail_on_five, range(8))
    assert [next(results) for _ in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        next(results)
    assert list(results) == [6, 7]


def test_imap_reads_its_input_only_a_few_chunks_ahead(pool):
    consumed = []

    def source():
        for i in range(1_000_000):
            consumed.append(i)
            yield i

    results = pool.imap(square, source(), chunksize=10)
    assert [next(results) for _ in range(20)] == [i * i for i in range(20)]
    # 2 processes: at most 8 chunks taken beyond the 2 consumed, whenever we look
    assert len(consumed) <= (2 + 8) * 10
    assert next(results) == 20 * 20  # next() wakes the job again
    assert [next(results) for _ in range(200)] == [i * i for i in range(21, 221)]


def test_close_reads_imap_inputs_to_the_end(skate_cluster):
    p = Pool(2)
    results = p.imap(square, range(300), chunksize=1)  # far more than the read-ahead
    p.close()
    p.join()  # finishes without anyone consuming, as with the stdlib
    assert list(results) == [i * i for i in range(300)]


def test_a_lagging_imap_does_not_block_other_calls(pool):
    results = pool.imap(square, range(1000), chunksize=1)
    assert next(results) == 0
    assert pool.map(square, range(50)) == [i * i for i in range(50)]
    assert sum(1 for _ in results) == 999


def test_imap_unordered_is_load_balanced(pool, tmp_path):
    """A slow item blocks one process; the other finishes every fast one meanwhile."""
    gate = str(tmp_path / "gate")
    items = [(gate, "slow")] + [(None, i) for i in range(10)]
    results = pool.imap_unordered(_slow_or_fast, items)
    fast = [next(results) for _ in range(10)]
    assert sorted(fast) == list(range(10))
    touch(gate)
    assert next(results) == "slow"


def _slow_or_fast(args):
    gate, value = args
    if gate:
        wait_for_file(gate, timeout=60)
    return value


def test_processes_run_at_the_same_time(pool, tmp_path):
    directory = str(tmp_path / "meet")
    assert pool.map(meet, [(directory, "a"), (directory, "b")], chunksize=1) == [2, 2]


def test_initializer_runs_once_per_process(skate_cluster):
    with Pool(2, initializer=remember_init, initargs=("hello",)) as p:
        calls = p.map(init_calls, range(20), chunksize=1)
    for per_process in calls:
        assert len(per_process) == 1 and per_process[0][0] == "hello"
    assert len({c[0][1] for c in calls}) <= 2


def test_initializer_error_raises_from_constructor(skate_cluster):
    with pytest.raises(KeyError, match="missing setting"):
        Pool(2, initializer=bad_init)


def test_maxtasksperchild_replaces_processes(skate_cluster):
    with Pool(1, maxtasksperchild=2) as p:
        pids = p.map(pid_of, range(6), chunksize=1)
    assert pids[0] == pids[1] and pids[2] == pids[3] and pids[4] == pids[5]
    assert len(set(pids)) == 3


def test_close_lets_queued_work_finish_and_join_waits(skate_cluster, tmp_path):
    gate = str(tmp_path / "gate")
    p = Pool(2)
    result = p.map_async(_wait_then_star, [(gate, i) for i in range(4)], chunksize=1)
    p.close()
    with pytest.raises(ValueError, match="Pool not running"):
        p.map(square, [1])
    touch(gate)
    p.join()
    assert result.ready() and result.get(timeout=0) == [0, 1, 2, 3]


def test_join_requires_close(pool):
    with pytest.raises(ValueError, match="still running"):
        pool.join()


def test_terminate_fails_pending_results(skate_cluster, tmp_path):
    gate = str(tmp_path / "never")
    p = Pool(2)
    pending = p.map_async(_wait_then_star, [(gate, i) for i in range(4)], chunksize=1)
    iterator = p.imap(_wait_then_star, [(gate, 1)])
    p.terminate()
    with pytest.raises(PoolTerminatedError):
        pending.get(timeout=30)
    with pytest.raises(PoolTerminatedError):
        next(iterator)
    p.join()
    with pytest.raises(ValueError, match="Pool not running"):
        p.apply(square, (1,))


def test_context_manager_terminates(skate_cluster):
    with Pool(2) as p:
        assert p.map(square, range(4)) == [0, 1, 4, 9]
    with pytest.raises(ValueError):
        p.map(square, [1])
    with pytest.raises(ValueError), p:
        pass


def test_dead_process_fails_its_chunk_and_is_replaced(pool):
    with pytest.raises(RayActorError):
        pool.apply(crash, (0,))
    assert pool.map(square, range(10)) == [x * x for x in range(10)]


def test_lambdas_and_closures_work(pool):
    offset = 10
    assert pool.map(lambda x: x + offset, range(3)) == [10, 11, 12]


def test_unpicklable_argument_fails_the_call(pool):
    with pytest.raises(TypeError):
        pool.map(square, [threading.Lock()])
    assert pool.map(square, [3]) == [9]


def test_callback_exceptions_are_logged_not_raised(pool, caplog):
    def broken(_):
        raise RuntimeError("callback bug")

    result = pool.apply_async(square, (3,), callback=broken)
    assert result.get(timeout=60) == 9  # the callback ran (and failed) before get returned
    assert "callback bug" in caplog.text


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"processes": 0}, ValueError),
        ({"maxtasksperchild": 0}, ValueError),
        ({"initializer": 3}, TypeError),
    ],
)
def test_invalid_arguments(skate_cluster, kwargs, error):
    with pytest.raises(error):
        Pool(**kwargs)


def test_invalid_chunksize(pool):
    with pytest.raises(ValueError, match="Chunksize"):
        pool.map(square, [1], chunksize=0)
    with pytest.raises(ValueError, match="Chunksize"):
        pool.imap(square, [1], chunksize=-1)


def test_pool_does_not_pickle(pool):
    with pytest.raises(NotImplementedError):
        pickle.dumps(pool)


def test_pool_initializes_skate(shutdown_only):
    assert not skate.is_initialized()
    with Pool(2) as p:
        assert p.map(square, [2]) == [4]
        assert skate.is_initialized()
        assert skate.cluster_resources()["CPU"] == 2


def node_of(args):
    directory, name = args
    rendezvous(directory, name, 3, timeout=60)  # all three processes at once
    return skate.get_runtime_context().get_node_id()


def test_joins_a_cluster_and_spreads_over_its_cpus(shutdown_only, tmp_path):
    from skate.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker = cluster.add_node(num_cpus=2)
    try:
        with Pool(ray_address=cluster.address) as p:  # joins; one process per CPU
            directory = str(tmp_path / "meet")
            nodes = p.map(node_of, [(directory, str(i)) for i in range(3)], chunksize=1)
        assert sorted(nodes.count(n) for n in set(nodes)) == [1, 2]
        assert nodes.count(worker.node_id) == 2
    finally:
        skate.shutdown()
        cluster.shutdown()


# -- functions defined in a script (__main__) travel by value ---------------------------------
MAIN_SCRIPT = """
from skate.util.multiprocessing import Pool

def f(index):
    global scale
    return index * scale

def init_worker():
    global scale
    scale = 10

calls = 0

def count(_):
    global calls
    calls += 1
    return calls

if __name__ == "__main__":
    with Pool(1, initializer=init_worker) as pool:
        print(pool.map(f, range(5)))
        print(pool.map(count, range(3), chunksize=1))
"""


def test_initializer_sets_globals_of_a_script(shutdown_only):
    # ray-project/ray#37705: Ray's Pool raises NameError here; the stdlib prints these lines.
    proc = run_driver(MAIN_SCRIPT, timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split("\n")[:2] == ["[0, 10, 20, 30, 40]", "[1, 2, 3]"]


def _by_value(source, *names):
    """Functions defined in a fake __main__, shipped by value as cloudpickle ships them."""
    import cloudpickle

    ns = {"__name__": "__main__"}
    exec(source, ns)  # noqa: S102 - defines functions in a fake __main__
    return [cloudpickle.loads(cloudpickle.dumps(ns[n])) for n in names]


def test_shared_globals_first_value_wins_and_process_assignments_stay():
    from skate.util.multiprocessing.namespace import SharedGlobals

    source = (
        "SCALE = 1\ndef set_scale(v):\n    global SCALE\n    SCALE = v\n"
        "def helper():\n    return SCALE\ndef read():\n    return helper()\n"
    )
    set_scale, read = _by_value(source, "set_scale", "read")
    shared = SharedGlobals()
    assert shared.adopt(read)() == 1
    shared.adopt(set_scale)(5)
    (read_again,) = _by_value(source.replace("SCALE = 1", "SCALE = 2"), "read")
    assert shared.adopt(read_again)() == 5  # the process's own assignment stays
    assert shared.adopt(square) is square  # pickled by reference: its real module


def test_shared_globals_leave_other_callables_alone():
    from skate.util.multiprocessing.namespace import SharedGlobals

    shared = SharedGlobals()
    assert shared.adopt(abs) is abs and shared.adopt(3) == 3

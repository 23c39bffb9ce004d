"""Backend-agnostic core microbenchmarks (the benchmark set of ``ray microbenchmark``).

The same file measures Skate or real Ray, so both can be compared line by line::

    python skate/scripts/microbenchmark.py                       # skate (default)
    /path/ray-venv/bin/python skate/scripts/microbenchmark.py --backend ray
    python -m skate.scripts.microbenchmark --filter "actor calls" --duration 1

Every benchmark prints a line in Ray's format::

    single client get calls (Plasma Store) per second 10234.5 +- 120.3

A benchmark that raises (or runs past ``--timeout``) prints ``<name> FAILED: <error>``
and the run goes on with the next one, so a half-built backend still gives numbers.

The backend module is imported inside :func:`main` (``importlib.import_module(backend)``,
bound to the name ``ray``); nothing at module level imports skate or ray, only the
standard library and numpy, so the file also runs as a plain script under a Ray-only
virtualenv.

Workload sizes are scaled down for a small (2-core) machine; each line is still a
rate per single operation (tasks/s, calls/s, GB/s), so the sizes change how long one
timed call takes, not the unit. ``--full-size`` restores Ray's original sizes.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import signal
import sys
import threading
import time
import traceback

import numpy as np

# ----------------------------------------------------------------------------
# Benchmark names, in Ray's order (Ray's own strings, so outputs can be compared).
# ----------------------------------------------------------------------------
GET_SMALL = "single client get calls (Plasma Store)"
PUT_SMALL = "single client put calls (Plasma Store)"
PUT_MULTI_SMALL = "multi client put calls (Plasma Store)"
PUT_LARGE = "single client put gigabytes"
TASKS_AND_GET_BATCH = "single client tasks and get batch"
PUT_MULTI_LARGE = "multi client put gigabytes"
GET_CONTAINING_REFS = "single client get object containing 10k refs"
WAIT_1K = "single client wait 1k refs"
TASKS_SYNC = "single client tasks sync"
TASKS_ASYNC = "single client tasks async"
MULTI_TASKS_ASYNC = "multi client tasks async"
ACTOR_SYNC = "1:1 actor calls sync"
ACTOR_ASYNC = "1:1 actor calls async"
ACTOR_CONCURRENT = "1:1 actor calls concurrent"
ACTOR_1N_ASYNC = "1:n actor calls async"
ACTOR_NN_ASYNC = "n:n actor calls async"
ACTOR_NN_ARG_ASYNC = "n:n actor calls with arg async"
ASYNC_ACTOR_SYNC = "1:1 async-actor calls sync"
ASYNC_ACTOR_ASYNC = "1:1 async-actor calls async"
ASYNC_ACTOR_ARGS_ASYNC = "1:1 async-actor calls with args async"
ASYNC_ACTOR_1N_ASYNC = "1:n async-actor calls async"
ASYNC_ACTOR_NN_ASYNC = "n:n async-actor calls async"
PG_CREATE_REMOVAL = "placement group create/removal"

BENCHMARK_NAMES = [
    GET_SMALL,
    PUT_SMALL,
    PUT_MULTI_SMALL,
    PUT_LARGE,
    TASKS_AND_GET_BATCH,
    PUT_MULTI_LARGE,
    GET_CONTAINING_REFS,
    WAIT_1K,
    TASKS_SYNC,
    TASKS_ASYNC,
    MULTI_TASKS_ASYNC,
    ACTOR_SYNC,
    ACTOR_ASYNC,
    ACTOR_CONCURRENT,
    ACTOR_1N_ASYNC,
    ACTOR_NN_ASYNC,
    ACTOR_NN_ARG_ASYNC,
    ASYNC_ACTOR_SYNC,
    ASYNC_ACTOR_ASYNC,
    ASYNC_ACTOR_ARGS_ASYNC,
    ASYNC_ACTOR_1N_ASYNC,
    ASYNC_ACTOR_NN_ASYNC,
    PG_CREATE_REMOVAL,
]

# Workload sizes.  "small" is sized for a 2-core / 24 GiB box; "full" is Ray's.
SIZES = {
    "small": dict(
        batch=1000,  # tasks per "tasks and get batch" / "tasks async" call
        put_multi_small_tasks=10,  # tasks x puts/task for "multi client put calls"
        put_multi_small_puts=100,
        large_array_elems=100 * 1024 * 1024,  # int64 -> 800 MiB ("0.8 GB" per put)
        put_multi_large_tasks=4,  # tasks x puts/task x 80 MiB
        put_multi_large_puts=5,
        containing_refs=10000,
        wait_refs=1000,
        multi_client_actors=4,  # "multi client tasks async": actors x tasks each
        multi_client_tasks=1000,
        one_to_n_calls=1000,  # calls per server in the 1:n benchmarks
        n_to_n_tasks=4,  # client tasks in the n:n benchmarks
        n_to_n_calls=1000,  # calls per client task in the n:n benchmarks
        n_to_n_arg_calls=1000,
        actor_concurrency=16,
        num_pgs=100,
    ),
    "full": dict(
        batch=1000,
        put_multi_small_tasks=10,
        put_multi_small_puts=100,
        large_array_elems=100 * 1024 * 1024,
        put_multi_large_tasks=10,
        put_multi_large_puts=10,
        containing_refs=10000,
        wait_refs=1000,
        multi_client_actors=4,
        multi_client_tasks=10000,
        one_to_n_calls=5000,
        n_to_n_tasks=4,
        n_to_n_calls=5000,
        n_to_n_arg_calls=1000,
        actor_concurrency=16,
        num_pgs=100,
    ),
}

MIB = 1024 * 1024


class BenchmarkTimeout(Exception):
    """Raised (from a SIGALRM handler) when one benchmark runs past --timeout."""


class BenchmarkSkipped(Exception):
    """Raised by a benchmark whose feature the backend does not provide."""


# ----------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------
def _repo_root() -> str:
    # <root>/skate/scripts/microbenchmark.py -> <root>
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _import_backend(name: str):
    """Import the backend module ("ray" or "skate") and return it."""
    if name == "ray":
        # Never phone home from a benchmark run.
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        return importlib.import_module(name)
    except ImportError:
        if name != "skate":
            raise
        # Running from a source checkout that is not pip-installed: put the repo root
        # on sys.path, and on PYTHONPATH so worker processes can import skate too.
        root = _repo_root()
        if root not in sys.path:
            sys.path.insert(0, root)
        pp = os.environ.get("PYTHONPATH", "")
        if root not in pp.split(os.pathsep):
            os.environ["PYTHONPATH"] = root + (os.pathsep + pp if pp else "")
        return importlib.import_module(name)


def _backend_version(mod) -> str:
    return str(getattr(mod, "__version__", "unknown"))


class _Alarm:
    """Context manager: raise BenchmarkTimeout in the main thread after `seconds`."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.active = False
        self.old = None

    def _handler(self, signum, frame):
        raise BenchmarkTimeout(f"timed out after {self.seconds:g} s")

    def __enter__(self):
        if (
            self.seconds
            and self.seconds > 0
            and hasattr(signal, "setitimer")
            and threading.current_thread() is threading.main_thread()
        ):
            self.old = signal.signal(signal.SIGALRM, self._handler)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
            self.active = True
        return self

    def __exit__(self, *exc):
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.old)
            self.active = False
        return False


def _measure(fn, multiplier, duration, warmup, rounds):
    """Rate of `fn` calls times `multiplier` per second: (mean, std) over `rounds`.

    Like Ray's timeit(): a warmup of at least one call estimates the cost of one call,
    then `rounds` timed rounds of duration/rounds seconds each run `fn` in chunks of
    `step` calls (one chunk ~ 1/10 of a round) until the round's time is used up.
    """
    start = time.perf_counter()
    count = 0
    while True:
        fn()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= warmup:
            break
    per_call = elapsed / count
    round_time = max(duration / rounds, 1e-3)
    step = max(1, int(round_time / 10.0 / max(per_call, 1e-9)))
    stats = []
    for _ in range(rounds):
        start = time.perf_counter()
        count = 0
        while time.perf_counter() - start < round_time:
            for _ in range(step):
                fn()
            count += step
        end = time.perf_counter()
        stats.append(multiplier * count / (end - start))
    return float(np.mean(stats)), float(np.std(stats))


def _kill_all(ray, handles):
    kill = getattr(ray, "kill", None)
    if kill is None:
        return
    for h in handles:
        try:
            kill(h)
        except Exception:
            pass


def _supports_kwarg(fn, name) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _placement_group_api(ray):
    """(placement_group, remove_placement_group) from the backend, or None."""
    util = getattr(ray, "util", None)
    if util is None:
        try:
            util = importlib.import_module(ray.__name__ + ".util")
        except ImportError:
            return None
    create = getattr(util, "placement_group", None)
    remove = getattr(util, "remove_placement_group", None)
    if inspect.ismodule(create):  # util.placement_group is a submodule
        remove = remove or getattr(create, "remove_placement_group", None)
        create = getattr(create, "placement_group", None)
    if create is None:
        try:
            mod = importlib.import_module(ray.__name__ + ".util.placement_group")
            create = getattr(mod, "placement_group", None)
            remove = remove or getattr(mod, "remove_placement_group", None)
        except ImportError:
            return None
    if not callable(create) or not callable(remove):
        return None
    return create, remove


# ----------------------------------------------------------------------------
# Remote functions and actor classes (defined once the backend is imported)
# ----------------------------------------------------------------------------
class _Remotes:
    pass


class _Broken:
    """Stands in for a remote function/actor class the backend could not create."""

    def __init__(self, name, exc):
        self._msg = f"could not define remote {name}: {type(exc).__name__}: {exc}"

    def __getattr__(self, attr):
        raise RuntimeError(self._msg)


def _remote(ray, obj, **options):
    """ray.remote(obj) / ray.remote(**options)(obj), or a _Broken placeholder on error,
    so one unsupported feature (say async actors) only fails the benchmarks using it."""
    try:
        return ray.remote(**options)(obj) if options else ray.remote(obj)
    except Exception as e:  # noqa: BLE001
        return _Broken(obj.__name__, e)


def _define_remotes(ray):
    # Plain functions/classes first, then each is wrapped by the backend's remote();
    # the names are rebound, so the closures below (e.g. Actor.small_value_batch calling
    # small_value.remote()) see the remote versions.

    def small_value():
        return b"ok"

    def ping():
        return 1

    def do_put_small(n):
        for _ in range(n):
            ray.put(0)

    def do_put_large(n):
        for _ in range(n):
            ray.put(np.zeros(10 * 1024 * 1024, dtype=np.int64))

    def create_object_containing_ref(n):
        obj_refs = []
        for _ in range(n):
            obj_refs.append(ray.put(1))
        return obj_refs

    class Actor:
        def small_value(self):
            return b"ok"

        def small_value_arg(self, x):
            return b"ok"

        def small_value_batch(self, n):
            ray.get([small_value.remote() for _ in range(n)])

    class AsyncActor:
        async def small_value(self):
            return b"ok"

        async def small_value_with_arg(self, x):
            return b"ok"

    class Client:
        def __init__(self, servers):
            if not isinstance(servers, list):
                servers = [servers]
            self.servers = servers

        def small_value_batch(self, n):
            results = []
            for s in self.servers:
                results.extend([s.small_value.remote() for _ in range(n)])
            ray.get(results)

        def small_value_batch_arg(self, n):
            x = ray.put(0)
            results = []
            for s in self.servers:
                results.extend([s.small_value_arg.remote(x) for _ in range(n)])
            ray.get(results)

    def actor_work(actors, n):
        k = len(actors)
        ray.get([actors[i % k].small_value.remote() for i in range(n)])

    small_value = _remote(ray, small_value)
    ping = _remote(ray, ping)
    do_put_small = _remote(ray, do_put_small)
    do_put_large = _remote(ray, do_put_large)
    create_object_containing_ref = _remote(ray, create_object_containing_ref)
    Actor = _remote(ray, Actor, num_cpus=0)
    AsyncActor = _remote(ray, AsyncActor)
    Client = _remote(ray, Client, num_cpus=0)
    actor_work = _remote(ray, actor_work)

    r = _Remotes()
    r.small_value = small_value
    r.ping = ping
    r.do_put_small = do_put_small
    r.do_put_large = do_put_large
    r.create_object_containing_ref = create_object_containing_ref
    r.Actor = Actor
    r.AsyncActor = AsyncActor
    r.Client = Client
    r.actor_work = actor_work
    return r


# ----------------------------------------------------------------------------
# The benchmarks.  Each one sets up, calls `timeit(fn, multiplier)` once, and tears
# down whatever it created (actors are killed so they never pile up).
# ----------------------------------------------------------------------------
def _benchmarks(ray, r, sz, n_cpu, wait_fn):
    def get_small(timeit):
        value = ray.put(0)
        return timeit(lambda: ray.get(value))

    def put_small(timeit):
        return timeit(lambda: ray.put(0))

    def put_multi_small(timeit):
        tasks, puts = sz["put_multi_small_tasks"], sz["put_multi_small_puts"]

        def fn():
            ray.get([r.do_put_small.remote(puts) for _ in range(tasks)])

        return timeit(fn, tasks * puts)

    def put_large(timeit):
        # Hold the array in a one-element list the closure reads from, so the ``finally`` can
        # drop it (even if timeit raises and a traceback keeps this frame alive).
        holder = [np.zeros(sz["large_array_elems"], dtype=np.int64)]
        gb = 0.8 * holder[0].nbytes / (800 * MIB)  # Ray counts the 800 MiB array as 0.8 "GB"
        try:
            return timeit(lambda: ray.put(holder[0]), gb)
        finally:
            holder.clear()

    def tasks_and_get_batch(timeit):
        n = sz["batch"]

        def fn():
            ray.get([r.small_value.remote() for _ in range(n)])

        # Ray reports this one per batch (multiplier 1), not per task.
        return timeit(fn)

    def put_multi_large(timeit):
        tasks, puts = sz["put_multi_large_tasks"], sz["put_multi_large_puts"]

        def fn():
            ray.get([r.do_put_large.remote(puts) for _ in range(tasks)])

        # 80 MiB per put; Ray counts 800 MiB as 0.8 "GB".
        return timeit(fn, tasks * puts * 0.08)

    def get_containing_refs(timeit):
        ref = r.create_object_containing_ref.remote(sz["containing_refs"])
        ray.get(ref)  # creation is not part of the measurement
        return timeit(lambda: ray.get(ref))

    def wait_1k(timeit):
        n = sz["wait_refs"]
        has_fetch_local = _supports_kwarg(ray.wait, "fetch_local")

        def fn():
            not_ready = [r.small_value.remote() for _ in range(n)]
            fetch_local = True
            for _ in range(n):
                if has_fetch_local:
                    # Like Ray's benchmark: the fetch request only needs to be made once.
                    _ready, not_ready = wait_fn(not_ready, fetch_local=fetch_local)
                    fetch_local = False
                else:
                    _ready, not_ready = wait_fn(not_ready)

        return timeit(fn)

    def tasks_sync(timeit):
        return timeit(lambda: ray.get(r.small_value.remote()))

    def tasks_async(timeit):
        n = sz["batch"]

        def fn():
            ray.get([r.small_value.remote() for _ in range(n)])

        return timeit(fn, n)

    def multi_tasks_async(timeit):
        m, n = sz["multi_client_actors"], sz["multi_client_tasks"]
        actors = [r.Actor.remote() for _ in range(m)]
        try:

            def fn():
                ray.get([a.small_value_batch.remote(n) for a in actors])

            return timeit(fn, n * m)
        finally:
            _kill_all(ray, actors)

    def actor_sync(timeit):
        a = r.Actor.remote()
        try:
            return timeit(lambda: ray.get(a.small_value.remote()))
        finally:
            _kill_all(ray, [a])

    def actor_async(timeit):
        n = sz["batch"]
        a = r.Actor.remote()
        try:
            return timeit(lambda: ray.get([a.small_value.remote() for _ in range(n)]), n)
        finally:
            _kill_all(ray, [a])

    def actor_concurrent(timeit):
        n = sz["batch"]
        a = r.Actor.options(max_concurrency=sz["actor_concurrency"]).remote()
        try:
            return timeit(lambda: ray.get([a.small_value.remote() for _ in range(n)]), n)
        finally:
            _kill_all(ray, [a])

    def actor_1n_async(timeit):
        n = sz["one_to_n_calls"]
        servers = [r.Actor.remote() for _ in range(n_cpu)]
        client = r.Client.remote(servers)
        try:
            return timeit(lambda: ray.get(client.small_value_batch.remote(n)), n * n_cpu)
        finally:
            _kill_all(ray, [client] + servers)

    def actor_nn_async(timeit):
        m, n = sz["n_to_n_tasks"], sz["n_to_n_calls"]
        servers = [r.Actor.remote() for _ in range(n_cpu)]
        try:
            return timeit(
                lambda: ray.get([r.actor_work.remote(servers, n) for _ in range(m)]), m * n
            )
        finally:
            _kill_all(ray, servers)

    def actor_nn_arg_async(timeit):
        n = sz["n_to_n_arg_calls"]
        servers = [r.Actor.remote() for _ in range(n_cpu)]
        clients = [r.Client.remote(s) for s in servers]
        try:
            return timeit(
                lambda: ray.get([c.small_value_batch_arg.remote(n) for c in clients]),
                n * len(clients),
            )
        finally:
            _kill_all(ray, clients + servers)

    def async_actor_sync(timeit):
        a = r.AsyncActor.remote()
        try:
            return timeit(lambda: ray.get(a.small_value.remote()))
        finally:
            _kill_all(ray, [a])

    def async_actor_async(timeit):
        n = sz["batch"]
        a = r.AsyncActor.remote()
        try:
            return timeit(lambda: ray.get([a.small_value.remote() for _ in range(n)]), n)
        finally:
            _kill_all(ray, [a])

    def async_actor_args_async(timeit):
        n = sz["batch"]
        a = r.AsyncActor.remote()
        try:
            return timeit(
                lambda: ray.get([a.small_value_with_arg.remote(i) for i in range(n)]), n
            )
        finally:
            _kill_all(ray, [a])

    def async_actor_1n_async(timeit):
        n = sz["one_to_n_calls"]
        servers = [r.AsyncActor.remote() for _ in range(n_cpu)]
        client = r.Client.remote(servers)
        try:
            return timeit(lambda: ray.get(client.small_value_batch.remote(n)), n * n_cpu)
        finally:
            _kill_all(ray, [client] + servers)

    def async_actor_nn_async(timeit):
        m, n = sz["n_to_n_tasks"], sz["n_to_n_calls"]
        servers = [r.AsyncActor.remote() for _ in range(n_cpu)]
        try:
            return timeit(
                lambda: ray.get([r.actor_work.remote(servers, n) for _ in range(m)]), m * n
            )
        finally:
            _kill_all(ray, servers)

    def pg_create_removal(timeit):
        api = _placement_group_api(ray)
        if api is None:
            raise BenchmarkSkipped(
                f"backend '{ray.__name__}' has no util.placement_group; skipped"
            )
        create, remove = api
        num_pgs = sz["num_pgs"]

        def wait_ready(pg):
            if hasattr(pg, "wait"):
                return pg.wait(timeout_seconds=30)
            return ray.get(pg.ready(), timeout=30)

        def fn():
            pgs = [create(bundles=[{"custom": 0.001}]) for _ in range(num_pgs)]
            for pg in pgs:
                wait_ready(pg)
            # Removal is part of the measurement (and keeps the cluster from filling up).
            for pg in pgs:
                remove(pg)

        return timeit(fn, num_pgs)

    return {
        GET_SMALL: get_small,
        PUT_SMALL: put_small,
        PUT_MULTI_SMALL: put_multi_small,
        PUT_LARGE: put_large,
        TASKS_AND_GET_BATCH: tasks_and_get_batch,
        PUT_MULTI_LARGE: put_multi_large,
        GET_CONTAINING_REFS: get_containing_refs,
        WAIT_1K: wait_1k,
        TASKS_SYNC: tasks_sync,
        TASKS_ASYNC: tasks_async,
        MULTI_TASKS_ASYNC: multi_tasks_async,
        ACTOR_SYNC: actor_sync,
        ACTOR_ASYNC: actor_async,
        ACTOR_CONCURRENT: actor_concurrent,
        ACTOR_1N_ASYNC: actor_1n_async,
        ACTOR_NN_ASYNC: actor_nn_async,
        ACTOR_NN_ARG_ASYNC: actor_nn_arg_async,
        ASYNC_ACTOR_SYNC: async_actor_sync,
        ASYNC_ACTOR_ASYNC: async_actor_async,
        ASYNC_ACTOR_ARGS_ASYNC: async_actor_args_async,
        ASYNC_ACTOR_1N_ASYNC: async_actor_1n_async,
        ASYNC_ACTOR_NN_ASYNC: async_actor_nn_async,
        PG_CREATE_REMOVAL: pg_create_removal,
    }


# ----------------------------------------------------------------------------
# Process cleanup: anything the backend started that survives shutdown() is ours.
# ----------------------------------------------------------------------------
def _descendants(pid: int) -> list[int]:
    try:
        import psutil

        try:
            return [p.pid for p in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            return []
    except ImportError:
        pass
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, stack = [], [pid]
    while stack:
        for c in children.get(stack.pop(), []):
            out.append(c)
            stack.append(c)
    return out


def _start_time(pid: int):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _reap_leftovers(procs: dict[int, object], grace: float = 5.0) -> int:
    """SIGTERM, then SIGKILL, the given {pid: start_time} processes still alive."""
    def alive():
        return [p for p, st in procs.items() if st is not None and _start_time(p) == st]

    deadline = time.time() + grace
    while alive() and time.time() < deadline:
        time.sleep(0.2)
    left = alive()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in left:
            try:
                os.kill(p, sig)
            except OSError:
                pass
        t = time.time() + 3.0
        while alive() and time.time() < t:
            time.sleep(0.1)
        left = alive()
        if not left:
            break
    return len(left)


# ----------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------
def _parse_args(argv):
    p = argparse.ArgumentParser(
        description="Ray-style core microbenchmarks for Skate or Ray (same workload)."
    )
    p.add_argument("--backend", default="skate", help="module to import as `ray` (skate|ray)")
    p.add_argument(
        "--filter",
        action="append",
        default=[],
        help="only run benchmarks whose name contains this substring (repeatable)",
    )
    p.add_argument("--duration", type=float, default=2.0, help="timed seconds per benchmark")
    p.add_argument("--warmup", type=float, default=0.5, help="warmup seconds per benchmark")
    p.add_argument("--rounds", type=int, default=4, help="timed rounds (for the +- std)")
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="give up on one benchmark after this many seconds (default 60 + 10*duration)",
    )
    p.add_argument("--num-cpus", type=int, default=4, help="num_cpus for init()")
    p.add_argument(
        "--init-kwargs",
        default=None,
        help="JSON dict of extra init() keyword arguments, applied last (for ray the "
        'defaults are {"include_dashboard": false, "_node_ip_address": "127.0.0.1"})',
    )
    p.add_argument("--full-size", action="store_true", help="use Ray's original sizes")
    p.add_argument("--json", default=None, help="write {name: [mean, std]} here")
    p.add_argument("--list", action="store_true", help="list benchmark names and exit")
    p.add_argument(
        "--pause", type=float, default=0.5, help="seconds to idle before each benchmark"
    )
    return p.parse_args(argv)


def _write_json(path, results):
    if not path:
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=2)
    os.replace(tmp, path)


def main(argv=None):
    args = _parse_args(argv)
    selected = [n for n in BENCHMARK_NAMES if not args.filter or any(s in n for s in args.filter)]
    if args.list:
        for n in selected:
            print(n)
        return {}
    if not selected:
        print(f"no benchmark matches {args.filter!r}", file=sys.stderr)
        return {}

    timeout = args.timeout if args.timeout is not None else 60 + 10 * args.duration
    results: dict[str, list[float]] = {}
    failures: dict[str, str] = {}

    def fail_all(names, msg):
        for n in names:
            failures[n] = msg
            print(f"{n} FAILED: {msg}", flush=True)

    try:
        ray = _import_backend(args.backend)
    except Exception as e:  # noqa: BLE001
        fail_all(selected, f"cannot import backend {args.backend!r}: {type(e).__name__}: {e}")
        _write_json(args.json, results)
        return results

    init_kwargs = {"num_cpus": args.num_cpus}
    if PG_CREATE_REMOVAL in selected:
        init_kwargs["resources"] = {"custom": 100}
    if args.backend == "ray":
        # No dashboard (it competes for the CPUs being measured) and loopback only.
        init_kwargs.update(include_dashboard=False, _node_ip_address="127.0.0.1")
    if args.init_kwargs:
        init_kwargs.update(json.loads(args.init_kwargs))

    sizes = SIZES["full" if args.full_size else "small"]
    n_cpu = max(2, (os.cpu_count() or 2) // 2)
    print(
        f"# backend={args.backend} version={_backend_version(ray)} "
        f"python={sys.version.split()[0]} cpus={os.cpu_count()} "
        f"init={json.dumps(init_kwargs, sort_keys=True)} duration={args.duration:g}s "
        f"warmup={args.warmup:g}s sizes={'full' if args.full_size else 'small'}",
        flush=True,
    )

    me = os.getpid()
    started: dict[int, object] = {}

    def remember_children():
        for p in _descendants(me):
            started.setdefault(p, _start_time(p))

    def start_backend():
        with _Alarm(timeout):
            ray.init(**init_kwargs)
        remember_children()

    def stop_backend():
        remember_children()
        try:
            with _Alarm(60):
                ray.shutdown()
        except BaseException as e:  # noqa: BLE001
            print(f"# shutdown failed: {type(e).__name__}: {e}", file=sys.stderr)

    try:
        start_backend()
        remotes = _define_remotes(ray)
    except BaseException as e:  # noqa: BLE001
        if isinstance(e, KeyboardInterrupt):
            raise
        fail_all(selected, f"init failed: {type(e).__name__}: {e}")
        stop_backend()
        _reap_leftovers(started)
        _write_json(args.json, results)
        return results

    wait_fn = ray.wait
    benches = _benchmarks(ray, remotes, sizes, n_cpu, wait_fn)

    def healthy() -> bool:
        try:
            with _Alarm(20):
                return ray.get(remotes.ping.remote()) == 1
        except BaseException:  # noqa: BLE001
            return False

    backend_ok = True
    for idx, name in enumerate(selected):
        if not backend_ok:
            fail_all([name], "backend unavailable (restart after an earlier failure failed)")
            continue

        def timeit(fn, multiplier=1):
            return _measure(fn, multiplier, args.duration, args.warmup, args.rounds)

        if args.pause > 0:
            time.sleep(args.pause)  # let the previous benchmark's cleanup settle

        try:
            with _Alarm(timeout):
                mean, sd = benches[name](timeit)
        except BenchmarkSkipped as e:
            print(f"{name} SKIPPED: {e}", flush=True)
            continue
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001  (includes BenchmarkTimeout)
            msg = f"{type(e).__name__}: {e}".strip()
            msg = " ".join(msg.split())[:500]
            failures[name] = msg
            print(f"{name} FAILED: {msg}", flush=True)
            if os.environ.get("SKATE_BENCH_TRACEBACK"):
                traceback.print_exc()
            # Keep going: restart the backend if the failure left it unusable.
            if idx + 1 < len(selected) and not healthy():
                print("# backend unhealthy after failure; restarting it", file=sys.stderr)
                stop_backend()
                try:
                    start_backend()
                    backend_ok = healthy()
                except BaseException as e2:  # noqa: BLE001
                    if isinstance(e2, KeyboardInterrupt):
                        raise
                    print(f"# restart failed: {type(e2).__name__}: {e2}", file=sys.stderr)
                    backend_ok = False
            continue
        results[name] = [mean, sd]
        print(name, "per second", round(mean, 2), "+-", round(sd, 2), flush=True)
        _write_json(args.json, results)

    stop_backend()
    left = _reap_leftovers(started)
    if left:
        print(f"# warning: {left} backend process(es) could not be stopped", file=sys.stderr)
    _write_json(args.json, results)
    return results


if __name__ == "__main__":
    # When run as a plain script, sys.path[0] is this directory; drop it so that a file
    # here can never shadow a real module (the backend, numpy, ...).
    if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(
        os.path.abspath(__file__)
    ):
        sys.path.pop(0)
    main()
    sys.exit(0)

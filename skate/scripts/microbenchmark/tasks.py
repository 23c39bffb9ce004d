"""Task lines: one client submitting tasks (sync, async, in batches), and waiting.

Each benchmark sets up, calls ``timeit(fn, multiplier)`` once, and tears down what it
created (actors are killed so they never pile up).
"""

from __future__ import annotations

from .backend import kill_all, supports_kwarg
from .catalog import (
    MULTI_TASKS_ASYNC,
    TASKS_AND_GET_BATCH,
    TASKS_ASYNC,
    TASKS_SYNC,
    WAIT_1K,
)


def benchmarks(ray, r, sz, n_cpu):
    """{line name: benchmark(timeit)} for this family, bound to the backend `ray`,
    its remotes `r`, the sizes `sz` and `n_cpu` servers for the 1:n / n:n lines."""
    wait_fn = ray.wait

    def tasks_and_get_batch(timeit):
        n = sz["batch"]

        def fn():
            ray.get([r.small_value.remote() for _ in range(n)])

        # Ray reports this one per batch (multiplier 1), not per task.
        return timeit(fn)

    def wait_1k(timeit):
        n = sz["wait_refs"]
        has_fetch_local = supports_kwarg(ray.wait, "fetch_local")

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
            kill_all(ray, actors)

    return {
        TASKS_AND_GET_BATCH: tasks_and_get_batch,
        WAIT_1K: wait_1k,
        TASKS_SYNC: tasks_sync,
        TASKS_ASYNC: tasks_async,
        MULTI_TASKS_ASYNC: multi_tasks_async,
    }

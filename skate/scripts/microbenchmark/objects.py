"""Object store lines: puts and gets of small and large objects.

Each benchmark sets up, calls ``timeit(fn, multiplier)`` once, and drops what it
created.
"""

from __future__ import annotations

import numpy as np

from .catalog import (
    GET_CONTAINING_REFS,
    GET_SMALL,
    PUT_LARGE,
    PUT_MULTI_LARGE,
    PUT_MULTI_SMALL,
    PUT_SMALL,
)

MIB = 1024 * 1024


def benchmarks(ray, r, sz, n_cpu):
    """{line name: benchmark(timeit)} for this family, bound to the backend `ray`,
    its remotes `r`, the sizes `sz` and `n_cpu` servers for the 1:n / n:n lines."""

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

    return {
        GET_SMALL: get_small,
        PUT_SMALL: put_small,
        PUT_MULTI_SMALL: put_multi_small,
        PUT_LARGE: put_large,
        PUT_MULTI_LARGE: put_multi_large,
        GET_CONTAINING_REFS: get_containing_refs,
    }

"""Placement-group line: creating and removing placement groups.

Each benchmark sets up, calls ``timeit(fn, multiplier)`` once, and drops what it
created.
"""

from __future__ import annotations

from .backend import placement_group_api
from .catalog import PG_CREATE_REMOVAL
from .harness import BenchmarkSkipped


def benchmarks(ray, r, sz, n_cpu):
    """{line name: benchmark(timeit)} for this family, bound to the backend `ray`,
    its remotes `r`, the sizes `sz` and `n_cpu` servers for the 1:n / n:n lines."""

    def pg_create_removal(timeit):
        api = placement_group_api(ray)
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
        PG_CREATE_REMOVAL: pg_create_removal,
    }

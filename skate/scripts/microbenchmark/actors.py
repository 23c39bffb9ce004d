"""Actor lines: calls to plain actors, 1:1, 1:n and n:n.

Each benchmark sets up, calls ``timeit(fn, multiplier)`` once, and tears down what it
created (actors are killed so they never pile up).
"""

from __future__ import annotations

from .backend import kill_all
from .catalog import (
    ACTOR_1N_ASYNC,
    ACTOR_ASYNC,
    ACTOR_CONCURRENT,
    ACTOR_NN_ARG_ASYNC,
    ACTOR_NN_ASYNC,
    ACTOR_SYNC,
)


def benchmarks(ray, r, sz, n_cpu):
    """{line name: benchmark(timeit)} for this family, bound to the backend `ray`,
    its remotes `r`, the sizes `sz` and `n_cpu` servers for the 1:n / n:n lines."""

    def actor_sync(timeit):
        a = r.Actor.remote()
        try:
            return timeit(lambda: ray.get(a.small_value.remote()))
        finally:
            kill_all(ray, [a])

    def actor_async(timeit):
        n = sz["batch"]
        a = r.Actor.remote()
        try:
            return timeit(lambda: ray.get([a.small_value.remote() for _ in range(n)]), n)
        finally:
            kill_all(ray, [a])

    def actor_concurrent(timeit):
        n = sz["batch"]
        a = r.Actor.options(max_concurrency=sz["actor_concurrency"]).remote()
        try:
            return timeit(lambda: ray.get([a.small_value.remote() for _ in range(n)]), n)
        finally:
            kill_all(ray, [a])

    def actor_1n_async(timeit):
        n = sz["one_to_n_calls"]
        servers = [r.Actor.remote() for _ in range(n_cpu)]
        client = r.Client.remote(servers)
        try:
            return timeit(lambda: ray.get(client.small_value_batch.remote(n)), n * n_cpu)
        finally:
            kill_all(ray, [client] + servers)

    def actor_nn_async(timeit):
        m, n = sz["n_to_n_tasks"], sz["n_to_n_calls"]
        servers = [r.Actor.remote() for _ in range(n_cpu)]
        try:
            return timeit(
                lambda: ray.get([r.actor_work.remote(servers, n) for _ in range(m)]), m * n
            )
        finally:
            kill_all(ray, servers)

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
            kill_all(ray, clients + servers)

    return {
        ACTOR_SYNC: actor_sync,
        ACTOR_ASYNC: actor_async,
        ACTOR_CONCURRENT: actor_concurrent,
        ACTOR_1N_ASYNC: actor_1n_async,
        ACTOR_NN_ASYNC: actor_nn_async,
        ACTOR_NN_ARG_ASYNC: actor_nn_arg_async,
    }

"""Async-actor lines: calls to actors whose methods are coroutines.

Each benchmark sets up, calls ``timeit(fn, multiplier)`` once, and tears down what it
created (actors are killed so they never pile up).
"""

from __future__ import annotations

from .backend import kill_all
from .catalog import (
    ASYNC_ACTOR_1N_ASYNC,
    ASYNC_ACTOR_ARGS_ASYNC,
    ASYNC_ACTOR_ASYNC,
    ASYNC_ACTOR_NN_ASYNC,
    ASYNC_ACTOR_SYNC,
)


def benchmarks(ray, r, sz, n_cpu):
    """{line name: benchmark(timeit)} for this family, bound to the backend `ray`,
    its remotes `r`, the sizes `sz` and `n_cpu` servers for the 1:n / n:n lines."""

    def async_actor_sync(timeit):
        a = r.AsyncActor.remote()
        try:
            return timeit(lambda: ray.get(a.small_value.remote()))
        finally:
            kill_all(ray, [a])

    def async_actor_async(timeit):
        n = sz["batch"]
        a = r.AsyncActor.remote()
        try:
            return timeit(lambda: ray.get([a.small_value.remote() for _ in range(n)]), n)
        finally:
            kill_all(ray, [a])

    def async_actor_args_async(timeit):
        n = sz["batch"]
        a = r.AsyncActor.remote()
        try:
            return timeit(
                lambda: ray.get([a.small_value_with_arg.remote(i) for i in range(n)]), n
            )
        finally:
            kill_all(ray, [a])

    def async_actor_1n_async(timeit):
        n = sz["one_to_n_calls"]
        servers = [r.AsyncActor.remote() for _ in range(n_cpu)]
        client = r.Client.remote(servers)
        try:
            return timeit(lambda: ray.get(client.small_value_batch.remote(n)), n * n_cpu)
        finally:
            kill_all(ray, [client] + servers)

    def async_actor_nn_async(timeit):
        m, n = sz["n_to_n_tasks"], sz["n_to_n_calls"]
        servers = [r.AsyncActor.remote() for _ in range(n_cpu)]
        try:
            return timeit(
                lambda: ray.get([r.actor_work.remote(servers, n) for _ in range(m)]), m * n
            )
        finally:
            kill_all(ray, servers)

    return {
        ASYNC_ACTOR_SYNC: async_actor_sync,
        ASYNC_ACTOR_ASYNC: async_actor_async,
        ASYNC_ACTOR_ARGS_ASYNC: async_actor_args_async,
        ASYNC_ACTOR_1N_ASYNC: async_actor_1n_async,
        ASYNC_ACTOR_NN_ASYNC: async_actor_nn_async,
    }

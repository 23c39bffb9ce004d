"""The benchmark lines: Ray's names, in Ray's order, and the workload sizes.

Only the standard library, and no relative imports: ``benchmarks/compare_ray.py`` loads
this file by path (under either interpreter) to learn the line order without importing
skate or the rest of the package.
"""

# Ray's own strings, so outputs can be compared line by line.
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


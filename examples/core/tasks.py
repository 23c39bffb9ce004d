"""Tasks: run functions in parallel, chain them through ObjectRefs, nest them.

Run: python examples/core/tasks.py
"""

import time

import skate


@skate.remote
def slow_square(x):
    time.sleep(0.2)
    return x * x


@skate.remote
def add(a, b):
    return a + b


@skate.remote
def tree_sum(values):
    # a task may submit tasks; while it waits in get() its CPU is lent out
    if len(values) <= 2:
        return sum(values)
    mid = len(values) // 2
    return sum(skate.get([tree_sum.remote(values[:mid]), tree_sum.remote(values[mid:])]))


if __name__ == "__main__":
    skate.init(num_cpus=2)
    start = time.perf_counter()
    squares = skate.get([slow_square.remote(i) for i in range(4)])
    print(f"4 x 0.2 s tasks on 2 CPUs took {time.perf_counter() - start:.2f} s: {squares}")
    # refs as arguments: add runs once both inputs exist, without a round trip here
    print("chained:", skate.get(add.remote(slow_square.remote(3), slow_square.remote(4))))
    print("nested tree sum of 0..15:", skate.get(tree_sum.remote(list(range(16)))))
    print("options: ", skate.get(add.options(num_cpus=0.5, max_retries=1).remote(1, 2)))
    skate.shutdown()

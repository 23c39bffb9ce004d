"""multiprocessing.Pool drop-in: the stdlib program, with Skate actors as the pool's processes.

Only the import changes (``from multiprocessing import Pool`` before); the
pool now spans every node of the cluster.

Run: python examples/util/pool.py
"""

import os

from skate.util.multiprocessing import Pool

_greeting = None


def init(greeting):
    global _greeting  # runs once in each pool process
    _greeting = greeting


def collatz_steps(n):
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def hello(name):
    return f"{_greeting}, {name} (from pid {os.getpid()})"


def checked_sqrt(x):
    if x < 0:
        raise ValueError(f"negative input {x}")
    return x**0.5


if __name__ == "__main__":
    with Pool(2, initializer=init, initargs=("hello",)) as pool:
        steps = pool.map(collatz_steps, range(1, 100_001))
        print(
            "longest Collatz chain below 100,001:",
            max(steps),
            "steps, at",
            steps.index(max(steps)) + 1,
        )
        print(pool.apply(hello, ("world",)))
        print("starmap pow:", pool.starmap(pow, [(2, 10), (3, 4)]))
        print("imap_unordered:", sorted(pool.imap_unordered(collatz_steps, [27, 97, 871])))
        done = []
        result = pool.map_async(checked_sqrt, [1, 4, 9], callback=done.append)
        result.wait()
        print("map_async with a callback:", done[0])
        try:
            pool.map(checked_sqrt, [4, -1])
        except ValueError as e:  # the function's own exception type, as with the stdlib
            print("a failing item raised ValueError:", e)

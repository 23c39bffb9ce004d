"""Streaming generators: a task (or actor method) that yields hands out each value
as soon as it is made, while it keeps running.

    python examples/core/generators.py
"""

import time

import skate


@skate.remote
def slow_squares(n):
    for i in range(n):
        time.sleep(0.1)  # some work per value
        yield i * i


@skate.remote
class Tokenizer:
    async def tokens(self, text):
        for word in text.split():
            yield word.upper()


if __name__ == "__main__":
    skate.init(num_cpus=2)
    start = time.perf_counter()
    for ref in slow_squares.remote(5):
        # each value arrives ~0.1 s after the one before, not all at the end
        print(f"{time.perf_counter() - start:4.1f} s: {skate.get(ref)}")
    t = Tokenizer.remote()
    print([skate.get(ref) for ref in t.tokens.remote("stream every word")])
    skate.shutdown()

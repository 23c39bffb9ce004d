"""ActorPool: spread values over actors that each hold expensive state.

Each actor loads its "model" once (here a lookup table); the pool hands every
value to whichever actor is free and returns results in order (``map``),
as they finish (``map_unordered``), or one at a time (``submit`` / ``get_next``).

Run: python examples/util/actor_pool.py
"""

import time

import skate
from skate.util import ActorPool


@skate.remote
class Scorer:
    def __init__(self):
        time.sleep(0.2)  # stands for loading a model: paid once per actor
        self.weights = {c: i for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")}

    def score(self, word):
        time.sleep(0.05 * len(word) / 5)  # longer words take longer
        return word, sum(self.weights.get(c, 0) for c in word)


if __name__ == "__main__":
    skate.init(num_cpus=2)
    pool = ActorPool([Scorer.remote(), Scorer.remote()])
    words = ["skate", "actor", "pool", "distributed", "map", "queue", "asyncio"]
    print("in order:      ", list(pool.map(lambda a, w: a.score.remote(w), words)))
    print(
        "as they finish:", [w for w, _ in pool.map_unordered(lambda a, w: a.score.remote(w), words)]
    )
    for w in ["one", "two", "three"]:
        pool.submit(lambda a, v: a.score.remote(v), w)  # the third waits for a free actor
    while pool.has_next():
        print("get_next:", pool.get_next(timeout=30))
    skate.shutdown()

"""Bayesian optimisation with Optuna (TPE) through ``OptunaSearch``, two trials at a time.

The objective is the Branin function, a standard 2-D test function with three
global minima of value 0.397887. ``OptunaSearch`` converts the Tune search
space to Optuna distributions and asks its TPE sampler (seeded) for each new
trial's config; ``ConcurrencyLimiter`` keeps at most 2 trials in flight, so
the sampler always learns from most of the results before suggesting more.

Run: python examples/tune/optuna_search.py
"""

import math
import tempfile

import optuna

import skate
from skate import tune
from skate.tune.search import ConcurrencyLimiter
from skate.tune.search.optuna import OptunaSearch

BRANIN_MIN = 0.397887


def branin(config):
    x, y = config["x"], config["y"]
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    value = (y - b * x ** 2 + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10
    tune.report({"value": value})


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    skate.init(num_cpus=2)
    searcher = ConcurrencyLimiter(OptunaSearch(seed=0), max_concurrent=2)
    analysis = tune.run(
        branin, config={"x": tune.uniform(-5, 10), "y": tune.uniform(0, 15)},
        search_alg=searcher, num_samples=40, metric="value", mode="min",
        storage_path=tempfile.mkdtemp(), name="optuna_branin", verbose=0)

    values = [t.last_result["value"] for t in analysis.trials]
    running_best = [min(values[:i + 1]) for i in range(len(values))]
    print(f"{len(values)} trials; best so far after 10/20/40: "
          + " / ".join(f"{running_best[n - 1]:.4f}" for n in (10, 20, 40)))
    best = analysis.best_config
    print(f"best: x={best['x']:.4f} y={best['y']:.4f} -> {analysis.best_result['value']:.5f} "
          f"(global minimum {BRANIN_MIN})")
    df = analysis.results_df.sort_values("value")
    print(df[["config/x", "config/y", "value"]].head(3).to_string())
    skate.shutdown()

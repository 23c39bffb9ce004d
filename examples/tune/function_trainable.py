"""A function trainable searched by grid and by random sampling.

The trainable is a plain function: it reads its hyperparameters from
``config``, "trains" for a few steps and calls ``tune.report`` after each.
The same function is searched twice: once over a grid (every combination of
``tune.grid_search`` values) and once by random search (``num_samples``
draws from ``tune.uniform`` / ``tune.loguniform`` / ``tune.choice``), the
grid dimension expanding inside each draw. Results go to a temporary folder.

Run: python examples/tune/function_trainable.py
"""

import math
import tempfile

import skate
from skate import tune


def objective(config):
    """A noise-free toy loss: best at lr=0.1, momentum=0.9, shrinking with each step."""
    for step in range(1, 6):
        loss = (math.log10(config["lr"]) + 1) ** 2 + (config["momentum"] - 0.9) ** 2 \
            + config["width"] / 1000 + 1 / step
        tune.report({"loss": loss, "step": step})


if __name__ == "__main__":
    skate.init(num_cpus=2)
    storage = tempfile.mkdtemp(prefix="skate-tune-example-")

    # 1. Grid search: 3 x 2 = 6 trials, every combination once.
    grid = tune.run(
        objective,
        config={"lr": tune.grid_search([0.01, 0.1, 1.0]),
                "momentum": tune.grid_search([0.5, 0.9]),
                "width": 64},
        metric="loss", mode="min", storage_path=storage, name="grid", verbose=0)
    print(f"grid search: {len(grid.trials)} trials, best config {grid.best_config}, "
          f"loss {grid.best_result['loss']:.4f}")

    # 2. Random search: 8 draws, each expanded over the 2-value grid -> 16 trials.
    rand = tune.run(
        objective,
        config={"lr": tune.loguniform(1e-3, 1.0),
                "momentum": tune.uniform(0.0, 0.99),
                "width": tune.grid_search([32, 128])},
        num_samples=8, search_alg=tune.search.BasicVariantGenerator(random_state=0),
        metric="loss", mode="min", storage_path=storage, name="random",
        verbose=0)
    best = rand.best_config
    print(f"random search: {len(rand.trials)} trials, best lr={best['lr']:.4f} "
          f"momentum={best['momentum']:.3f} width={best['width']}, "
          f"loss {rand.best_result['loss']:.4f}")

    # The results table: one row per trial (pandas), sorted by the final loss.
    df = rand.results_df.sort_values("loss")
    print(df[["config/lr", "config/momentum", "config/width", "loss",
              "training_iteration"]].head(5).to_string())
    print("results written under", storage)
    skate.shutdown()

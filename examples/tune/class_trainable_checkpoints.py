"""A class trainable with checkpoints, surviving an injected failure.

``tune.Trainable`` subclasses implement ``setup``/``step`` and, to be
restartable, ``save_checkpoint``/``load_checkpoint``. Here each trial fits
``y = w * x`` by gradient descent on a fixed data set; Tune checkpoints every
2 iterations (``CheckpointConfig(checkpoint_frequency=2, num_to_keep=2)``).
At iteration 5 each trial raises once; with
``FailureConfig(max_failures=1)`` Tune restarts it in a fresh actor from its
latest checkpoint (iteration 4), and it finishes its 10 iterations. The
failure's traceback is in the trial's ``error.txt``.

Run: python examples/tune/class_trainable_checkpoints.py
"""

import json
import os
import tempfile

import numpy as np

import skate
from skate import tune


class LinearFit(tune.Trainable):
    def setup(self, config):
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=200)
        self.y = 3.0 * self.x + rng.normal(scale=0.1, size=200)
        self.w = 0.0
        self.lr = config["lr"]
        self.restored_from = None

    def step(self):
        # The one-time failure: a marker file in the trial folder remembers it happened,
        # since the restarted trial runs in a new actor (a new process).
        marker = os.path.join(self.logdir, "failed_once")
        if self.iteration == 4 and not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("injected failure at iteration 5")
        grad = -2 * np.mean((self.y - self.w * self.x) * self.x)
        self.w -= self.lr * grad
        loss = float(np.mean((self.y - self.w * self.x) ** 2))
        return {"loss": loss, "w": self.w, "restored_from": self.restored_from}

    def save_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "state.json"), "w") as f:
            json.dump({"w": self.w}, f)

    def load_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "state.json")) as f:
            self.w = json.load(f)["w"]
        self.restored_from = os.path.basename(checkpoint_dir)


if __name__ == "__main__":
    skate.init(num_cpus=2)
    storage = tempfile.mkdtemp(prefix="skate-tune-example-")
    tuner = tune.Tuner(
        LinearFit,
        param_space={"lr": tune.grid_search([0.05, 0.2])},
        tune_config=tune.TuneConfig(metric="loss", mode="min"),
        run_config=tune.RunConfig(
            name="linear_fit", storage_path=storage, stop={"training_iteration": 10},
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=2, num_to_keep=2),
            failure_config=tune.FailureConfig(max_failures=1), verbose=0))
    results = tuner.fit()

    for result in results:
        m = result.metrics
        checkpoints = sorted(n for n in os.listdir(result.path) if n.startswith("checkpoint_"))
        with open(os.path.join(result.path, "error.txt")) as f:
            first_error = f.read().strip().splitlines()[0]
        print(f"lr={result.config['lr']}: iterations={m['training_iteration']} "
              f"w={m['w']:.4f} loss={m['loss']:.5f} restored_from={m['restored_from']}")
        print(f"  kept checkpoints: {checkpoints}; error.txt starts: {first_error!r}")
        assert m["training_iteration"] == 10 and m["restored_from"] == "checkpoint_000004"
    best = results.get_best_result()
    print(f"best lr={best.config['lr']}, loss={best.metrics['loss']:.5f}, "
          f"errors={results.num_errors}, "
          f"latest checkpoint {os.path.basename(best.checkpoint.path)}")
    skate.shutdown()

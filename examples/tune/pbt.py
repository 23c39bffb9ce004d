"""Population Based Training on a toy function trainable with checkpoints.

The "model" is one number, ``score``, which grows each step by an amount that
depends on how close ``lr`` is to an ideal learning rate that *decays* over
training (0.1 at first, 0.01 at the end): no fixed ``lr`` is right all the
time. Every 4 iterations PBT ranks the 4 trials; the bottom quarter restarts
from a top trial's checkpoint with a mutated ``lr`` (``hyperparam_mutations``),
so the population follows the schedule.

The trainable reports a checkpoint with every result
(``tune.Checkpoint.from_directory``) and, when it (re)starts, reads
``tune.get_checkpoint()``: that is how an exploited trial continues from the
better trial's state, and how a paused trial resumes (4 trials share 2 CPUs).

Run: python examples/tune/pbt.py
"""

import json
import math
import os
import tempfile

import skate
from skate import tune
from skate.tune.schedulers import PopulationBasedTraining

STEPS = 40


def ideal_lr(step):
    return 0.1 * 0.1 ** (step / STEPS)  # 0.1 -> 0.01


def toy_trainable(config):
    step, score = 0, 0.0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d, open(os.path.join(d, "state.json")) as f:
            state = json.load(f)
        step, score = state["step"], state["score"]
    while step < STEPS:
        step += 1
        distance = abs(math.log10(config["lr"]) - math.log10(ideal_lr(step)))
        score += max(0.0, 1.0 - distance)  # 1 point per step at the ideal lr
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "state.json"), "w") as f:
                json.dump({"step": step, "score": score}, f)
            tune.report({"score": score, "lr": config["lr"], "step": step},
                        checkpoint=tune.Checkpoint.from_directory(d))


if __name__ == "__main__":
    skate.init(num_cpus=2)
    pbt = PopulationBasedTraining(
        time_attr="training_iteration", perturbation_interval=4,
        hyperparam_mutations={"lr": tune.loguniform(1e-4, 1.0)}, quantile_fraction=0.25,
        seed=0)
    analysis = tune.run(
        toy_trainable, config={"lr": tune.grid_search([0.001, 0.01, 0.1, 0.3])},
        scheduler=pbt, metric="score", mode="max", stop={"step": STEPS},
        storage_path=tempfile.mkdtemp(), name="pbt_toy", verbose=0)

    for trial in analysis.trials:
        print(f"{trial}: final lr={trial.config['lr']:.4g} score={trial.last_result['score']:.2f}")
    print(f"{len(pbt.perturbations)} exploits, e.g.:")
    for p in pbt.perturbations[:3]:
        print(f"  {p.target} <- {p.source}: lr {p.old_config['lr']:.4g} -> "
              f"{p.new_config['lr']:.4g}")
    # A fixed lr scores at most about half the steps' points over this schedule.
    fixed = max(sum(max(0.0, 1 - abs(math.log10(lr) - math.log10(ideal_lr(s))))
                    for s in range(1, STEPS + 1)) for lr in (0.001, 0.01, 0.1, 0.3))
    print(f"best score with PBT: {analysis.best_result['score']:.2f} "
          f"(best fixed lr of the initial grid: {fixed:.2f}, of {STEPS} possible)")
    skate.shutdown()

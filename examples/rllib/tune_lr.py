"""Tune over PPO's learning rate: each trial is an algorithm, run by skate.tune.

Run: python examples/rllib/tune_lr.py
"""

import tempfile

import skate
from skate import tune
from skate.rllib import PPOConfig


def main():
    skate.init(num_cpus=2)
    config = (PPOConfig().environment("CartPole-v1")
              .env_runners(num_env_runners=0, num_envs_per_env_runner=8)
              .training(lr=tune.grid_search([1e-4, 1e-3]), train_batch_size=1024,
                        minibatch_size=256, num_epochs=5, model={"fcnet_hiddens": [64, 64]}))
    analysis = tune.run("PPO", config=config, stop={"training_iteration": 4},
                        metric="env_runners/episode_return_mean", mode="max", verbose=0,
                        storage_path=tempfile.mkdtemp(prefix="skate-rllib-tune-"))
    for trial in analysis.trials:
        print(f"lr={trial.config['lr']:g}: return "
              f"{trial.last_result['env_runners']['episode_return_mean']:.1f}")
    print("best lr:", analysis.best_config["lr"])
    skate.shutdown()


if __name__ == "__main__":
    main()

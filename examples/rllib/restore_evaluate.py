"""Save an algorithm, restore it from the folder, and evaluate the greedy policy.

Run: python examples/rllib/restore_evaluate.py
"""

import tempfile

import skate
from skate.rllib import PPO, Algorithm


def main():
    skate.init(num_cpus=2)
    algo = PPO.default_config_for("CartPole-v1").debugging(seed=0).build()
    for _ in range(10):
        algo.train()
    path = algo.save(tempfile.mkdtemp(prefix="skate-ppo-") + "/checkpoint")
    before = algo.evaluate()["env_runners"]["episode_return_mean"]
    algo.stop()
    restored = Algorithm.from_checkpoint(path)      # config, weights, optimizer, counters
    after = restored.evaluate()["env_runners"]["episode_return_mean"]
    print(f"checkpoint {path}\ngreedy return before {before:.1f}, after restoring {after:.1f}")
    restored.stop()
    skate.shutdown()


if __name__ == "__main__":
    main()

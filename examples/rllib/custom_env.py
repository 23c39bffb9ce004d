"""A custom environment registered with tune.register_env and trained with PPO.

Run: python examples/rllib/custom_env.py
"""

import gymnasium as gym
import numpy as np

import skate
from skate import tune
from skate.rllib import PPOConfig


class GoRight(gym.Env):
    """Walk from 0 to `length` on a line; -0.1 per step, +10 at the end."""

    def __init__(self, env_config):
        self.length = env_config.get("length", 5)
        self.observation_space = gym.spaces.Box(0.0, self.length, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)  # 0: left, 1: right

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = 0
        return np.array([self.pos], np.float32), {}

    def step(self, action):
        self.pos = max(0, self.pos + (1 if action == 1 else -1))
        done = self.pos >= self.length
        return (np.array([self.pos], np.float32), 10.0 if done else -0.1, done, False, {})


def main():
    skate.init(num_cpus=2)
    tune.register_env("go_right", lambda cfg: gym.wrappers.TimeLimit(GoRight(cfg), 50))
    algo = (PPOConfig().environment("go_right", env_config={"length": 6})
            .env_runners(num_env_runners=1, num_envs_per_env_runner=4)
            .training(lr=3e-3, train_batch_size=512, minibatch_size=128, num_epochs=8,
                      model={"fcnet_hiddens": [32]})
            .debugging(seed=1).build())
    for _ in range(8):
        result = algo.train()
    print(f"mean return {result['env_runners']['episode_return_mean']:.2f} "
          f"(best possible 9.5), episode length {result['env_runners']['episode_len_mean']:.1f}")
    algo.stop()
    skate.shutdown()


if __name__ == "__main__":
    main()

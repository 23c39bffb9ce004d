"""skate.rllib: reinforcement learning on env-runner actors, with RLlib's new API stack.

>>> from skate.rllib import PPOConfig
>>> algo = (PPOConfig().environment("CartPole-v1")
...         .env_runners(num_env_runners=0).training(train_batch_size=256, num_epochs=1)
...         .build())
>>> result = algo.train()
>>> 0 < result["num_env_steps_sampled_lifetime"] <= 256   # steps that only reset don't count
True
>>> algo.stop()

Algorithms: PPO (:mod:`skate.rllib.ppo`), DQN (:mod:`skate.rllib.dqn`), on shared machinery —
:mod:`skate.rllib.algorithm` (runners, metrics, checkpoints),
:mod:`skate.rllib.env_runner`, :mod:`skate.rllib.module`,
:mod:`skate.rllib.postprocessing`. See docs/rllib.md.
"""

from skate.rllib.algorithm import Algorithm
from skate.rllib.config import AlgorithmConfig
from skate.rllib.dqn import DQN, DQNConfig
from skate.rllib.env_runner import EnvRunner, register_env
from skate.rllib.module import RLModule
from skate.rllib.ppo import PPO, PPOConfig
from skate.rllib.registry import ALGORITHMS, algorithm_class

__all__ = ["ALGORITHMS", "Algorithm", "AlgorithmConfig", "DQN", "DQNConfig", "EnvRunner", "PPO",
           "PPOConfig",
           "RLModule", "algorithm_class", "register_env"]

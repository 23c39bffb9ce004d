"""skate.rllib: reinforcement learning on env-runner actors, with RLlib's new API stack.

>>> from skate.rllib import PPOConfig
>>> algo = (PPOConfig().environment("CartPole-v1")
...         .env_runners(num_env_runners=0).training(train_batch_size=256, num_epochs=1)
...         .build())
>>> result = algo.train()
>>> 0 < result["num_env_steps_sampled_lifetime"] <= 256   # steps that only reset don't count
True
>>> algo.stop()

Algorithms: PPO (:mod:`skate.rllib.ppo`), DQN (:mod:`skate.rllib.dqn`), IMPALA
(:mod:`skate.rllib.impala`), APPO (:mod:`skate.rllib.appo`), SAC (:mod:`skate.rllib.sac`), BC
and MARWIL from recorded experience (:mod:`skate.rllib.marwil`, :mod:`skate.rllib.offline`), on
shared machinery —
:mod:`skate.rllib.algorithm` (runners, metrics, checkpoints),
:mod:`skate.rllib.env_runner`, :mod:`skate.rllib.module`, multi-agent environments
(:mod:`skate.rllib.multi_agent_env`) and their runners (:mod:`skate.rllib.multi_agent_runner`),
:mod:`skate.rllib.postprocessing`. See docs/rllib.md.
"""

import importlib

# Names load on first use: importing skate.rllib (or skate.rllib.registry, as the CLI
# does before it starts a worker) must not import torch, which takes 1.5-2 s.
_EXPORTS = {
    "Algorithm": "skate.rllib.algorithm", "AlgorithmConfig": "skate.rllib.config",
    "APPO": "skate.rllib.appo", "APPOConfig": "skate.rllib.appo",
    "IMPALA": "skate.rllib.impala", "IMPALAConfig": "skate.rllib.impala",
    "SAC": "skate.rllib.sac", "SACConfig": "skate.rllib.sac",
    "BC": "skate.rllib.marwil", "BCConfig": "skate.rllib.marwil",
    "MARWIL": "skate.rllib.marwil", "MARWILConfig": "skate.rllib.marwil",
    "DQN": "skate.rllib.dqn", "DQNConfig": "skate.rllib.dqn",
    "EnvRunner": "skate.rllib.env_runner", "register_env": "skate.rllib.env_runner",
    "RLModule": "skate.rllib.module", "PPO": "skate.rllib.ppo", "PPOConfig": "skate.rllib.ppo",
    "MultiAgentEnv": "skate.rllib.multi_agent_env",
    "ParallelPettingZooEnv": "skate.rllib.multi_agent_env",
    "MultiAgentEnvRunner": "skate.rllib.multi_agent_runner",
    "PolicySpec": "skate.rllib.multi_agent_runner",
    "ALGORITHMS": "skate.rllib.registry", "algorithm_class": "skate.rllib.registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'skate.rllib' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))

"""Algorithms by name: ``rllib list``, ``tune.run("PPO")``, checkpoints."""

from __future__ import annotations

import importlib

ALGORITHMS = {
    "PPO": ("skate.rllib.ppo", "PPO",
            "Proximal Policy Optimization: on-policy, clipped surrogate, GAE; discrete or "
            "continuous actions"),
    "DQN": ("skate.rllib.dqn", "DQN",
            "Deep Q-Network: off-policy, replay buffer (uniform or prioritized), target "
            "network, double and dueling Q, n-step returns; discrete actions"),
}


def algorithm_class(name: str):
    """The Algorithm class called ``name`` (ValueError listing the known ones)."""
    key = {k.upper(): k for k in ALGORITHMS}.get(str(name).upper())
    if key is None:
        raise ValueError(f"unknown algorithm {name!r}; known algorithms: "
                         f"{', '.join(sorted(ALGORITHMS))}")
    module, attr, _ = ALGORITHMS[key]
    return getattr(importlib.import_module(module), attr)


def warm_up(name: str) -> None:
    """Import what training ``name`` needs (torch, gymnasium) in this process: the
    ``rllib`` CLI runs this on a worker while it checks the config itself, and the trial
    then starts on that worker."""
    import gymnasium  # noqa: F401

    algorithm_class(name)


def register_with_tune() -> None:
    from skate.tune.registry import _TRAINABLES

    for name in ALGORITHMS:
        if name not in _TRAINABLES:
            _TRAINABLES[name] = algorithm_class(name)

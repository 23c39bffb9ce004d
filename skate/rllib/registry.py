"""Algorithms by name: ``rllib list``, ``tune.run("PPO")``, checkpoints."""

from __future__ import annotations

import importlib

ALGORITHMS = {
    "APPO": ("skate.rllib.appo", "APPO",
             "Asynchronous PPO: IMPALA's asynchronous sampling and V-trace with PPO's clipped "
             "surrogate; discrete or continuous actions"),
    "SAC": ("skate.rllib.sac", "SAC",
            "Soft actor-critic: off-policy, squashed Gaussian policy, twin Q networks with "
            "Polyak-averaged targets, learned entropy temperature; continuous actions"),
    "IMPALA": ("skate.rllib.impala", "IMPALA",
               "Importance-weighted actor-learner: runners sample without pause, V-trace "
               "corrects for stale weights; discrete or continuous actions"),
    "PPO": ("skate.rllib.ppo", "PPO",
            "Proximal Policy Optimization: on-policy, clipped surrogate, GAE; discrete or "
            "continuous actions"),
    "BC": ("skate.rllib.marwil", "BC",
           "Behaviour cloning: imitates actions recorded with offline_data(output=...), "
           "trains with no environment; discrete or continuous actions"),
    "MARWIL": ("skate.rllib.marwil", "MARWIL",
               "Monotonic advantage re-weighted imitation: recorded actions weighted by their "
               "exponentiated advantage; offline, discrete or continuous actions"),
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


def register_with_tune(name: str | None = None) -> None:
    """Register algorithm ``name`` with tune (None: all of them), importing only its
    module."""
    from skate.tune.registry import _TRAINABLES

    for algo in ([name] if name in ALGORITHMS else [] if name is not None else ALGORITHMS):
        if algo not in _TRAINABLES:
            _TRAINABLES[algo] = algorithm_class(algo)

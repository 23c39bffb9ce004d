"""Trainables by name, and turning whatever the user passed into a Trainable class.

``tune.run("PPO", ...)`` looks the name up here; libraries register their
algorithms on import (rllib registers its algorithms with ``register_trainable``).

>>> from skate import tune
>>> def my_trainable(config):
...     tune.report({"x": 1})
>>> tune.register_trainable("mine", my_trainable)
>>> tune.run("mine", verbose=0).trials[0].last_result["x"]
1
"""

from __future__ import annotations

import inspect

from skate.tune.function_trainable import wrap_function
from skate.tune.trainable import Trainable

_TRAINABLES: dict = {}
# Hooks that register trainables lazily (e.g. rllib's algorithms) on first lookup: called
# with the name looked up (register that one if it is theirs), or None (register all).
_PROVIDERS: list = []


def register_trainable(name: str, trainable) -> None:
    """Make ``trainable`` (a function or Trainable class) runnable as ``tune.run(name)``."""
    if not isinstance(name, str) or not name:
        raise ValueError("register_trainable needs a non-empty string name.")
    _check_trainable(trainable)
    _TRAINABLES[name] = trainable


def register_env(name: str, env_creator) -> None:
    """Make ``env_creator(env_config) -> gymnasium.Env`` known to rllib as ``name``."""
    from skate.rllib.env_runner import register_env as register

    register(name, env_creator)


def _rllib_algorithms(name: str | None) -> None:
    try:
        from skate.rllib.registry import register_with_tune
    except ImportError:  # rllib's extras (torch, gymnasium) are not installed
        return
    register_with_tune(name)


_PROVIDERS.append(_rllib_algorithms)


def get_trainable_cls(name: str):
    """The trainable registered under ``name``; KeyError listing the known names if none."""
    for key in (name, None):  # the name alone first: the others may import more
        if name in _TRAINABLES:
            break
        for provide in _PROVIDERS:
            provide(key)
    try:
        return _TRAINABLES[name]
    except KeyError:
        raise ValueError(f"Unknown trainable {name!r}. Registered: {sorted(_TRAINABLES)}. "
                         f"Register it with tune.register_trainable(name, trainable) or pass "
                         f"the function/class itself.") from None


def _check_trainable(trainable) -> None:
    if inspect.isclass(trainable):
        if not issubclass(trainable, Trainable):
            raise TypeError(f"{trainable.__name__} is a class but not a tune.Trainable subclass; "
                            f"subclass tune.Trainable (setup/step) or pass a function.")
    elif not callable(trainable):
        raise TypeError(f"A trainable must be a function, a tune.Trainable subclass or a "
                        f"registered name, got {type(trainable).__name__}.")


def resolve(trainable) -> tuple[type, str]:
    """(Trainable class, display name) for a function, class or registered name."""
    if isinstance(trainable, str):
        name, trainable = trainable, get_trainable_cls(trainable)
    elif not inspect.isclass(trainable) and hasattr(trainable, "as_trainable"):
        # a trainer (skate.sgd's TorchTrainer): it knows its own Trainable class
        trainable = trainable.as_trainable()
        name = trainable.__name__
    else:
        name = getattr(trainable, "__name__", type(trainable).__name__)
    _check_trainable(trainable)
    if inspect.isclass(trainable):
        return trainable, name
    cls = wrap_function(trainable)
    if hasattr(trainable, "_tune_resources"):
        cls._tune_resources = trainable._tune_resources
    return cls, name

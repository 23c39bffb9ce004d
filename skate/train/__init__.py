"""skate.train: the names Ray 2.x scripts import from ``ray.train`` inside Tune trainables.

``from skate import train; train.report({...}, checkpoint=...)`` is the same call
as ``tune.report``; the configs are Tune's. (Data-parallel training, Ray
Train's trainers, is the sgd library.)

>>> from skate import train, tune
>>> def trainable(config):
...     train.report({"loss": config["x"] ** 2})
>>> tune.run(trainable, config={"x": 3}, verbose=0).trials[0].last_result["loss"]
9
"""

import importlib

_LAZY = {
    "report": "skate.tune.session",
    "get_checkpoint": "skate.tune.session",
    "get_context": "skate.tune.session",
    "Checkpoint": "skate.tune.checkpoint",
    "RunConfig": "skate.tune.tuner",
    "CheckpointConfig": "skate.tune.tuner",
    "FailureConfig": "skate.tune.tuner",
    "Result": "skate.tune.result_grid",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skate.train' has no attribute {name!r}")


def __dir__():
    return __all__

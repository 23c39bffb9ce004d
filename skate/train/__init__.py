"""skate.train: Ray Train's names -- the data-parallel trainer (skate.sgd) and the calls
a training loop or a Tune trainable makes.

Inside a ``TorchTrainer`` worker, ``train.report`` / ``get_checkpoint`` /
``get_context`` / ``get_dataset_shard`` talk to the run; inside a Tune
function trial they are Tune's (world size 1). ``skate.train.torch`` holds
``TorchTrainer``, ``prepare_model``, ``prepare_data_loader``, ``get_device``.

>>> from skate import train, tune
>>> def trainable(config):
...     train.report({"loss": config["x"] ** 2})
>>> tune.run(trainable, config={"x": 3}, verbose=0).trials[0].last_result["loss"]
9
"""

import importlib

_LAZY = {
    "report": "skate.sgd.session",
    "get_checkpoint": "skate.sgd.session",
    "get_context": "skate.sgd.session",
    "get_dataset_shard": "skate.sgd.session",
    "TrainContext": "skate.sgd.session",
    "ScalingConfig": "skate.sgd.config",
    "TrainingFailedError": "skate.sgd.trainer",
    "Checkpoint": "skate.tune.checkpoint",
    "RunConfig": "skate.tune.tuner",
    "CheckpointConfig": "skate.tune.tuner",
    "FailureConfig": "skate.tune.tuner",
    "Result": "skate.tune.result_grid",
}
_SUBMODULES = {"torch"}

__all__ = sorted(_LAZY) + sorted(_SUBMODULES)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"skate.train.{name}")
    else:
        raise AttributeError(f"module 'skate.train' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return __all__

"""skate.tune: resource-aware hyperparameter search with Ray Tune's API.

Each trial runs in an actor holding its resources; a controller asks a search
algorithm for configs and a scheduler for decisions; results, checkpoints
and TensorBoard logs go to the experiment folder, enough to resume a run
after a crash. See docs/tune.md.

>>> from skate import tune
>>> def trainable(config):
...     tune.report({"score": -(config["x"] - 3) ** 2})
>>> analysis = tune.run(trainable, config={"x": tune.grid_search([1, 3, 5])},
...                     metric="score", mode="max", verbose=0)
>>> analysis.best_config
{'x': 3}

Names load on first use, so ``import skate.tune`` stays cheap.
"""

import importlib

_LAZY = {
    "run": "skate.tune.tune",
    "Tuner": "skate.tune.tuner",
    "TuneConfig": "skate.tune.tuner",
    "RunConfig": "skate.tune.tuner",
    "CheckpointConfig": "skate.tune.tuner",
    "FailureConfig": "skate.tune.tuner",
    "report": "skate.tune.session",
    "get_checkpoint": "skate.tune.session",
    "get_context": "skate.tune.session",
    "get_trial_dir": "skate.tune.session",
    "TuneContext": "skate.tune.session",
    "Checkpoint": "skate.tune.checkpoint",
    "Trainable": "skate.tune.trainable",
    "with_parameters": "skate.tune.trainable_wrappers",
    "with_resources": "skate.tune.trainable_wrappers",
    "PlacementGroupFactory": "skate.tune.placement_group_factory",
    "register_trainable": "skate.tune.registry",
    "register_env": "skate.tune.registry",
    "get_trainable_cls": "skate.tune.registry",
    "Callback": "skate.tune.callback",
    "CLIReporter": "skate.tune.progress_reporter",
    "ProgressReporter": "skate.tune.progress_reporter",
    "ExperimentAnalysis": "skate.tune.analysis",
    "ResultGrid": "skate.tune.result_grid",
    "Result": "skate.tune.result_grid",
    "Stopper": "skate.tune.stopper",
    "TuneError": "skate.exceptions",
    "grid_search": "skate.tune.search.sample",
    "choice": "skate.tune.search.sample",
    "uniform": "skate.tune.search.sample",
    "quniform": "skate.tune.search.sample",
    "loguniform": "skate.tune.search.sample",
    "qloguniform": "skate.tune.search.sample",
    "randn": "skate.tune.search.sample",
    "qrandn": "skate.tune.search.sample",
    "randint": "skate.tune.search.sample",
    "qrandint": "skate.tune.search.sample",
    "lograndint": "skate.tune.search.sample",
    "qlograndint": "skate.tune.search.sample",
    "sample_from": "skate.tune.search.sample",
}
_SUBMODULES = {"schedulers", "search", "stopper", "logger", "callback"}

__all__ = sorted(_LAZY) + sorted(_SUBMODULES)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"skate.tune.{name}")
    else:
        raise AttributeError(f"module 'skate.tune' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return __all__

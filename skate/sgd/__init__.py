"""skate.sgd: data-parallel torch training on worker actors, Ray Train's API.

``TorchTrainer(loop, scaling_config=ScalingConfig(num_workers=N)).fit()`` runs
``loop(config)`` on N worker actors in one placement group, joined in one
``torch.distributed`` group (gloo on CPU, nccl on GPU). Inside the loop:
``train.get_context()``, ``train.torch.prepare_model`` /
``prepare_data_loader``, ``train.report(metrics, checkpoint=...)``,
``train.get_checkpoint()``, ``train.get_dataset_shard(name)``. A trainer is a
Tune trainable (``Tuner(trainer, param_space={"train_loop_config": ...})``).
``skate.train`` and ``skate.train.torch`` carry the same names, so Ray Train
scripts run after ``import skate as ray``. See docs/sgd.md.

Names load on first use: ``import skate.sgd`` does not import torch.

>>> from skate import sgd
>>> sgd.ScalingConfig(num_workers=2).total_resources
{'CPU': 2}
"""

import importlib

_LAZY = {
    "TorchTrainer": "skate.sgd.trainer",
    "TrainingFailedError": "skate.sgd.trainer",
    "ScalingConfig": "skate.sgd.config",
    "TorchConfig": "skate.sgd.config",
    "report": "skate.sgd.session",
    "get_checkpoint": "skate.sgd.session",
    "get_context": "skate.sgd.session",
    "get_dataset_shard": "skate.sgd.session",
    "TrainContext": "skate.sgd.session",
    "prepare_model": "skate.sgd.torch_utils",
    "prepare_data_loader": "skate.sgd.torch_utils",
    "get_device": "skate.sgd.torch_utils",
    "get_devices": "skate.sgd.torch_utils",
    "TrainingWorkerError": "skate.sgd.worker_group",
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
    raise AttributeError(f"module 'skate.sgd' has no attribute {name!r}")


def __dir__():
    return __all__

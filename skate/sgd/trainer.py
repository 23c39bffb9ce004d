"""TorchTrainer: Ray Train's front door -- ``TorchTrainer(loop, scaling_config=...).fit()``.

``fit()`` runs the trainer as a one-trial Tune experiment (see trainable.py),
so the run folder, results files, checkpoints kept by ``CheckpointConfig``,
restarts by ``FailureConfig`` and ``TorchTrainer.restore`` are Tune's. What
``fit()`` adds: requests that could never run are refused before any worker
starts (a GPU run on a cluster without GPUs, more workers than the cluster
holds, a loop that cannot be pickled), the datasets go into the object store
once, a line per report is printed, and the trial's outcome comes back as a
``Result`` whose ``error`` is a ``TrainingFailedError`` when the run failed
(raised instead with ``FailureConfig(fail_fast="raise")``).

>>> import skate
>>> from skate import train
>>> from skate.train.torch import TorchTrainer
>>> def loop(config):
...     for epoch in range(2):
...         train.report({"epoch": epoch, "rank": train.get_context().get_world_rank()})
>>> _ = skate.init(num_cpus=2)  # doctest: +SKIP
>>> result = TorchTrainer(loop, scaling_config=train.ScalingConfig(num_workers=2),
...                       run_config=train.RunConfig(verbose=0)).fit()  # doctest: +SKIP
>>> result.metrics["epoch"], result.metrics["rank"]  # doctest: +SKIP
(1, 0)
"""

from __future__ import annotations

import copy
import datetime
import os
import sys
import time

import skate
from skate.exceptions import TuneError
from skate.sgd.config import ScalingConfig, TorchConfig
from skate.tune.callback import Callback
from skate.tune.checkpoint import Checkpoint
from skate.tune.progress_reporter import HIDDEN_RESULT_KEYS
from skate.tune.tuner import FailureConfig, RunConfig, TuneConfig, Tuner

_TRAINER_FILE = "trainer.pkl"  # the trainer itself, in the run folder, for restore()


class TrainingFailedError(TuneError):
    """A training run failed (after its retries): ``Result.error``, or raised by ``fit()``
    with ``FailureConfig(fail_fast="raise")``."""


def _dataset_kind_ok(data) -> bool:
    if isinstance(data, list):
        return True
    try:
        import numpy as np

        if isinstance(data, np.ndarray):
            return True
    except ImportError:  # pragma: no cover
        pass
    return hasattr(data, "__getitem__") and hasattr(data, "__len__")


class TorchTrainer:
    """Data-parallel torch training: ``train_loop_per_worker`` on ``num_workers`` actors.

    Arguments as in Ray Train: ``train_loop_per_worker(config)`` (or with no
    argument), ``train_loop_config`` (passed to it), ``scaling_config``,
    ``run_config`` (name, storage_path, checkpoint_config, failure_config),
    ``datasets`` (name -> list / numpy array / torch Dataset, split by rank: see
    ``train.get_dataset_shard``), ``resume_from_checkpoint``, ``torch_config``,
    ``metadata`` (``train.get_context().get_metadata()``).
    """

    def __init__(self, train_loop_per_worker, *, train_loop_config: dict | None = None,
                 torch_config: TorchConfig | None = None,
                 scaling_config: ScalingConfig | None = None,
                 run_config: RunConfig | None = None, datasets: dict | None = None,
                 resume_from_checkpoint: Checkpoint | None = None,
                 metadata: dict | None = None):
        if not callable(train_loop_per_worker):
            raise TypeError(f"train_loop_per_worker must be a function, got "
                            f"{type(train_loop_per_worker).__name__}")
        for name, value, kind in (("train_loop_config", train_loop_config, dict),
                                  ("scaling_config", scaling_config, ScalingConfig),
                                  ("run_config", run_config, RunConfig),
                                  ("torch_config", torch_config, TorchConfig),
                                  ("datasets", datasets, dict),
                                  ("resume_from_checkpoint", resume_from_checkpoint, Checkpoint),
                                  ("metadata", metadata, dict)):
            if value is not None and not isinstance(value, kind):
                raise TypeError(f"TorchTrainer({name}=...) takes a {kind.__name__}, got "
                                f"{type(value).__name__}")
        for name, data in (datasets or {}).items():
            if not _dataset_kind_ok(data):
                raise TypeError(f"datasets[{name!r}] must be a list, a numpy array or a torch "
                                f"Dataset (indexable, with a length), got {type(data).__name__}")
        _check_picklable(train_loop_per_worker, train_loop_config)
        self.train_loop_per_worker = train_loop_per_worker
        self.train_loop_config = dict(train_loop_config or {})
        self.torch_config = torch_config or TorchConfig()
        self.scaling_config = scaling_config or ScalingConfig()
        self.run_config = run_config or RunConfig()
        self.datasets = dict(datasets or {})
        self.resume_from_checkpoint = resume_from_checkpoint
        self.metadata = dict(metadata or {})
        self._dataset_refs: dict = {}
        self._restore_path: str | None = None

    # -- Tune ----------------------------------------------------------------------------------
    def as_trainable(self) -> type:
        """This trainer as a Tune ``Trainable`` class (what ``Tuner(trainer)`` runs): the
        datasets go into the object store here, once, for every trial's workers."""
        from skate.sgd.trainable import TrainTrainable

        if self.datasets and not self._dataset_refs:
            self._dataset_refs = {k: skate.put(v) for k, v in self.datasets.items()}
        carried = copy.copy(self)
        carried.datasets = {}  # the refs travel, not the data
        return type("TorchTrainer", (TrainTrainable,), {"_trainer": carried,
                                                        "__module__": __name__})

    # -- running -------------------------------------------------------------------------------
    def fit(self):
        """Run the training; return its ``Result`` (``metrics``, ``checkpoint``,
        ``best_checkpoints``, ``path``, ``error``, ``metrics_dataframe``)."""
        from skate.tune.tune import default_storage_path

        if not skate.is_initialized():
            skate.init()
        check_feasible(self.scaling_config)
        rc = copy.copy(self.run_config)
        storage = os.path.expanduser(rc.storage_path or default_storage_path())
        rc.storage_path = storage
        rc.name = rc.name or f"TorchTrainer_{datetime.datetime.now():%Y-%m-%d_%H-%M-%S}"
        path = os.path.join(storage, rc.name)
        failure = rc.failure_config or FailureConfig()
        raise_on_error = failure.fail_fast == "raise"
        if raise_on_error:  # Tune stops at the first failure; fit() raises it below
            rc.failure_config = FailureConfig(max_failures=failure.max_failures, fail_fast=True)
        if rc.verbose:
            rc.callbacks = list(rc.callbacks or []) + [ReportLines(sys.stdout)]
            rc.verbose = 0  # the lines replace Tune's table
        if self._restore_path is not None:
            tuner = Tuner.restore(self._restore_path, trainable=self, resume_errored=True)
            tuner.run_config.callbacks, tuner.run_config.verbose = rc.callbacks, rc.verbose
        else:
            os.makedirs(path, exist_ok=True)
            self._save(path)
            tuner = Tuner(self, run_config=rc, tune_config=TuneConfig(num_samples=1))
        result = tuner.fit()[0]
        if result.error is not None:
            result.error = TrainingFailedError(str(result.error))
            if raise_on_error:
                raise result.error
        return result

    def _save(self, path: str) -> None:
        from skate import cloudpickle

        state = copy.copy(self)
        state.datasets, state._dataset_refs, state._restore_path = {}, {}, None
        state._dataset_names = sorted(self.datasets)
        with open(os.path.join(path, _TRAINER_FILE), "wb") as f:
            cloudpickle.dump(state, f)

    @classmethod
    def can_restore(cls, path) -> bool:
        """Whether ``path`` is a trainer's run folder that ``restore`` can continue."""
        path = os.path.expanduser(os.fspath(path))
        return os.path.exists(os.path.join(path, _TRAINER_FILE)) and Tuner.can_restore(path)

    @classmethod
    def restore(cls, path, train_loop_per_worker=None, train_loop_config: dict | None = None,
                datasets: dict | None = None, **_ignored) -> "TorchTrainer":
        """The trainer of the run in ``path`` (a run folder), to ``fit()`` again: it
        continues from the run's latest checkpoint. Datasets do not outlive a session:
        pass them again when the run had some."""
        import pickle

        path = os.path.expanduser(os.fspath(path))
        if not cls.can_restore(path):
            raise ValueError(f"{path!r} is not a TorchTrainer run folder (no {_TRAINER_FILE}); "
                             f"pass the folder of the run: storage_path/name")
        with open(os.path.join(path, _TRAINER_FILE), "rb") as f:
            trainer = pickle.load(f)
        missing = sorted(set(getattr(trainer, "_dataset_names", [])) - set(datasets or {}))
        if missing:
            raise ValueError(f"the run had datasets {missing}: pass them again, "
                             f"TorchTrainer.restore(path, datasets={{...}})")
        if train_loop_per_worker is not None:
            trainer.train_loop_per_worker = train_loop_per_worker
        if train_loop_config is not None:
            trainer.train_loop_config = dict(train_loop_config)
        trainer.datasets = dict(datasets or {})
        trainer._restore_path = path
        return trainer


def _check_picklable(fn, config) -> None:
    from skate import cloudpickle

    for what, value in (("train_loop_per_worker", fn), ("train_loop_config", config)):
        try:
            cloudpickle.dumps(value)
        except Exception as e:  # noqa: BLE001 - any pickling failure, named
            raise TypeError(f"{what} cannot be sent to the workers: it does not pickle "
                            f"({type(e).__name__}: {e}); create unpicklable things (locks, "
                            f"open files, clients) inside the loop instead") from None


def check_feasible(scaling: ScalingConfig) -> None:
    """ValueError, before anything starts, when the cluster could never hold the run."""
    total = {k: float(v) for k, v in skate.cluster_resources().items()}
    need = scaling.total_resources
    if need.get("GPU") and not total.get("GPU"):
        raise ValueError(f"use_gpu=True / a GPU per worker, but the cluster has no GPU "
                         f"(resources: {_fmt(total)})")
    short = {k: v for k, v in need.items() if v > total.get(k, 0.0) + 1e-9}
    if short:
        raise ValueError(f"{scaling.min_workers} workers x {_fmt(scaling.worker_resources)} "
                         f"(+ trainer {_fmt(scaling.trainer_resources or {})}) need "
                         f"{_fmt(need)}, more than the cluster has ({_fmt(total)}); use fewer "
                         f"workers or fewer resources per worker")
    if scaling.placement_strategy == "STRICT_PACK":
        best = max((n.get("Resources", {}) for n in skate.nodes() if n.get("Alive", True)),
                   key=lambda r: r.get("CPU", 0), default={})
        if any(v > float(best.get(k, 0)) + 1e-9 for k, v in need.items()):
            raise ValueError(f"placement_strategy='STRICT_PACK' needs {_fmt(need)} on one node; "
                             f"no node has that much")


def _fmt(resources: dict) -> str:
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(resources.items())) + "}"


class ReportLines(Callback):
    """One line per report of a training run: iteration, metrics, elapsed time."""

    _HIDDEN = HIDDEN_RESULT_KEYS | {"should_checkpoint"}

    def __init__(self, stream):
        self.stream = stream
        self.start = time.monotonic()

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        shown = " ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in result.items()
                         if k not in self._HIDDEN and not k.startswith("_")
                         and isinstance(v, (int, float, str)))
        self._write(f"[train] report {result.get('training_iteration', '?')}: {shown} "
                    f"({time.monotonic() - self.start:.1f} s)")

    def on_trial_restore(self, iteration, trials, trial, **info):
        where = os.path.basename(trial.restore_path) if trial.restore_path else "the start"
        self._write(f"[train] restarted ({trial.num_failures} failure(s) so far) "
                    f"from {where}")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._write(f"[train] failed after {trial.num_failures} failure(s): see "
                    f"{trial.error_file}")

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._write(f"[train] finished: {trial.local_path} "
                    f"({time.monotonic() - self.start:.1f} s)")

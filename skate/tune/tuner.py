"""``Tuner``: the Ray 2.x front door —
``Tuner(trainable, param_space, tune_config, run_config).fit()``.

A Tuner is ``tune.run`` with its arguments grouped into configs, returning a
``ResultGrid`` instead of raising on failed trials. ``Tuner.restore(path,
trainable)`` continues an interrupted (or killed) experiment from its folder.

>>> from skate import tune
>>> def f(config):
...     tune.report({"loss": abs(config["x"])})
>>> tuner = tune.Tuner(f, param_space={"x": tune.grid_search([-2, 1, 3])},
...                    tune_config=tune.TuneConfig(metric="loss", mode="min"),
...                    run_config=tune.RunConfig(verbose=0))
>>> tuner.fit().get_best_result().config
{'x': 1}
"""

from __future__ import annotations

import dataclasses
import os

from skate.tune import experiment_state


@dataclasses.dataclass
class TuneConfig:
    """How to search: metric/mode, samples, search algorithm, scheduler, concurrency."""

    metric: str | None = None
    mode: str | None = None
    search_alg: object = None
    scheduler: object = None
    num_samples: int = 1
    max_concurrent_trials: int | None = None
    time_budget_s: float | None = None
    reuse_actors: bool | None = None
    trial_name_creator: object = None
    trial_dirname_creator: object = None


@dataclasses.dataclass
class CheckpointConfig:
    """Which checkpoints to keep and when to take them (class trainables)."""

    num_to_keep: int | None = None
    checkpoint_score_attribute: str | None = None
    checkpoint_score_order: str = "max"
    checkpoint_frequency: int = 0
    checkpoint_at_end: bool | None = None

    def __post_init__(self):
        if self.num_to_keep is not None and self.num_to_keep < 1:
            raise ValueError(f"num_to_keep must be None or >= 1, got {self.num_to_keep}.")
        if self.checkpoint_score_order not in ("min", "max"):
            raise ValueError(f"checkpoint_score_order must be 'min' or 'max', got "
                             f"{self.checkpoint_score_order!r}.")


@dataclasses.dataclass
class FailureConfig:
    """How often a failing trial is retried from its last checkpoint (-1: forever)."""

    max_failures: int = 0
    fail_fast: bool = False


@dataclasses.dataclass
class RunConfig:
    """Where results go and how the run behaves."""

    name: str | None = None
    storage_path: str | None = None
    stop: object = None
    checkpoint_config: CheckpointConfig | None = None
    failure_config: FailureConfig | None = None
    callbacks: list | None = None
    verbose: int = 1
    progress_reporter: object = None


class Tuner:
    """Configure an experiment; ``fit()`` runs it and returns a ``ResultGrid``."""

    _FILE = experiment_state.TUNER_FILE

    def __init__(self, trainable=None, *, param_space: dict | None = None,
                 tune_config: TuneConfig | None = None, run_config: RunConfig | None = None,
                 _resume=False, _resume_unfinished: bool = True):
        if trainable is None:
            raise ValueError("Tuner needs a trainable: a function, a tune.Trainable subclass or "
                             "a registered name.")
        self.trainable = trainable
        if hasattr(param_space, "to_dict") and not isinstance(param_space, dict):
            param_space = param_space.to_dict()  # an rllib AlgorithmConfig, say
        self.param_space = param_space or {}
        self.tune_config = tune_config or TuneConfig()
        self.run_config = run_config or RunConfig()
        self._resume = _resume
        self._resume_unfinished = _resume_unfinished
        if not isinstance(self.param_space, dict):
            raise TypeError(f"param_space must be a dict, got {type(param_space).__name__}.")

    def fit(self):
        """Run every trial; never raises for failed trials (see ``ResultGrid.errors``)."""
        import datetime

        from skate.tune.registry import resolve
        from skate.tune.result_grid import ResultGrid
        from skate.tune.tune import _safe, default_storage_path, run

        tc, rc = self.tune_config, self.run_config
        storage = os.path.expanduser(rc.storage_path or default_storage_path())
        if rc.name is None:
            _, trainable_name = resolve(self.trainable)
            rc.name = f"{_safe(trainable_name)}_{datetime.datetime.now():%Y-%m-%d_%H-%M-%S}"
        experiment_dir = os.path.join(storage, rc.name)
        if not self._resume:
            os.makedirs(experiment_dir, exist_ok=True)
            experiment_state.save_pickle(experiment_dir, self._FILE, {
                "param_space": self.param_space, "tune_config": tc, "run_config": rc})
        failure = rc.failure_config or FailureConfig()
        analysis = run(
            self.trainable, name=rc.name, storage_path=storage, metric=tc.metric, mode=tc.mode,
            config=self.param_space, num_samples=tc.num_samples, search_alg=tc.search_alg,
            scheduler=tc.scheduler, max_concurrent_trials=tc.max_concurrent_trials,
            time_budget_s=tc.time_budget_s, reuse_actors=tc.reuse_actors,
            trial_name_creator=tc.trial_name_creator,
            trial_dirname_creator=tc.trial_dirname_creator, stop=rc.stop,
            checkpoint_config=rc.checkpoint_config, max_failures=failure.max_failures,
            fail_fast=failure.fail_fast, _resume_unfinished=self._resume_unfinished,
            callbacks=rc.callbacks, verbose=rc.verbose, progress_reporter=rc.progress_reporter,
            resume=self._resume, raise_on_failed_trial=False)
        self._results = ResultGrid(analysis)
        return self._results

    def get_results(self):
        """The ResultGrid of the last ``fit()``, or of the restored experiment as it stands."""
        if getattr(self, "_results", None) is not None:
            return self._results
        from skate.tune.analysis import ExperimentAnalysis
        from skate.tune.result_grid import ResultGrid
        from skate.tune.tune import default_storage_path

        rc = self.run_config
        if rc.name is None:
            raise RuntimeError("No results yet: call fit() first.")
        path = os.path.join(os.path.expanduser(rc.storage_path or default_storage_path()),
                            rc.name)
        return ResultGrid(ExperimentAnalysis(path, default_metric=self.tune_config.metric,
                                             default_mode=self.tune_config.mode))

    @classmethod
    def restore(cls, path: str, trainable=None, *, param_space: dict | None = None,
                resume_unfinished: bool = True, resume_errored: bool = False,
                restart_errored: bool = False) -> "Tuner":
        """A Tuner that continues the experiment in ``path`` when ``fit()`` is called."""
        path = os.path.expanduser(os.fspath(path))
        saved = experiment_state.load_pickle(path, cls._FILE)
        if saved is None or not experiment_state.exists(path):
            raise ValueError(f"{path!r} is not a Tuner experiment folder (no {cls._FILE} / "
                             f"{experiment_state.STATE_FILE}). Pass the folder of the run: "
                             f"storage_path/name.")
        if trainable is None:
            raise ValueError("Tuner.restore needs the trainable again: "
                             "Tuner.restore(path, trainable=...).")
        rc = saved["run_config"]
        rc.storage_path, rc.name = os.path.dirname(path.rstrip("/")), os.path.basename(
            path.rstrip("/"))
        resume = "AUTO"
        if restart_errored:
            resume = "AUTO+RESTART_ERRORED"
        elif resume_errored:
            resume = "AUTO+ERRORED"
        return cls(trainable, param_space=param_space or saved["param_space"],
                   tune_config=saved["tune_config"], run_config=rc, _resume=resume,
                   _resume_unfinished=resume_unfinished)

    @classmethod
    def can_restore(cls, path: str) -> bool:
        return experiment_state.exists(os.path.expanduser(os.fspath(path)))

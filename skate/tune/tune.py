"""``tune.run``: the classic front door, as in Ray Tune.

It validates everything it can before a trial starts (mode, metric, resource
requests, resume folder), builds the searcher, scheduler and stopper, and hands
them to the controller and runner.

>>> from skate import tune
>>> def trainable(config):
...     for step in range(5):
...         tune.report({"loss": (config["lr"] - 0.1) ** 2 + 1 / (step + 1)})
>>> analysis = tune.run(trainable, config={"lr": tune.grid_search([0.01, 0.1, 1.0])},
...                     metric="loss", mode="min", verbose=0)
>>> analysis.best_config
{'lr': 0.1}
"""

from __future__ import annotations

import datetime
import os
import re
import secrets

import skate
from skate.exceptions import TuneError
from skate.tune import experiment_state
from skate.tune.analysis import ExperimentAnalysis
from skate.tune.controller import Controller, Settings
from skate.tune.function_trainable import FunctionTrainable
from skate.tune.logger import default_loggers
from skate.tune.registry import resolve
from skate.tune.runner import Runner
from skate.tune.schedulers.trial_scheduler import FIFOScheduler
from skate.tune.search.basic_variant import BasicVariantGenerator
from skate.tune.search.searcher import validate_mode
from skate.tune.search.variant_generator import has_unresolved_values
from skate.tune.stopper import CombinedStopper, TimeoutStopper, make_stopper
from skate.tune.trainable import Trainable
from skate.tune.trainable_wrappers import trial_resources
from skate.tune.trial import Trial

_RESUME = (True, False, None, "AUTO", "LOCAL", "ERRORED_ONLY", "AUTO+ERRORED",
           "LOCAL+ERRORED", "AUTO+RESTART_ERRORED", "LOCAL+RESTART_ERRORED")


def default_storage_path() -> str:
    """``$SKATE_RESULTS_DIR``, else ``~/skate_results``."""
    return os.environ.get("SKATE_RESULTS_DIR") or os.path.expanduser("~/skate_results")


def run(run_or_experiment, *, name: str | None = None, metric: str | None = None,
        mode: str | None = None, stop=None, time_budget_s=None, config: dict | None = None,
        resources_per_trial=None, num_samples: int = 1, storage_path: str | None = None,
        local_dir: str | None = None, search_alg=None, scheduler=None, checkpoint_freq: int = 0,
        checkpoint_at_end: bool | None = False, keep_checkpoints_num: int | None = None,
        checkpoint_score_attr: str | None = None, checkpoint_config=None, verbose: int = 2,
        progress_reporter=None, max_failures: int = 0, resume=False, reuse_actors=None,
        raise_on_failed_trial: bool = True, callbacks: list | None = None,
        max_concurrent_trials: int | None = None, fail_fast: bool = False,
        trial_name_creator=None, trial_dirname_creator=None,
        _resume_unfinished: bool = True) -> ExperimentAnalysis:
    """Run a hyperparameter search and return an :class:`ExperimentAnalysis`.

    ``run_or_experiment`` is a function calling ``tune.report``, a
    ``tune.Trainable`` subclass or a registered name. See docs/tune.md for
    every argument; they mean what they mean in Ray Tune.

    >>> from skate import tune
    >>> tune.run(lambda config: tune.report({"x": config["a"]}),
    ...          config={"a": tune.choice([1])}, verbose=0).trials[0].last_result["x"]
    1
    """
    _validate(metric, mode, num_samples, max_failures, max_concurrent_trials, resume)
    if hasattr(config, "to_dict") and not isinstance(config, dict):
        config = config.to_dict()  # an rllib AlgorithmConfig, say
    if checkpoint_config is not None:
        keep_checkpoints_num = checkpoint_config.num_to_keep
        attr = checkpoint_config.checkpoint_score_attribute
        if attr and checkpoint_config.checkpoint_score_order == "min":
            attr = f"min-{attr}"
        checkpoint_score_attr = attr
        checkpoint_freq = checkpoint_config.checkpoint_frequency
        checkpoint_at_end = checkpoint_config.checkpoint_at_end
    cls, trainable_name = resolve(run_or_experiment)
    is_function = issubclass(cls, FunctionTrainable)
    if checkpoint_at_end is None:  # as Ray: on for class trainables that can save
        checkpoint_at_end = not is_function and \
            cls.save_checkpoint is not Trainable.save_checkpoint
    if (checkpoint_freq or checkpoint_at_end) and is_function:
        raise ValueError("checkpoint_freq / checkpoint_at_end apply to class trainables; a "
                         "function trainable checkpoints by passing checkpoint= to "
                         "tune.report.")
    if fail_fast not in (False, True, "raise"):
        raise ValueError(f"fail_fast must be True, False or 'raise', got {fail_fast!r}.")
    storage = os.path.expanduser(storage_path or local_dir or default_storage_path())
    if resume and not name:
        raise ValueError("resume needs the experiment's name= (the folder under storage_path).")
    name = name or f"{_safe(trainable_name)}_{datetime.datetime.now():%Y-%m-%d_%H-%M-%S}"
    experiment_dir = os.path.join(storage, name)
    resuming = _should_resume(resume, experiment_dir)
    if not skate.is_initialized():
        skate.init()

    if resuming:
        trials, state = experiment_state.load_state(experiment_dir)
        _prepare_for_resume(trials, str(resume), _resume_unfinished)
        searcher = experiment_state.load_pickle(experiment_dir, experiment_state.SEARCHER_FILE)
        scheduler = experiment_state.load_pickle(experiment_dir,
                                                 experiment_state.SCHEDULER_FILE)
        id_prefix, searcher_finished = state["id_prefix"], state["searcher_finished"]
        journal_seq = state["journal_seq"]
    else:
        os.makedirs(experiment_dir, exist_ok=True)
        trials, id_prefix, searcher_finished = [], secrets.token_hex(3)[:5], False
        journal_seq = 0
        searcher = search_alg if search_alg is not None else BasicVariantGenerator()
        scheduler = scheduler if scheduler is not None else FIFOScheduler()
        accepted = searcher.set_search_properties(metric, mode, config or {},
                                                  num_samples=num_samples)
        if not accepted and has_unresolved_values(config or {}):
            raise ValueError(f"{type(searcher).__name__} already has its own search space, "
                             f"and tune.run's config holds search domains too; define the "
                             f"space in one place only (the searcher or config).")
        if not scheduler.set_search_properties(metric, mode):
            raise ValueError(f"{type(scheduler).__name__} was built with a metric/mode that "
                             f"conflicts with tune.run's metric={metric!r} mode={mode!r}.")

    stopper = make_stopper(stop)
    if time_budget_s is not None:
        seconds = time_budget_s.total_seconds() if hasattr(time_budget_s, "total_seconds") \
            else time_budget_s
        stopper = CombinedStopper(stopper, TimeoutStopper(seconds))
    inner = getattr(searcher, "searcher", searcher)
    settings = Settings(
        metric=metric, mode=mode, num_samples=num_samples, max_failures=max_failures,
        max_concurrent_trials=max_concurrent_trials or 0, checkpoint_freq=checkpoint_freq,
        checkpoint_at_end=checkpoint_at_end, keep_checkpoints_num=keep_checkpoints_num,
        checkpoint_score_attr=checkpoint_score_attr, fail_fast=fail_fast,
        searcher_counts_samples=not isinstance(inner, BasicVariantGenerator),
        max_pending_trials=_max_pending(searcher, inner))

    def make_trial(trial_id: str, index: int, trial_config: dict) -> Trial:
        resources, bundles, strategy = trial_resources(cls, trial_config, resources_per_trial)
        evaluated = _evaluated_params(config or {}, trial_config)
        tag = f"{index}_{_format(evaluated)}" if evaluated else str(index)
        trial = Trial(trial_id, trial_config, experiment_tag=tag, evaluated_params=evaluated,
                      resources=resources, bundles=bundles, strategy=strategy,
                      trainable_name=trainable_name)
        if trial_name_creator is not None:
            trial.custom_name = str(trial_name_creator(trial))
        dirname = (trial_dirname_creator(trial) if trial_dirname_creator
                   else f"{_safe(trainable_name)}_{trial_id}_{_safe(tag)}"[:120])
        trial.local_path = os.path.join(experiment_dir, dirname)
        return trial

    controller = Controller(settings, searcher, scheduler, stopper, make_trial, id_prefix,
                            trials=trials, searcher_finished=searcher_finished)
    if reuse_actors is None:
        reuse_actors = issubclass(cls, FunctionTrainable) or \
            cls.reset_config is not Trainable.reset_config
    reporter = progress_reporter
    if reporter is None and verbose:
        from skate.tune.progress_reporter import CLIReporter

        reporter = CLIReporter(metric=metric, mode=mode, verbose=verbose)
    if reporter is not None and hasattr(reporter, "setup"):
        reporter.setup(metric=metric, mode=mode, total_samples=num_samples)
    user_callbacks = list(callbacks or [])
    for cb in user_callbacks:
        cb.setup(stop=stop, num_samples=num_samples, total_num_samples=num_samples)
    runner = Runner(controller, cls, experiment_dir, name, default_loggers(), user_callbacks,
                    reporter, reuse_actors, state_extra={"metric": metric, "mode": mode},
                    journal_seq=journal_seq)
    runner.run()

    analysis = ExperimentAnalysis(experiment_dir, trials=controller.trials,
                                  default_metric=metric, default_mode=mode)
    failed = [t for t in controller.trials if t.status == Trial.ERROR]
    if failed and fail_fast == "raise":
        raise TuneError(f"Trial {failed[0]} failed and fail_fast='raise' ended the "
                        f"experiment:\n{failed[0].error_msg}")
    if failed and raise_on_failed_trial and not runner.interrupted:
        raise TuneError(f"Trials did not complete: {failed}. Their tracebacks are in "
                        + ", ".join(str(t.error_file) for t in failed) + ".")
    return analysis


def _max_pending(searcher, inner) -> int:
    """Trials suggested ahead of resources (Ray: TUNE_MAX_PENDING_TRIALS_PG's default)."""
    if searcher is not inner or not isinstance(inner, BasicVariantGenerator):
        return 1
    cpus = skate.cluster_resources().get("CPU", 1)
    return max(16, int(cpus * 1.1))


def _validate(metric, mode, num_samples, max_failures, max_concurrent_trials, resume):
    validate_mode(mode)
    if metric is not None and not isinstance(metric, str):
        raise ValueError(f"metric must be the name (str) of a reported metric, got {metric!r}.")
    if (metric is None) != (mode is None):
        raise ValueError("Pass metric= and mode= together (mode='min' or 'max'), or neither.")
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        if num_samples != -1:
            raise ValueError(f"num_samples must be a positive int, got {num_samples!r}.")
    if not isinstance(max_failures, int) or max_failures < -1:
        raise ValueError(f"max_failures must be an int >= -1 (-1: retry forever), got "
                         f"{max_failures!r}.")
    if max_concurrent_trials is not None and (not isinstance(max_concurrent_trials, int)
                                              or max_concurrent_trials < 0):
        raise ValueError(f"max_concurrent_trials must be an int >= 0, got "
                         f"{max_concurrent_trials!r}.")
    if resume not in _RESUME:
        raise ValueError(f"resume must be one of {_RESUME}, got {resume!r}.")


def _should_resume(resume, experiment_dir: str) -> bool:
    if not resume:
        return False
    if experiment_state.exists(experiment_dir):
        return True
    if resume is True or str(resume).startswith("LOCAL") or resume == "ERRORED_ONLY":
        raise ValueError(f"resume={resume!r}, but {experiment_dir!r} holds no experiment "
                         f"state. Check storage_path and name, or use resume='AUTO'.")
    return False  # AUTO: nothing to resume, start fresh


def _prepare_for_resume(trials: list, resume: str, unfinished: bool = True) -> None:
    """Unfinished trials go back to PENDING at their latest checkpoint (or end, when
    ``unfinished`` is False)."""
    for trial in trials:
        if trial.status in (Trial.RUNNING, Trial.PENDING, Trial.PAUSED) and not unfinished:
            trial.status = Trial.TERMINATED
        elif trial.status in (Trial.RUNNING, Trial.PENDING, Trial.PAUSED):
            trial.status = Trial.PENDING
            checkpoint = trial.checkpoint
            trial.restore_path = checkpoint.path if checkpoint else None
        elif trial.status == Trial.ERROR and "ERRORED" in resume:
            trial.status = Trial.PENDING
            trial.num_failures = 0
            restart = "RESTART" in resume
            checkpoint = None if restart else trial.checkpoint
            trial.restore_path = checkpoint.path if checkpoint else None


def _evaluated_params(space: dict, config: dict) -> dict:
    """Flattened config entries that were searched (not constants of the space)."""
    from skate.tune.search.variant_generator import flatten_dict

    constants = {k: v for k, v in flatten_dict(space, delimiter="/").items()
                 if _is_constant(v)}
    flat = flatten_dict(config, delimiter="/")
    return {k: v for k, v in flat.items() if k not in constants or constants[k] != v}


def _is_constant(value) -> bool:
    from skate.tune.search.sample import Domain

    return not isinstance(value, Domain) and not (isinstance(value, dict)
                                                  and "grid_search" in value)


def _format(evaluated: dict) -> str:
    parts = []
    for key, value in evaluated.items():
        short = key.split("/")[-1]
        if isinstance(value, float):
            value = f"{value:.4f}"
        parts.append(f"{short}={value}")
    return ",".join(parts)


def _safe(text: str) -> str:
    return re.sub(r"[^\w.,=+-]+", "_", str(text))

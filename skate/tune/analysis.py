"""ExperimentAnalysis: what ``tune.run`` returns — the trials and the best of them.

Built from the trials of a finished run, or from an experiment folder on
disk (``ExperimentAnalysis("~/skate_results/my_exp")``), so results can be
read long after the driver exited.

>>> from skate import tune
>>> def f(config):
...     tune.report({"loss": (config["x"] - 2) ** 2})
>>> analysis = tune.run(f, config={"x": tune.grid_search([1, 2, 3])},
...                     metric="loss", mode="min", verbose=0)
>>> analysis.best_config, len(analysis.results_df)
({'x': 2}, 3)
"""

from __future__ import annotations

import json
import math
import os

from skate.tune import experiment_state
from skate.tune.checkpoint import Checkpoint
from skate.tune.logger import EXPR_PROGRESS_FILE, EXPR_RESULT_FILE
from skate.tune.search.searcher import validate_mode
from skate.tune.trial import Trial

_SCOPES = ("last", "avg", "max", "min", "all", "last-5-avg", "last-10-avg")


def _pandas():
    try:
        import pandas
    except ImportError:
        raise ImportError("DataFrames of results need pandas: pip install 'skate[tune]' "
                          "(or pip install pandas).") from None
    return pandas


class ExperimentAnalysis:
    """The trials of an experiment, with helpers to find the best one."""

    def __init__(self, experiment_checkpoint_path=None, *, trials: list | None = None,
                 default_metric: str | None = None, default_mode: str | None = None):
        if trials is None:
            if experiment_checkpoint_path is None:
                raise ValueError("ExperimentAnalysis needs an experiment folder or trials.")
            path = os.path.expanduser(os.fspath(experiment_checkpoint_path))
            trials, state = experiment_state.load_state(path)
            default_metric = default_metric or state.get("metric")
            default_mode = default_mode or state.get("mode")
        self.experiment_path = experiment_checkpoint_path and os.fspath(experiment_checkpoint_path)
        self.trials: list[Trial] = trials
        self.default_metric = default_metric
        self.default_mode = default_mode
        if default_mode is not None:
            validate_mode(default_mode)

    # ---- best trial ---------------------------------------------------------------------------

    def _metric_mode(self, metric, mode):
        metric = metric or self.default_metric
        mode = mode or self.default_mode
        if metric is None or mode is None:
            raise ValueError("No metric/mode to rank trials by: pass metric= and mode= here, "
                             "or to tune.run / TuneConfig.")
        validate_mode(mode)
        return metric, mode

    def _score(self, trial: Trial, metric: str, mode: str, scope: str):
        if scope not in _SCOPES:
            raise ValueError(f"scope must be one of {_SCOPES}, got {scope!r}.")
        stats = trial.metric_analysis.get(metric)
        if stats is None:
            return None
        if scope == "all":
            return stats[mode]
        if scope in ("last", "avg", "max", "min"):
            return stats[scope]
        n = int(scope.split("-")[1])
        values = [r[metric] for r in self._results(trial) if metric in r][-n:]
        return sum(values) / len(values) if values else None

    def get_best_trial(self, metric=None, mode=None, scope="last",
                       filter_nan_and_inf=True) -> Trial | None:
        """The trial whose ``metric`` (at ``scope``) is best; None when none reported it."""
        metric, mode = self._metric_mode(metric, mode)
        best, best_score = None, None
        for trial in self.trials:
            score = self._score(trial, metric, mode, scope)
            if score is None or (filter_nan_and_inf and not math.isfinite(score)):
                continue
            if best is None or (score > best_score if mode == "max" else score < best_score):
                best, best_score = trial, score
        return best

    def get_best_config(self, metric=None, mode=None, scope="last"):
        trial = self.get_best_trial(metric, mode, scope)
        return trial.config if trial else None

    def get_best_checkpoint(self, trial: Trial, metric=None, mode=None) -> Checkpoint | None:
        """The trial's checkpoint whose recorded ``metric`` is best."""
        metric, mode = self._metric_mode(metric, mode)
        scored = [(r.get(metric), p) for p, r in trial.checkpoints if r.get(metric) is not None]
        if not scored:
            return trial.checkpoint
        pick = max if mode == "max" else min
        return Checkpoint(pick(scored, key=lambda s: s[0])[1])

    @property
    def best_trial(self) -> Trial | None:
        return self.get_best_trial()

    @property
    def best_config(self):
        return self.get_best_config()

    @property
    def best_result(self) -> dict | None:
        trial = self.best_trial
        return trial.last_result if trial else None

    @property
    def best_checkpoint(self) -> Checkpoint | None:
        trial = self.best_trial
        return self.get_best_checkpoint(trial) if trial else None

    @property
    def best_path(self) -> str | None:
        trial = self.best_trial
        return trial.local_path if trial else None

    best_logdir = best_path

    @property
    def best_result_df(self):
        return _pandas().DataFrame([self.best_result]) if self.best_result else None

    # ---- tables -------------------------------------------------------------------------------

    @property
    def results(self) -> dict:
        return {t.trial_id: t.last_result for t in self.trials}

    def get_all_configs(self, prefix: bool = False) -> dict:
        return {t.local_path: t.config for t in self.trials}

    @property
    def results_df(self):
        """One row per trial: its last result, config flattened as ``config/<key>``."""
        from skate.tune.search.variant_generator import flatten_dict

        rows = [flatten_dict({**t.last_result, "config": t.config, "logdir": t.local_path},
                             delimiter="/") for t in self.trials]
        df = _pandas().DataFrame(rows, index=[t.trial_id for t in self.trials])
        df.index.name = "trial_id"
        return df

    def dataframe(self, metric=None, mode=None):
        """One row per trial: the last result, or the best by ``metric``/``mode`` if given."""
        from skate.tune.search.variant_generator import flatten_dict

        if mode is not None:
            validate_mode(mode)
        rows = []
        for trial in self.trials:
            row = trial.last_result
            if metric and mode:
                history = [r for r in self._results(trial) if metric in r]
                if history:
                    pick = max if mode == "max" else min
                    row = pick(history, key=lambda r: r[metric])
            rows.append(flatten_dict({**row, "config": trial.config, "logdir": trial.local_path},
                                     delimiter="/"))
        return _pandas().DataFrame(rows)

    @property
    def trial_dataframes(self) -> dict:
        """Trial folder → DataFrame of every result it reported (from progress.csv)."""
        pd = _pandas()
        frames = {}
        for trial in self.trials:
            path = os.path.join(trial.local_path, EXPR_PROGRESS_FILE)
            frames[trial.local_path] = (pd.read_csv(path) if os.path.exists(path)
                                        else pd.DataFrame())
        return frames

    def _results(self, trial: Trial) -> list:
        path = os.path.join(trial.local_path, EXPR_RESULT_FILE)
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def get_trial_checkpoints_paths(self, trial: Trial, metric=None) -> list:
        metric = metric or self.default_metric
        return [(p, r.get(metric)) for p, r in trial.checkpoints]

    def __repr__(self):
        return f"ExperimentAnalysis({len(self.trials)} trials, {self.experiment_path!r})"

"""Result and ResultGrid: what ``Tuner.fit()`` returns.

>>> from skate import tune
>>> def f(config):
...     tune.report({"score": config["x"]})
>>> grid = tune.Tuner(f, param_space={"x": tune.grid_search([1, 5, 3])},
...                   tune_config=tune.TuneConfig(metric="score", mode="max"),
...                   run_config=tune.RunConfig(verbose=0)).fit()
>>> len(grid), grid.get_best_result().config, grid.num_errors
(3, {'x': 5}, 0)
"""

from __future__ import annotations

import dataclasses
import os

from skate.exceptions import TuneError
from skate.tune.analysis import ExperimentAnalysis
from skate.tune.checkpoint import Checkpoint
from skate.tune.logger import EXPR_PROGRESS_FILE
from skate.tune.trial import Trial


@dataclasses.dataclass
class Result:
    """One trial's outcome: final metrics, config, latest checkpoint, error if it failed."""

    metrics: dict
    config: dict
    checkpoint: Checkpoint | None
    error: Exception | None
    path: str
    best_checkpoints: list  # [(Checkpoint, metrics at save)]

    @property
    def metrics_dataframe(self):
        from skate.tune.analysis import _pandas

        csv = os.path.join(self.path, EXPR_PROGRESS_FILE)
        pd = _pandas()
        return pd.read_csv(csv) if os.path.exists(csv) else pd.DataFrame()

    @classmethod
    def from_trial(cls, trial: Trial) -> "Result":
        error = None
        if trial.status == Trial.ERROR:
            error = TuneError(f"Trial {trial} failed: {trial.error_msg}")
        return cls(metrics={**trial.last_result, "config": trial.config}, config=trial.config,
                   checkpoint=trial.checkpoint, error=error, path=trial.local_path,
                   best_checkpoints=[(Checkpoint(p), r) for p, r in trial.checkpoints])


class ResultGrid:
    """The results of every trial of an experiment, indexable and rankable."""

    def __init__(self, analysis: ExperimentAnalysis):
        self._analysis = analysis
        self._results = [Result.from_trial(t) for t in analysis.trials]

    @property
    def experiment_path(self) -> str | None:
        return self._analysis.experiment_path

    def __len__(self):
        return len(self._results)

    def __getitem__(self, i) -> Result:
        return self._results[i]

    def __iter__(self):
        return iter(self._results)

    def get_best_result(self, metric=None, mode=None, scope="last",
                        filter_nan_and_inf=True) -> Result:
        """The best trial's Result by ``metric``/``mode`` (defaults from TuneConfig)."""
        trial = self._analysis.get_best_trial(metric, mode, scope, filter_nan_and_inf)
        if trial is None:
            raise RuntimeError("No trial reported a finite value of the metric; nothing to "
                               "rank. Check the trials' errors (ResultGrid.errors).")
        return self._results[self._analysis.trials.index(trial)]

    def get_dataframe(self, filter_metric=None, filter_mode=None):
        return self._analysis.dataframe(filter_metric, filter_mode)

    @property
    def errors(self) -> list:
        return [r.error for r in self._results if r.error is not None]

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    @property
    def num_terminated(self) -> int:
        return sum(1 for t in self._analysis.trials if t.status == Trial.TERMINATED)

    def __repr__(self):
        return f"ResultGrid<{len(self)} results, {self.num_errors} errors>"

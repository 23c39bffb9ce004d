"""The median stopping rule of Google Vizier (Golovin et al. 2017), as Ray runs it.

At progress ``t`` (past ``grace_period``), a trial stops if its *best* score so
far is strictly worse than the median, over the other trials that have
reached ``t``, of their *running average* score between ``grace_period`` and
``t``. Comparing one trial's best with others' averages makes the rule
forgiving: a trial stops only when even its best is below what typical
trials average.

While fewer than ``min_samples_required`` other trials have reached ``t``
there is nothing to compare with; if other trials are waiting to run, the
trial then yields (PAUSE) so that they catch up, at most once every
``min_time_slice``.
"""

from __future__ import annotations

import logging
import math
import statistics

from skate.tune.schedulers.trial_scheduler import PAUSED, PENDING, Decision, TrialScheduler

logger = logging.getLogger(__name__)


class MedianStoppingRule(TrialScheduler):
    """Stop a trial whose best result is worse than the median of the others' averages.

    Args:
        time_attr: the result key that measures progress; must grow monotonically.
        metric: the result key to compare trials by.
        mode: "min" or "max": whether a smaller or larger metric is better.
        grace_period: no trial stops before this much progress; averages start here.
        min_samples_required: how many other trials must have reached ``t`` to judge.
        min_time_slice: a trial that cannot be judged yet yields to waiting trials at
            most once every this much progress.
        hard_stop: STOP bad trials; if False, PAUSE them (they resume, unjudged, once
            nothing else waits to run).

    >>> from types import SimpleNamespace as T
    >>> rule = MedianStoppingRule(time_attr="training_iteration", metric="loss", mode="min",
    ...                           grace_period=1, min_samples_required=2)
    >>> trials = [T(trial_id=str(i), status="RUNNING") for i in range(3)]
    >>> for t in trials:
    ...     rule.on_trial_add(t)
    >>> rule.on_trial_result(trials[0], {"training_iteration": 1, "loss": 1.0})
    'CONTINUE'
    >>> rule.on_trial_result(trials[1], {"training_iteration": 1, "loss": 1.2})
    'CONTINUE'
    >>> rule.on_trial_result(trials[2], {"training_iteration": 1, "loss": 9.0})
    'STOP'
    """

    _requires_metric = True
    _transient = ("_trials",)

    def __init__(self, time_attr: str = "time_total_s", metric: str | None = None,
                 mode: str | None = None, grace_period: float = 60.0,
                 min_samples_required: int = 3, min_time_slice: float = 0,
                 hard_stop: bool = True):
        super().__init__(metric, mode)
        if grace_period < 0:
            raise ValueError(f"grace_period must be >= 0, got {grace_period!r}.")
        if min_samples_required < 1:
            raise ValueError(
                f"min_samples_required must be at least 1, got {min_samples_required!r}.")
        self._time_attr = time_attr
        self._grace_period = grace_period
        self._min_samples_required = min_samples_required
        self._min_time_slice = min_time_slice
        self._hard_stop = hard_stop
        # trial_id -> [(time, value), ...] of every result with both keys, oldest first
        self._results: dict[str, list[tuple[float, float]]] = {}
        self._stopped: set[str] = set()  # judged bad; with hard_stop=False they then run FIFO
        self._last_pause: dict[str, float] = {}  # trial_id -> time it last yielded
        self._trials: dict = {}  # trial_id -> the controller's live trial object (transient)

    def on_trial_add(self, trial) -> None:
        self._check_metric()
        self._trials[trial.trial_id] = trial

    def on_trial_result(self, trial, result: dict) -> Decision:
        self._check_metric()
        trial_id = trial.trial_id
        self._trials[trial_id] = trial
        t = self._require(result, self._time_attr, "time_attr")
        value = self._require(result, self._metric, "metric")
        if trial_id in self._stopped:
            return self.CONTINUE  # judged already (hard_stop=False): runs FIFO now
        self._results.setdefault(trial_id, []).append((t, float(value)))
        if t < self._grace_period:
            return self.CONTINUE
        averages = [a for a in (self._running_mean(other, t) for other in self._beyond(t)
                                if other != trial_id) if a is not None]
        if len(averages) < self._min_samples_required:
            return self._yield_if_others_wait(trial_id, t)
        median = statistics.median(averages)
        best = self._best(trial_id)
        worse = best < median if self._mode == "max" else best > median
        logger.debug("MedianStoppingRule: %s best=%s median=%s at %s=%s",
                     trial_id, best, median, self._time_attr, t)
        if not worse:
            return self.CONTINUE
        self._stopped.add(trial_id)
        return self.STOP if self._hard_stop else self.PAUSE

    def on_trial_complete(self, trial, result: dict) -> None:
        t, value = result.get(self._time_attr), result.get(self._metric)
        if t is None or value is None:
            return
        history = self._results.setdefault(trial.trial_id, [])
        if not history or history[-1] != (t, float(value)):  # not the same result twice
            history.append((t, float(value)))

    def debug_string(self) -> str:
        return f"Using MedianStoppingRule: num_stopped={len(self._stopped)}."

    def _beyond(self, t: float) -> list[str]:
        """Trials whose latest result has reached progress ``t``."""
        return [tid for tid, history in self._results.items() if history[-1][0] >= t]

    def _running_mean(self, trial_id: str, t: float) -> float | None:
        values = [v for (time, v) in self._results[trial_id]
                  if self._grace_period <= time <= t and not math.isnan(v)]
        return sum(values) / len(values) if values else None

    def _best(self, trial_id: str) -> float:
        values = [v for (_, v) in self._results[trial_id]]
        return max(values) if self._mode == "max" else min(values)

    def _yield_if_others_wait(self, trial_id: str, t: float) -> str:
        last = self._last_pause.get(trial_id, -math.inf)
        if t - last <= self._min_time_slice:
            return self.CONTINUE
        waiting = any(other.status in (PENDING, PAUSED)
                      for tid, other in self._trials.items() if tid != trial_id)
        if not waiting:
            return self.CONTINUE
        self._last_pause[trial_id] = t
        return self.PAUSE

"""Asynchronous Successive Halving (ASHA), Li et al. 2018, https://arxiv.org/abs/1810.05934.

A bracket is a ladder of *rungs* at ``grace_period * rf**k`` (``rf`` the
reduction factor), every one at most ``max_t``. When a trial's ``time_attr``
first reaches a rung, its score is compared with the scores recorded there so
far by other trials: below the top ``1/rf`` quantile of them, it stops; either
way its score is recorded. Nobody waits for anybody, which is what makes it
asynchronous: early arrivals at a rung are judged against fewer peers (the
first one always passes). A trial reaching ``max_t`` stops
(``stop_last_trials``).

With ``brackets > 1``, bracket ``s`` starts its ladder ``s`` rungs higher (a
later first cut, for problems where early results mislead) and a new trial
joins a bracket drawn with probability ~ ``e**(number of rungs)``, as Ray does.
"""

from __future__ import annotations

import math
import random

import numpy as np

from skate.tune.schedulers.trial_scheduler import Decision, TrialScheduler


class AsyncHyperBandScheduler(TrialScheduler):
    """ASHA: stop a trial at a rung if it is not in the top ``1/reduction_factor`` there.

    Args:
        time_attr: the result key that measures progress; must grow monotonically.
        metric: the result key to compare trials by.
        mode: "min" or "max": whether a smaller or larger metric is better.
        max_t: trials stop when ``time_attr`` reaches this.
        grace_period: the first rung; no trial stops before this much progress.
        reduction_factor: ``rf``: rungs are ``rf`` times apart and keep the top ``1/rf``.
        brackets: number of brackets (ladders starting at successive rungs).
        stop_last_trials: stop trials at ``max_t``; if False they run until they end.
        seed: seeds the bracket draw (only matters when ``brackets > 1``). Skate-only.

    >>> from types import SimpleNamespace as T
    >>> asha = AsyncHyperBandScheduler(metric="acc", mode="max", grace_period=1,
    ...                                reduction_factor=2, max_t=4)
    >>> good, bad = T(trial_id="good"), T(trial_id="bad")
    >>> asha.on_trial_add(good); asha.on_trial_add(bad)
    >>> asha.on_trial_result(good, {"training_iteration": 1, "acc": 0.9})
    'CONTINUE'
    >>> asha.on_trial_result(bad, {"training_iteration": 1, "acc": 0.1})
    'STOP'
    """

    _requires_metric = True

    def __init__(self, time_attr: str = "training_iteration", metric: str | None = None,
                 mode: str | None = None, max_t: float = 100, grace_period: float = 1,
                 reduction_factor: float = 4, brackets: int = 1, stop_last_trials: bool = True,
                 seed: int | None = None):
        super().__init__(metric, mode)
        if not max_t > 0:
            raise ValueError(f"max_t must be positive, got {max_t!r}.")
        if not grace_period > 0:
            raise ValueError(f"grace_period must be positive, got {grace_period!r}.")
        if not reduction_factor > 1:
            raise ValueError(
                f"reduction_factor must be greater than 1 (each rung keeps the top "
                f"1/reduction_factor), got {reduction_factor!r}.")
        if not (isinstance(brackets, int) and brackets >= 1):
            raise ValueError(f"brackets must be a positive integer, got {brackets!r}.")
        self._time_attr = time_attr
        self._max_t = max_t
        self._rf = reduction_factor
        self._stop_last_trials = stop_last_trials
        self._brackets = [_Bracket(grace_period, max_t, reduction_factor, s)
                          for s in range(brackets)]
        self._rng = random.Random(seed)
        self._bracket_of: dict[str, int] = {}  # trial_id -> index into _brackets, while live
        self._num_stopped = 0  # STOP decisions made (for debug_string)

    def on_trial_add(self, trial) -> None:
        self._check_metric()
        self._assign(trial.trial_id)

    def on_trial_result(self, trial, result: dict) -> Decision:
        self._check_metric()
        t = self._require(result, self._time_attr, "time_attr")
        value = self._require(result, self._metric, "metric")
        if self._stop_last_trials and t >= self._max_t:
            decision = self.STOP
        else:
            bracket = self._brackets[self._assign(trial.trial_id)]
            decision = bracket.on_result(trial.trial_id, t, self._score(value),
                                         self._stop_last_trials)
        if decision == self.STOP:
            self._num_stopped += 1
        return decision

    def on_trial_complete(self, trial, result: dict) -> None:
        index = self._bracket_of.pop(trial.trial_id, None)
        if index is None or not result:
            return
        # The final result still counts at its rung, to judge the trials behind it.
        t, value = result.get(self._time_attr), result.get(self._metric)
        if t is not None and value is not None:
            self._brackets[index].on_result(trial.trial_id, t, self._score(value),
                                            self._stop_last_trials)

    def on_trial_error(self, trial) -> None:
        self._bracket_of.pop(trial.trial_id, None)

    def on_trial_remove(self, trial) -> None:
        self._bracket_of.pop(trial.trial_id, None)

    def debug_string(self) -> str:
        lines = [f"Using AsyncHyperBand: num_stopped={self._num_stopped}"]
        lines += [b.debug_string() for b in self._brackets]
        return "\n".join(lines)

    def _assign(self, trial_id: str) -> int:
        index = self._bracket_of.get(trial_id)
        if index is None:
            if len(self._brackets) == 1:
                index = 0
            else:
                # Brackets with more rungs are likelier: weights e**(rungs - max rungs).
                sizes = [len(b.rungs) for b in self._brackets]
                top = max(sizes)
                weights = [math.exp(n - top) for n in sizes]
                index = self._rng.choices(range(len(self._brackets)), weights=weights)[0]
            self._bracket_of[trial_id] = index
        return index

    def _score(self, value) -> float:
        return self._sign() * float(value)


ASHAScheduler = AsyncHyperBandScheduler


class _Bracket:
    """One ladder of rungs; each rung remembers the score of every trial that reached it."""

    def __init__(self, grace_period: float, max_t: float, rf: float, s: int):
        self.rf = rf
        milestones = []
        k = s
        while grace_period * rf**k <= max_t * (1 + 1e-9):  # tolerate float rounding
            milestones.append(grace_period * rf**k)
            k += 1
        # Highest first: a trial that jumps past several rungs is judged at the highest.
        self.rungs: list[tuple[float, dict[str, float]]] = [
            (m, {}) for m in reversed(milestones)]

    def cutoff(self, recorded: dict[str, float]) -> float | None:
        """The score a newcomer must reach: the (1 - 1/rf) quantile of the recorded ones."""
        if not recorded:
            return None
        return float(np.nanpercentile(list(recorded.values()), (1 - 1 / self.rf) * 100))

    def on_result(self, trial_id: str, t: float, score: float, stop_last_trials: bool) -> str:
        for milestone, recorded in self.rungs:
            if t < milestone:
                continue
            if trial_id in recorded:
                if not stop_last_trials:
                    # Judged at the highest rung it has reached already: nothing new.
                    break
                continue
            cutoff = self.cutoff(recorded)
            recorded[trial_id] = score
            if cutoff is not None and score < cutoff:
                return TrialScheduler.STOP
            break
        return TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        parts = []
        for milestone, recorded in self.rungs:
            cutoff = self.cutoff(recorded)
            shown = "None" if cutoff is None else f"{cutoff:.4f}"
            parts.append(f"Iter {milestone:.3f}: {shown}")
        return "Bracket: " + " | ".join(parts)

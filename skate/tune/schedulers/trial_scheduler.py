"""The trial-scheduler contract: narrow data in (a trial, a result), a decision out.

A scheduler never sees the controller. The controller tells it what happened
to a trial (added, reported a result, completed, failed, removed) and asks it
two questions: *what should this trial do next?* (``on_trial_result``) and
*which waiting trial should run next?* (``choose_trial_to_run``). Everything
else a scheduler knows it has to remember itself.

A *trial* here is anything with ``trial_id: str``, ``config: dict``,
``status: str`` (one of ``"PENDING" "RUNNING" "PAUSED" "TERMINATED" "ERROR"``),
``last_result: dict`` and ``checkpoint`` (latest checkpoint or None). The
controller passes its own live trial objects, so a status read later is the
current one; schedulers key their state by ``trial_id`` so that ``save`` does
not have to pickle trials.

A *decision* is one of the strings ``CONTINUE``, ``PAUSE`` (checkpoint the
trial and release its resources; it waits as PAUSED until
``choose_trial_to_run`` picks it), ``STOP`` (terminate it), ``NOOP`` (the
scheduler already arranged what happens to it), or an :class:`Exploit`
(restart it from another trial's latest checkpoint with a new config).

Two things only a scheduler that holds trials back can need:

* ``pop_trials_to_stop()``: ids of *other* trials (PAUSED or PENDING ones,
  which will never report again) that the scheduler has decided to
  terminate. HyperBand's successive halving is the user. The controller
  drains it after each callback and completes those trials.
* ``choose_trial_to_run`` may refuse to run a PAUSED trial (it is waiting for
  the rest of its bracket); returning None means "nothing of mine to run now".
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import cloudpickle

from skate.tune.search.searcher import validate_mode

logger = logging.getLogger(__name__)

PENDING, RUNNING, PAUSED, TERMINATED, ERROR = (
    "PENDING", "RUNNING", "PAUSED", "TERMINATED", "ERROR")
_FINISHED = (TERMINATED, ERROR)


@dataclasses.dataclass(frozen=True)
class Exploit:
    """Decision: restart the trial from ``source``'s latest checkpoint with ``config``.

    ``source`` is a trial object (another trial, or the trial itself);
    ``config`` is the complete new config for the restarted trial.

    >>> Exploit(source="a trial", config={"lr": 0.02}).config
    {'lr': 0.02}
    """

    source: Any
    config: dict


Decision = str | Exploit


class TrialScheduler:
    """Base class: decides, per result, whether a trial continues, pauses or stops.

    The spec every implementation follows (the contract test in
    ``tests/tune/test_schedulers_contract.py`` checks it for each one):

    * ``set_search_properties(metric, mode)`` fills in the metric and mode if
      the scheduler was built without them and returns True; it returns False
      when they conflict with the ones it was built with. A scheduler that
      needs a metric and still has none raises ValueError saying to pass
      ``metric=`` and ``mode=``.
    * ``on_trial_add(trial)`` comes before any result of that trial; adding a
      trial again (a resumed experiment re-adds its trials) keeps its place.
    * ``on_trial_result(trial, result) -> decision`` for every result of a
      running trial. A result lacking the metric or the time attribute the
      scheduler needs raises ValueError naming the key and the keys reported.
    * ``on_trial_complete(trial, result)``, ``on_trial_error(trial)``,
      ``on_trial_remove(trial)`` may come in any order, more than once, and
      for trials the scheduler never saw; none of them raises.
    * ``choose_trial_to_run(trials)`` gets waiting (PENDING or PAUSED) trials
      and returns one of them, or None.
    * ``pop_trials_to_stop()`` returns (once) the ids of waiting trials the
      scheduler decided to terminate; the controller completes them.
    * ``save(path)`` / ``restore(path)`` round-trip the scheduler's state.

    Subclasses override what they need; the defaults do FIFO scheduling.

    >>> class StopAtThree(TrialScheduler):
    ...     def on_trial_result(self, trial, result):
    ...         if result["training_iteration"] >= 3:
    ...             return self.STOP
    ...         return self.CONTINUE
    >>> StopAtThree().on_trial_result(None, {"training_iteration": 3})
    'STOP'
    """

    CONTINUE = "CONTINUE"
    PAUSE = "PAUSE"
    STOP = "STOP"
    NOOP = "NOOP"

    # Whether this scheduler cannot work without a metric and mode.
    _requires_metric = False
    # Attributes that hold live trial objects: left out of ``save``.
    _transient: tuple[str, ...] = ()

    def __init__(self, metric: str | None = None, mode: str | None = None):
        validate_mode(mode)
        self._metric = metric  # None until given here or by set_search_properties
        self._mode = mode  # "min", "max" or None, likewise

    # ---- properties -----------------------------------------------------------------------

    @property
    def metric(self) -> str | None:
        return self._metric

    @property
    def mode(self) -> str | None:
        return self._mode

    def set_search_properties(self, metric: str | None, mode: str | None, **spec) -> bool:
        """Fill in metric/mode from ``tune.run``; False if they conflict with ours."""
        validate_mode(mode)
        if metric and self._metric and metric != self._metric:
            return False
        if mode and self._mode and mode != self._mode:
            return False
        self._metric = self._metric or metric
        self._mode = self._mode or mode
        if self._requires_metric:
            self._check_metric()
        return True

    # ---- events ---------------------------------------------------------------------------

    def on_trial_add(self, trial) -> None:
        """A new trial exists (it is PENDING)."""

    def on_trial_result(self, trial, result: dict) -> Decision:
        """A running trial reported ``result``; return what it does next."""
        return self.CONTINUE

    def on_trial_complete(self, trial, result: dict) -> None:
        """The trial finished (on its own or because someone decided STOP)."""

    def on_trial_error(self, trial) -> None:
        """The trial failed for good."""

    def on_trial_remove(self, trial) -> None:
        """The trial was removed without completing."""

    def pop_trials_to_stop(self) -> list[str]:
        """Ids of other (PAUSED/PENDING) trials this scheduler has decided to stop."""
        return []

    def choose_trial_to_run(self, trials: list):
        """Pick a trial to (re)start from ``trials``: the first PENDING, else the first PAUSED."""
        for status in (PENDING, PAUSED):
            for trial in trials:
                if trial.status == status:
                    return trial
        return None

    def debug_string(self) -> str:
        return f"Using {type(self).__name__}."

    # ---- persistence ----------------------------------------------------------------------

    def save(self, path: str) -> None:
        """Write the scheduler's state to ``path`` (cloudpickle)."""
        with open(path, "wb") as f:
            cloudpickle.dump(self.__getstate__(), f)

    def restore(self, path: str) -> None:
        """Load the state ``save`` wrote; live trial references come back on the next call."""
        with open(path, "rb") as f:
            self.__setstate__(cloudpickle.load(f))

    def __getstate__(self) -> dict:
        # Live trial objects belong to the controller: a pickled scheduler (``save``, or
        # the experiment state pickling the scheduler whole) holds only ids and numbers.
        return {k: v for k, v in self.__dict__.items() if k not in self._transient}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        for name in self._transient:
            setattr(self, name, {})

    # ---- helpers for subclasses -----------------------------------------------------------

    def _check_metric(self) -> None:
        """Raise the actionable error for a scheduler that has no metric or mode."""
        if self._metric and self._mode:
            return
        name = type(self).__name__
        raise ValueError(
            f"{name} needs a metric to compare trials and a mode ('min' or 'max'), but it has "
            f"metric={self._metric!r}, mode={self._mode!r}. Pass both, either to "
            f"{name}(metric=..., mode=...) or to tune.run(metric=..., mode=...) / "
            f"tune.TuneConfig(metric=..., mode=...).")

    def _sign(self) -> float:
        """+1 when larger is better, -1 when smaller is better: ``score = sign * value``."""
        return 1.0 if self._mode == "max" else -1.0

    def _require(self, result: dict, key: str, argument: str) -> Any:
        """``result[key]``, or a ValueError naming the key and what was reported."""
        try:
            return result[key]
        except KeyError:
            reported = sorted(k for k in result if not str(k).startswith("__"))
            raise ValueError(
                f"{type(self).__name__} needs {key!r} (its {argument}) in every result, but a "
                f"trial reported only {reported}. Report {key!r} from the trainable "
                f"(tune.report({{{key!r}: ...}})) or pass {argument}= naming a key it "
                f"reports.") from None


class FIFOScheduler(TrialScheduler):
    """Runs trials to completion in the order they were added: every result CONTINUEs.

    >>> s = FIFOScheduler()
    >>> s.on_trial_result(None, {"training_iteration": 1})
    'CONTINUE'
    """

    def debug_string(self) -> str:
        return "Using FIFO scheduling algorithm."


def is_finished(trial) -> bool:
    return trial.status in _FINISHED

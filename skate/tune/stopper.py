"""Stoppers: end single trials (``__call__``) or the whole experiment (``stop_all``).

After every result the controller asks ``stopper(trial_id, result)``: True
terminates that trial. Then it asks ``stopper.stop_all()``: True terminates
every trial and ends the experiment. ``tune.run(stop=...)`` accepts a dict, a
function ``(trial_id, result) -> bool``, a :class:`Stopper` or a list of
Stoppers; :func:`make_stopper` turns each into one Stopper.

Stoppers are pure: no clocks except the one :class:`TimeoutStopper` is given.
"""

from __future__ import annotations

import collections
import datetime
import inspect
import logging
import statistics
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

__all__ = [
    "CombinedStopper",
    "DictStopper",
    "ExperimentPlateauStopper",
    "FunctionStopper",
    "MaximumIterationStopper",
    "NoopStopper",
    "Stopper",
    "TimeoutStopper",
    "TrialPlateauStopper",
    "make_stopper",
]


class Stopper:
    """Base class: ``__call__(trial_id, result)`` stops a trial, ``stop_all()`` everything.

    >>> class StopAtTen(Stopper):
    ...     def __call__(self, trial_id, result):
    ...         return result["training_iteration"] >= 10
    ...     def stop_all(self):
    ...         return False
    >>> StopAtTen()("t1", {"training_iteration": 10})
    True
    """

    def __call__(self, trial_id: str, result: dict) -> bool:
        """True if the trial that reported ``result`` should be terminated."""
        raise NotImplementedError(f"{type(self).__name__} must implement __call__")

    def stop_all(self) -> bool:
        """True if the whole experiment should be terminated."""
        raise NotImplementedError(f"{type(self).__name__} must implement stop_all")


class NoopStopper(Stopper):
    """Never stops anything (``stop=None``).

    >>> NoopStopper()("t1", {}), NoopStopper().stop_all()
    (False, False)
    """

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return False


class FunctionStopper(Stopper):
    """Wraps ``function(trial_id, result) -> bool``; never stops the experiment.

    >>> stop = FunctionStopper(lambda trial_id, result: result["loss"] < 0.1)
    >>> stop("t1", {"loss": 0.05})
    True
    """

    def __init__(self, function: Callable[[str, dict], bool]):
        _check_stop_function(function)
        self._function = function

    def __call__(self, trial_id: str, result: dict) -> bool:
        return bool(self._function(trial_id, result))

    def stop_all(self) -> bool:
        return False

    @classmethod
    def is_valid_function(cls, fn: Any) -> bool:
        """Whether ``fn`` is a plain function (not a Stopper) usable as a stop condition."""
        if isinstance(fn, Stopper) or not callable(fn):
            return False
        if hasattr(fn, "stop_all"):
            raise ValueError(
                f"{fn!r} has a stop_all method but is not a tune.Stopper: subclass "
                f"skate.tune.stopper.Stopper so that stop_all is used.")
        return True


class DictStopper(Stopper):
    """``stop={"training_iteration": 5, "mean_accuracy": 0.9}``: a trial stops once any
    ``result[key] >= value``. Nested results are addressed with ``"a/b"`` keys.

    A key no result has is a mistake (a typo, or a metric never reported), so
    it raises ValueError listing the keys the trainable did report.

    >>> stop = DictStopper({"training_iteration": 5, "mean_accuracy": 0.9})
    >>> stop("t1", {"training_iteration": 2, "mean_accuracy": 0.95})
    True
    >>> stop("t1", {"training_iteration": 2, "mean_accuracy": 0.5})
    False
    """

    def __init__(self, criteria: dict):
        if not isinstance(criteria, dict):
            raise TypeError(f"DictStopper needs a dict {{result key: value}}, got {criteria!r}.")
        for key, value in criteria.items():
            if isinstance(value, dict):
                raise TypeError(
                    f"stop criterion {key!r} is a dict; stop criteria are flat: write nested "
                    f"keys with slashes, e.g. {{'{key}/<inner key>': value}}.")
            if not isinstance(key, str):
                raise TypeError(f"stop criterion keys must be result keys (str), got {key!r}.")
        self._criteria = dict(criteria)

    def __call__(self, trial_id: str, result: dict) -> bool:
        for key, threshold in self._criteria.items():
            value = _lookup(result, key)
            if value is _MISSING:
                reported = sorted(k for k in result if not str(k).startswith("__"))
                raise ValueError(
                    f"Stopping criterion {key!r} (from stop={self._criteria}) is not in the "
                    f"result of trial {trial_id}; it reported {reported}. Fix the key in "
                    f"`stop`, or report {key!r} from the trainable.")
            if value >= threshold:
                return True
        return False

    def stop_all(self) -> bool:
        return False


class MaximumIterationStopper(Stopper):
    """Stops a trial after it has reported ``max_iter`` results.

    >>> stop = MaximumIterationStopper(max_iter=2)
    >>> stop("t1", {}), stop("t1", {})
    (False, True)
    """

    def __init__(self, max_iter: int):
        if not (isinstance(max_iter, int) and max_iter >= 1):
            raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}.")
        self._max_iter = max_iter
        self._iter: collections.Counter = collections.Counter()  # trial_id -> results seen

    def __call__(self, trial_id: str, result: dict) -> bool:
        self._iter[trial_id] += 1
        return self._iter[trial_id] >= self._max_iter

    def stop_all(self) -> bool:
        return False


class TrialPlateauStopper(Stopper):
    """Stops a trial whose last ``num_results`` values of ``metric`` have a standard
    deviation below ``std`` (after ``grace_period`` results, and, with
    ``metric_threshold``, only once the metric is at least that good).

    >>> stop = TrialPlateauStopper("loss", std=0.01, num_results=3, grace_period=3)
    >>> [stop("t1", {"loss": v}) for v in (0.5, 0.3, 0.3, 0.3)]
    [False, False, False, True]
    """

    def __init__(self, metric: str, std: float = 0.01, num_results: int = 4,
                 grace_period: int = 4, metric_threshold: float | None = None,
                 mode: str | None = None):
        if metric_threshold is not None and mode not in ("min", "max"):
            raise ValueError(
                f"TrialPlateauStopper(metric_threshold=...) needs mode='min' or 'max' to know "
                f"which side of the threshold is good; got mode={mode!r}.")
        if not (isinstance(num_results, int) and num_results >= 1):
            raise ValueError(f"num_results must be a positive integer, got {num_results!r}.")
        self._metric = metric
        self._std = std
        self._num_results = num_results
        self._grace_period = grace_period
        self._metric_threshold = metric_threshold
        self._mode = mode
        self._iter: collections.Counter = collections.Counter()  # trial_id -> results seen
        self._window: dict[str, collections.deque] = {}  # trial_id -> last num_results values

    def __call__(self, trial_id: str, result: dict) -> bool:
        value = _lookup(result, self._metric)
        if value is _MISSING:
            reported = sorted(k for k in result if not str(k).startswith("__"))
            raise ValueError(
                f"TrialPlateauStopper watches {self._metric!r}, but trial {trial_id} reported "
                f"only {reported}. Pass metric= naming a key the trainable reports.")
        window = self._window.setdefault(trial_id,
                                         collections.deque(maxlen=self._num_results))
        window.append(value)
        self._iter[trial_id] += 1
        if self._iter[trial_id] < self._grace_period or len(window) < self._num_results:
            return False
        if self._metric_threshold is not None:
            if self._mode == "min" and value > self._metric_threshold:
                return False
            if self._mode == "max" and value < self._metric_threshold:
                return False
        try:
            spread = statistics.pstdev(float(v) for v in window)
        except (TypeError, ValueError):
            return False
        return spread < self._std

    def stop_all(self) -> bool:
        return False


class ExperimentPlateauStopper(Stopper):
    """Ends the experiment once the ``top`` best values of ``metric`` seen so far (over
    all trials) have a standard deviation of at most ``std``, for ``patience``
    further results.

    >>> stop = ExperimentPlateauStopper("loss", std=0.01, top=2, mode="min")
    >>> [stop(t, {"loss": v}) for t, v in (("a", 0.5), ("b", 0.2), ("c", 0.2))]
    [False, False, True]
    """

    def __init__(self, metric: str, std: float = 0.001, top: int = 10, mode: str = "min",
                 patience: int = 0):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}.")
        if not (isinstance(top, int) and top > 1):
            raise ValueError(f"top must be an integer greater than 1, got {top!r}.")
        if not (isinstance(patience, int) and patience >= 0):
            raise ValueError(f"patience must be a non-negative integer, got {patience!r}.")
        if not (isinstance(std, (int, float)) and std > 0):
            raise ValueError(f"std must be a positive number, got {std!r}.")
        self._metric = metric
        self._std = std
        self._top = top
        self._mode = mode
        self._patience = patience
        self._top_values: list[float] = []  # the best `top` values so far, sorted
        self._iterations = 0  # consecutive results with the top values on a plateau

    def __call__(self, trial_id: str, result: dict) -> bool:
        value = _lookup(result, self._metric)
        if value is _MISSING:
            reported = sorted(k for k in result if not str(k).startswith("__"))
            raise ValueError(
                f"ExperimentPlateauStopper watches {self._metric!r}, but trial {trial_id} "
                f"reported only {reported}. Pass metric= naming a key the trainable reports.")
        values = sorted(self._top_values + [value])
        self._top_values = values[:self._top] if self._mode == "min" else values[-self._top:]
        self._iterations = self._iterations + 1 if self.has_plateaued() else 0
        return self.stop_all()

    def has_plateaued(self) -> bool:
        return (len(self._top_values) == self._top
                and statistics.pstdev(self._top_values) <= self._std)

    def stop_all(self) -> bool:
        return self.has_plateaued() and self._iterations >= self._patience


class TimeoutStopper(Stopper):
    """Ends the experiment after ``timeout`` (seconds or a ``datetime.timedelta``).

    The clock starts at the first ``stop_all()`` call, so setup time does not
    count. ``_time_fn`` is the clock (seconds, monotonic); tests pass a fake.

    >>> now = [0.0]
    >>> stop = TimeoutStopper(10, _time_fn=lambda: now[0])
    >>> stop.stop_all()
    False
    >>> now[0] = 10.0
    >>> stop.stop_all()
    True
    """

    def __init__(self, timeout: float | datetime.timedelta,
                 _time_fn: Callable[[], float] = time.monotonic):
        if isinstance(timeout, datetime.timedelta):
            seconds = timeout.total_seconds()
        elif isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
            seconds = float(timeout)
        else:
            raise TypeError(
                f"TimeoutStopper needs a number of seconds or a datetime.timedelta, got "
                f"{type(timeout).__name__} {timeout!r}.")
        self._timeout_seconds = seconds
        self._time_fn = _time_fn
        self._budget = seconds  # seconds left
        self._last_check: float | None = None  # clock at the previous stop_all

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        now = self._time_fn()
        if self._last_check is not None:
            self._budget -= now - self._last_check
        self._last_check = now
        if self._budget <= 0:
            logger.info("Reached the timeout of %s seconds: stopping all trials.",
                        self._timeout_seconds)
            return True
        return False


class CombinedStopper(Stopper):
    """Stops when any of ``stoppers`` does ('OR'). Every stopper sees every result, so
    counting stoppers stay correct.

    >>> stop = CombinedStopper(MaximumIterationStopper(3), FunctionStopper(lambda i, r: r["x"]))
    >>> stop("t1", {"x": True})
    True
    """

    def __init__(self, *stoppers: Stopper):
        for s in stoppers:
            if not isinstance(s, Stopper):
                raise TypeError(
                    f"CombinedStopper takes Stopper instances, got {type(s).__name__} {s!r}; "
                    f"wrap a function in FunctionStopper and a dict in DictStopper.")
        self._stoppers = stoppers

    def __call__(self, trial_id: str, result: dict) -> bool:
        decisions = [s(trial_id, result) for s in self._stoppers]
        return any(decisions)

    def stop_all(self) -> bool:
        decisions = [s.stop_all() for s in self._stoppers]
        return any(decisions)


def make_stopper(stop: Any) -> Stopper:
    """The Stopper for ``tune.run(stop=...)``: None, a dict of thresholds, a Stopper, a
    function ``(trial_id, result) -> bool``, or a list of Stoppers.

    >>> make_stopper({"training_iteration": 3})("t1", {"training_iteration": 3})
    True
    >>> isinstance(make_stopper(None), NoopStopper)
    True
    """
    if stop is None:
        return NoopStopper()
    if isinstance(stop, Stopper):
        return stop
    if isinstance(stop, dict):
        return DictStopper(stop)
    if isinstance(stop, (list, tuple)):
        bad = [type(s).__name__ for s in stop if not isinstance(s, Stopper)]
        if bad:
            raise TypeError(
                f"A list passed as `stop` must hold tune.Stopper instances only; it holds "
                f"{bad}. Wrap functions in FunctionStopper, or pass a single dict.")
        return CombinedStopper(*stop)
    if FunctionStopper.is_valid_function(stop):
        return FunctionStopper(stop)
    raise TypeError(
        f"stop must be None, a dict such as {{'training_iteration': 10}}, a tune.Stopper, or "
        f"a function (trial_id, result) -> bool; got {type(stop).__name__} {stop!r}.")


_MISSING = object()


def _lookup(result: dict, key: str) -> Any:
    """``result[key]``, where ``"a/b"`` also finds ``result["a"]["b"]``; else _MISSING."""
    if key in result:
        return result[key]
    node: Any = result
    for part in key.split("/"):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _check_stop_function(function: Any) -> None:
    if not callable(function):
        raise TypeError(f"FunctionStopper needs a function (trial_id, result) -> bool, "
                        f"got {function!r}.")
    try:
        inspect.signature(function).bind("trial_id", {})
    except TypeError:
        raise TypeError(
            f"The stop function {getattr(function, '__name__', function)!r} must accept two "
            f"arguments, (trial_id, result), and return True to stop the trial.") from None
    except ValueError:
        pass  # builtins without a signature: let the first call tell


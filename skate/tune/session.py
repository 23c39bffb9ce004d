"""What a function trainable calls from inside its trial: report, get_checkpoint, get_context.

The trial's actor runs the user's function in a thread and installs a
``_Session`` for it. ``report`` hands one result to the actor's ``train()``
call and then *blocks* until the controller asks for the next one, so a
scheduler's "stop" takes effect at the very next report (as in Ray): the
blocked call raises ``_StopTrial``, which unwinds the user's function.

>>> from skate import tune
>>> def trainable(config):
...     for i in range(3):
...         tune.report({"score": config["x"] * i})
>>> tune.run(trainable, config={"x": 2}, verbose=0).trials[0].last_result["score"]
4
"""

from __future__ import annotations

import queue
import threading

from skate.tune.checkpoint import Checkpoint

_session: "_Session | None" = None


class _StopTrial(BaseException):
    """Raised inside a function trainable at ``report`` when its trial is stopped.

    A BaseException so a user's ``except Exception`` does not swallow it.
    """


class TuneContext:
    """Facts about the running trial, from ``tune.get_context()``.

    >>> from skate import tune
    >>> tune.get_context().get_trial_id() is None  # outside a trial
    True
    """

    def __init__(self, info: dict | None = None):
        self._info = info or {}

    def get_trial_id(self) -> str | None:
        return self._info.get("trial_id")

    def get_trial_name(self) -> str | None:
        return self._info.get("trial_name")

    def get_trial_dir(self) -> str | None:
        return self._info.get("trial_dir")

    def get_experiment_name(self) -> str | None:
        return self._info.get("experiment_name")

    def get_trial_resources(self):
        return self._info.get("resources")

    def get_world_rank(self) -> int:
        return 0

    def get_world_size(self) -> int:
        return 1


class _Session:
    """The channel between a function trainable's thread and its actor's ``train()``."""

    def __init__(self, info: dict, restore: Checkpoint | None):
        self.info = info
        self.restore = restore
        self.items: queue.Queue = queue.Queue()  # results and the final done/error
        self.resume = threading.Event()  # set when the controller wants the next result
        self.stopping = False

    def report(self, metrics: dict, checkpoint: Checkpoint | None) -> None:
        if self.stopping:
            raise _StopTrial()
        if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
            raise TypeError(f"tune.report(checkpoint=...) takes a tune.Checkpoint, got "
                            f"{type(checkpoint).__name__}; use Checkpoint.from_directory(dir).")
        self.resume.clear()
        self.items.put(("result", metrics, checkpoint))
        self.resume.wait()
        if self.stopping:
            raise _StopTrial()


def _install(session: _Session | None) -> None:
    global _session
    _session = session


def report(metrics: dict | None = None, *, checkpoint: Checkpoint | None = None, **kwargs) -> None:
    """Report one result (a dict of metrics) and optionally a checkpoint, from a trial.

    ``tune.report(score=1.0)`` (keyword style) works too. Outside a trial this
    raises, because nothing would receive the result.

    >>> from skate import tune
    >>> def trainable(config):
    ...     tune.report({"loss": 0.5})
    >>> tune.run(trainable, verbose=0).trials[0].last_result["loss"]
    0.5
    """
    if metrics is None:
        metrics = {}
    if not isinstance(metrics, dict):
        raise TypeError(f"tune.report takes a dict of metrics, got {type(metrics).__name__}.")
    if kwargs:
        metrics = {**metrics, **kwargs}
    if _session is None:
        raise RuntimeError("tune.report() was called outside a Tune trial. Call it from the "
                           "function you pass to tune.run / tune.Tuner.")
    _session.report(dict(metrics), checkpoint)


def get_checkpoint() -> Checkpoint | None:
    """The checkpoint this trial restarts from (after a failure, a pause or PBT), else None.

    >>> from skate import tune
    >>> tune.get_checkpoint() is None
    True
    """
    return None if _session is None else _session.restore


def get_context() -> TuneContext:
    """The running trial's id, name, folder and resources (all None outside a trial)."""
    return TuneContext(None if _session is None else _session.info)


def get_trial_dir() -> str | None:
    return get_context().get_trial_dir()


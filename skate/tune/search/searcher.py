"""``Searcher``: the policy that proposes the next trial's config (Ray Tune's interface).

The controller drives a searcher with three calls and never hands it more
than a trial id and a result:

* ``suggest(trial_id)`` returns a config dict for a new trial, ``None`` when
  it has nothing to propose *right now* (ask again later, e.g. it waits for
  results), or ``Searcher.FINISHED`` when it will never propose again.
* ``on_trial_result(trial_id, result)`` for every intermediate result.
* ``on_trial_complete(trial_id, result=None, error=False)`` once per trial.

Before the first ``suggest`` the controller calls
``set_search_properties(metric, mode, config, num_samples=...)``; a searcher
that adopts the param space from it returns ``True``.

Searcher state is saved with the experiment (``save``/``restore``, built on
``get_state``/``set_state``), so a resumed experiment continues the same search.

>>> class Fixed(Searcher):
...     def suggest(self, trial_id):
...         return {"x": 1} if trial_id == "t0" else Searcher.FINISHED
...     def on_trial_complete(self, trial_id, result=None, error=False):
...         pass
>>> s = Fixed(metric="loss", mode="min")
>>> s.suggest("t0"), s.suggest("t1"), s.mode
({'x': 1}, 'FINISHED', 'min')
"""

from __future__ import annotations

import copy
import os
import tempfile
from typing import Any

import cloudpickle

__all__ = ["DEFAULT_METRIC", "Searcher", "validate_mode"]

DEFAULT_METRIC = "_metric"
"""The metric name Ray uses when only ``mode`` is given."""

UNDEFINED_SEARCH_SPACE = (
    "{cls} has no search space to sample from. Pass one to {cls}({space}=...) or give "
    "tune.Tuner a param_space."
)
UNDEFINED_METRIC_MODE = (
    "{cls} cannot suggest a config: `metric` ({metric}) or `mode` ({mode}) is not set. "
    "Pass them to the searcher or to tune.TuneConfig(metric=..., mode=...)."
)


def validate_mode(mode: Any, allow_list: bool = False) -> None:
    """Raise ``ValueError`` unless ``mode`` is None, "min" or "max" (or a list of them)."""
    if mode is None:
        return
    modes = mode if (allow_list and isinstance(mode, (list, tuple))) else [mode]
    for m in modes:
        if m not in ("min", "max"):
            raise ValueError(f"`mode` must be 'min' or 'max'; got {m!r}")


class Searcher:
    """Base class of every search algorithm; the module docstring is the contract.

    Subclasses implement ``suggest`` and ``on_trial_complete``; everything else
    has a working default.
    """

    FINISHED = "FINISHED"
    CKPT_FILE_TMPL = "searcher-state-{}.pkl"

    def __init__(self, metric: str | None = None, mode: str | None = None):
        validate_mode(mode)
        self._metric = metric
        self._mode = mode

    @property
    def metric(self) -> str | None:
        """The result key this searcher optimises."""
        return self._metric

    @property
    def mode(self) -> str | None:
        """``"min"`` or ``"max"``."""
        return self._mode

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        """Offer the experiment's metric, mode and param space; ``True`` if adopted.

        ``spec`` may carry ``num_samples``. The default adopts nothing.
        """
        return False

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        """Ask the searcher to cap live trials itself; ``False`` means wrap it in a
        ``ConcurrencyLimiter`` instead."""
        return False

    def suggest(self, trial_id: str) -> dict | str | None:
        """A config for trial ``trial_id``, ``None`` (nothing now), or ``FINISHED``."""
        raise NotImplementedError(f"{type(self).__name__} must implement suggest()")

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """An intermediate result of a live trial. Default: ignored."""

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        """Trial ``trial_id`` ended with its last ``result`` (``None`` on error)."""
        raise NotImplementedError(f"{type(self).__name__} must implement on_trial_complete()")

    def add_evaluated_point(
        self,
        parameters: dict,
        value: float,
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list[float] | None = None,
    ) -> None:
        """Teach the searcher a config evaluated outside this experiment."""
        raise NotImplementedError(f"{type(self).__name__} cannot take evaluated points")

    # ------------------------------------------------------------------ state

    def get_state(self) -> dict:
        """Everything needed to continue this search elsewhere (default: a deep copy
        of the attributes, so the searcher and the state do not alias)."""
        return copy.deepcopy(self.__dict__)

    def set_state(self, state: dict) -> None:
        """Adopt a state from ``get_state``."""
        self.__dict__.update(state)

    def save(self, checkpoint_path: str) -> None:
        """Write the state to ``checkpoint_path`` atomically (cloudpickle)."""
        payload = cloudpickle.dumps(self.get_state())
        directory = os.path.dirname(os.path.abspath(checkpoint_path))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".searcher-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
            os.replace(tmp, checkpoint_path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def restore(self, checkpoint_path: str) -> None:
        """Continue the search saved at ``checkpoint_path``."""
        with open(checkpoint_path, "rb") as f:
            state = cloudpickle.load(f)
        self.set_state(state)

    def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
        """``save`` into ``checkpoint_dir`` under Ray's file name."""
        self.save(os.path.join(checkpoint_dir, self.CKPT_FILE_TMPL.format(session_str)))

    def restore_from_dir(self, checkpoint_dir: str) -> None:
        """``restore`` the newest searcher state file in ``checkpoint_dir``."""
        prefix, suffix = self.CKPT_FILE_TMPL.split("{}")
        candidates = [
            os.path.join(checkpoint_dir, name)
            for name in os.listdir(checkpoint_dir)
            if name.startswith(prefix) and name.endswith(suffix)
        ]
        if not candidates:
            raise FileNotFoundError(
                f"no searcher state ({self.CKPT_FILE_TMPL.format('*')}) in {checkpoint_dir}; "
                "was the experiment saved with a searcher?"
            )
        self.restore(max(candidates, key=os.path.getmtime))

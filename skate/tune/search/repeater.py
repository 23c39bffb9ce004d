"""``Repeater``: run each suggested config several times and report the mean.

Noisy objectives (different seeds, data shuffles) are fairer to compare on an
average. The repeater asks its searcher for a config, hands it out ``repeat``
times (adding ``"__trial_index__": 0..repeat-1`` when ``set_index``, so the
trainable can seed itself), and once every repeat has completed tells the
searcher the mean of ``metric`` over them, under the id of the group's first
trial (the only id the searcher has seen).

Repeats whose result lacks the metric (or that errored) are left out of the
mean; if none has it, the searcher is told the trial failed.

>>> from skate.tune.search.basic_variant import BasicVariantGenerator
>>> rep = Repeater(BasicVariantGenerator(random_state=0), repeat=2)
>>> rep.set_search_properties("loss", "min", {"lr": 0.1}, num_samples=1)
True
>>> rep.suggest("a"), rep.suggest("b"), rep.suggest("c")
({'lr': 0.1, '__trial_index__': 0}, {'lr': 0.1, '__trial_index__': 1}, 'FINISHED')
"""

from __future__ import annotations

import copy
import logging
import math
import numbers

from skate.tune.search.searcher import Searcher

__all__ = ["TRIAL_INDEX", "Repeater"]

logger = logging.getLogger(__name__)

TRIAL_INDEX = "__trial_index__"
"""Config key holding a repeat's index within its group."""


class _Group:
    """The ``repeat`` trials that share one suggested config."""

    def __init__(self, primary_trial_id: str, config: dict, size: int):
        self.primary_trial_id = primary_trial_id  # the id the wrapped searcher knows
        self.config = config
        self.size = size
        self.trial_ids: list[str] = [primary_trial_id]  # len <= size
        self.scores: dict[str, float] = {}  # trial id -> metric (nan when missing)
        self.errors = 0

    def full(self) -> bool:
        return len(self.trial_ids) >= self.size

    def done(self) -> bool:
        return len(self.scores) >= self.size


class Repeater(Searcher):
    """Repeats each config of ``searcher`` ``repeat`` times; reports the mean metric.

    Args:
        searcher: The searcher whose configs are repeated.
        repeat: Trials per config (>= 1).
        set_index: Add ``__trial_index__`` to each repeat's config.
    """

    def __init__(self, searcher: Searcher, repeat: int = 1, set_index: bool = True):
        if not isinstance(searcher, Searcher):
            raise TypeError(f"Repeater wraps a Searcher; got {searcher!r}")
        if isinstance(repeat, bool) or not (isinstance(repeat, numbers.Integral) and repeat >= 1):
            raise ValueError(f"repeat must be an int >= 1; got {repeat!r}")
        self.searcher = searcher
        self.repeat = int(repeat)
        self._set_index = set_index
        self._groups: dict[str, _Group] = {}  # every trial id handed out -> its group
        self._current: _Group | None = None  # the group still handing out repeats
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    @property
    def metric(self):
        return self.searcher.metric

    @property
    def mode(self):
        return self.searcher.mode

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str):
        if self._current is None or self._current.full():
            config = self.searcher.suggest(trial_id)
            if config is None or config == Searcher.FINISHED:
                return config
            self._current = _Group(trial_id, config, self.repeat)
            index = 0
        else:
            index = len(self._current.trial_ids)
            self._current.trial_ids.append(trial_id)
        self._groups[trial_id] = self._current
        config = copy.deepcopy(self._current.config)
        if self._set_index:
            config[TRIAL_INDEX] = index
        return config

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        group = self._groups.get(trial_id)
        if group is None:
            logger.warning("Repeater was told trial %s completed, but never suggested it", trial_id)
            return
        if trial_id in group.scores:
            return
        value = (result or {}).get(self.metric) if not error else None
        group.scores[trial_id] = float(value) if isinstance(value, numbers.Real) else math.nan
        group.errors += int(error)
        if not group.done():
            return
        scores = [s for s in group.scores.values() if not math.isnan(s)]
        if scores:
            mean = {self.metric: sum(scores) / len(scores)}
            self.searcher.on_trial_complete(group.primary_trial_id, result=mean)
        else:
            self.searcher.on_trial_complete(group.primary_trial_id, result=None, error=True)
        for tid in group.trial_ids:
            self._groups.pop(tid, None)

    def get_state(self) -> dict:
        own = copy.deepcopy({k: v for k, v in self.__dict__.items() if k != "searcher"})
        return {"repeater": own, "searcher": self.searcher.get_state()}

    def set_state(self, state: dict) -> None:
        self.__dict__.update(state["repeater"])
        self.searcher.set_state(state["searcher"])

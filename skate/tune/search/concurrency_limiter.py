"""``ConcurrencyLimiter``: cap how many of a searcher's trials are live at once.

``suggest`` returns ``None`` ("ask again later") while ``max_concurrent``
suggested trials have not completed; everything else goes to the wrapped
searcher. With ``batch=True`` the limiter waits for the *whole* batch of
``max_concurrent`` trials and then reports their completions to the searcher
together, so a batch-minded searcher sees all results at once.

If the wrapped searcher can cap concurrency itself
(``set_max_concurrency`` returns ``True``, as ``BasicVariantGenerator`` does),
the limiter steps aside, except in batch mode, which only the limiter does.

>>> from skate.tune.search.basic_variant import BasicVariantGenerator
>>> from skate.tune.search.sample import uniform
>>> limiter = ConcurrencyLimiter(BasicVariantGenerator(random_state=0), max_concurrent=1)
>>> limiter.set_search_properties(None, None, {"x": uniform(0, 1)}, num_samples=3)
True
>>> isinstance(limiter.suggest("a"), dict), limiter.suggest("b")
(True, None)
>>> limiter.on_trial_complete("a", {"loss": 1.0})
>>> isinstance(limiter.suggest("b"), dict)
True
"""

from __future__ import annotations

import copy
import numbers

from skate.tune.search.searcher import Searcher

__all__ = ["ConcurrencyLimiter"]


class ConcurrencyLimiter(Searcher):
    """Wraps ``searcher`` so that at most ``max_concurrent`` of its trials run at once.

    Args:
        searcher: The searcher to limit.
        max_concurrent: Live trials at most (>= 1).
        batch: Hold completions until the whole batch of ``max_concurrent``
            trials has finished, then report them together.
    """

    def __init__(self, searcher: Searcher, max_concurrent: int, batch: bool = False):
        if not isinstance(searcher, Searcher):
            raise TypeError(f"ConcurrencyLimiter wraps a Searcher; got {searcher!r}")
        if isinstance(max_concurrent, bool) or not (
            isinstance(max_concurrent, numbers.Integral) and max_concurrent >= 1
        ):
            raise ValueError(f"max_concurrent must be an int >= 1; got {max_concurrent!r}")
        self.searcher = searcher
        self.max_concurrent = int(max_concurrent)
        self.batch = batch
        self.live_trials: set[str] = set()  # suggested, completion not yet passed on
        # batch mode: live trials whose completion is held back, in arrival order
        self.cached_results: dict[str, tuple[dict | None, bool]] = {}
        self._limit = self._takes_limit()
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    @property
    def metric(self):
        return self.searcher.metric

    @property
    def mode(self):
        return self.searcher.mode

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        self._limit = self._takes_limit()
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def _takes_limit(self) -> bool:
        """Whether this wrapper enforces the cap (else the searcher does)."""
        capped_by_searcher = self.searcher.set_max_concurrency(self.max_concurrent)
        return self.batch or not capped_by_searcher

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        # Already capped by this wrapper; an outer cap would be a second, conflicting one.
        return True

    def suggest(self, trial_id: str):
        if not self._limit:
            return self.searcher.suggest(trial_id)
        if len(self.live_trials) >= self.max_concurrent:
            return None
        suggestion = self.searcher.suggest(trial_id)
        if suggestion is not None and suggestion != Searcher.FINISHED:
            self.live_trials.add(trial_id)
        return suggestion

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if not self._limit or trial_id in self.live_trials:
            self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        if not self._limit:
            self.searcher.on_trial_complete(trial_id, result=result, error=error)
            return
        if trial_id not in self.live_trials or trial_id in self.cached_results:
            return
        if not self.batch:
            self.searcher.on_trial_complete(trial_id, result=result, error=error)
            self.live_trials.discard(trial_id)
            return
        self.cached_results[trial_id] = (result, error)
        if len(self.cached_results) < len(self.live_trials):
            return
        for done_id, (done_result, done_error) in self.cached_results.items():
            self.searcher.on_trial_complete(done_id, result=done_result, error=done_error)
            self.live_trials.discard(done_id)
        self.cached_results = {}

    def add_evaluated_point(self, *args, **kwargs) -> None:
        self.searcher.add_evaluated_point(*args, **kwargs)

    def get_state(self) -> dict:
        own = copy.deepcopy({k: v for k, v in self.__dict__.items() if k != "searcher"})
        return {"limiter": own, "searcher": self.searcher.get_state()}

    def set_state(self, state: dict) -> None:
        self.__dict__.update(state["limiter"])
        self.searcher.set_state(state["searcher"])

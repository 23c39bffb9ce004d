"""``BasicVariantGenerator``: grid and random search, Tune's default searcher.

It proposes the configs of the variant generator
(``skate.tune.search.variant_generator``) one at a time: ``num_samples``
rounds, each the whole grid with fresh random samples. The first rounds take
one point of ``points_to_evaluate`` each, merged over the param space (a point
fixes some values; the grid and the other domains still expand around it), so
points count towards ``num_samples`` exactly as in Ray (and all of them run,
even if there are more points than ``num_samples``). When the rounds are
used up ``suggest`` returns ``FINISHED``; the total is ``total_samples``.

Unlike Ray's (a ``SearchAlgorithm`` that builds trials), this one is a plain
``Searcher``: the controller makes trials from its configs, so every search
algorithm reaches the controller through one interface.

Each round is generated when it starts and kept as a list, so the state
pickles (``save``/``restore``) and a restored generator continues with the
same configs.

>>> from skate.tune.search.sample import grid_search, uniform
>>> gen = BasicVariantGenerator(random_state=0)
>>> gen.set_search_properties(None, None, {"a": grid_search([1, 2]), "b": uniform(0, 1)},
...                           num_samples=2)
True
>>> configs = [gen.suggest(f"t{i}") for i in range(5)]
>>> [c["a"] for c in configs[:4]], configs[4], gen.total_samples
([1, 2, 1, 2], 'FINISHED', 4)
"""

from __future__ import annotations

import copy
import numbers
import sys
from typing import Any

from skate.tune.search.sample import Rng
from skate.tune.search.searcher import Searcher, validate_mode
from skate.tune.search.variant_generator import (
    apply_preset,
    check_space,
    count_variants,
    generate_variants,
)

__all__ = ["BasicVariantGenerator"]


class BasicVariantGenerator(Searcher):
    """Grid search and random sampling over a Tune param space.

    Args:
        points_to_evaluate: Partial configs to run first, one per round.
        max_concurrent: Live trials at most; 0 means no limit.
        constant_grid_search: Sample the random values once per round and
            share them across the grid, instead of per grid point.
        random_state: Int seed, numpy ``Generator``/``RandomState``, or None
            (numpy's global generator, as Ray).
    """

    def __init__(
        self,
        points_to_evaluate: list[dict] | None = None,
        max_concurrent: int = 0,
        constant_grid_search: bool = False,
        random_state: Any = None,
    ):
        super().__init__()
        if points_to_evaluate is not None and not (
            isinstance(points_to_evaluate, list)
            and all(isinstance(p, dict) for p in points_to_evaluate)
        ):
            raise TypeError(
                f"points_to_evaluate must be a list of config dicts; got {points_to_evaluate!r}"
            )
        self._check_max_concurrent(max_concurrent)
        self._points: list[dict] = copy.deepcopy(points_to_evaluate or [])
        self._max_concurrent = max_concurrent
        self._constant_grid_search = constant_grid_search
        self._rng = Rng(random_state)
        self._space: Any = None  # None until set_search_properties
        self._rounds_left = 0  # rounds not started yet
        self._queue: list[dict] = []  # configs of the current round not yet suggested
        self._total_samples = 0
        self._live: set[str] = set()  # suggested, not completed
        self._finished = False

    @staticmethod
    def _check_max_concurrent(max_concurrent: Any) -> None:
        if isinstance(max_concurrent, bool) or not (
            isinstance(max_concurrent, numbers.Integral) and max_concurrent >= 0
        ):
            raise ValueError(
                f"max_concurrent must be an int >= 0 (0 = no limit); got {max_concurrent!r}"
            )

    @property
    def total_samples(self) -> int:
        """How many configs this generator proposes in all."""
        return self._total_samples

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        num_samples = spec.get("num_samples", 1)
        if num_samples == -1:  # Ray's "until stopped"
            num_samples = sys.maxsize
        if isinstance(num_samples, bool) or not (
            isinstance(num_samples, numbers.Integral) and num_samples >= 1
        ):
            raise ValueError(
                f"num_samples must be an int >= 1 (or -1: no limit); got {num_samples!r}"
            )
        validate_mode(mode)
        if metric is not None:
            self._metric = metric
        if mode is not None:
            self._mode = mode
        space = copy.deepcopy(config if config is not None else {})
        check_space(space)
        # Every point runs, each as one round (as Ray), even past num_samples.
        # Presets are applied now so that a bad point fails here, not mid-experiment.
        rounds = max(num_samples, len(self._points))
        preset_counts = [count_variants(apply_preset(space, p)) for p in self._points]
        self._total_samples = sum(preset_counts) + (rounds - len(preset_counts)) * count_variants(
            space
        )
        self._space = space
        self._rounds_left = rounds
        self._queue = []
        self._finished = False
        return True

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self._check_max_concurrent(max_concurrent)
        self._max_concurrent = max_concurrent
        return True

    def suggest(self, trial_id: str) -> dict | str | None:
        if self._space is None:
            raise RuntimeError(
                "BasicVariantGenerator has no param space: call "
                "set_search_properties(metric, mode, param_space, num_samples=...) first"
            )
        if self._finished:
            return Searcher.FINISHED
        if self._max_concurrent and len(self._live) >= self._max_concurrent:
            return None
        if not self._queue and not self._start_round():
            self._finished = True
            return Searcher.FINISHED
        self._live.add(trial_id)
        return self._queue.pop(0)

    def _start_round(self) -> bool:
        if self._rounds_left <= 0:
            return False
        self._rounds_left -= 1
        space = apply_preset(self._space, self._points.pop(0)) if self._points else self._space
        self._queue = [
            config for _, config in generate_variants(space, self._constant_grid_search, self._rng)
        ]
        return True

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        self._live.discard(trial_id)

    def is_finished(self) -> bool:
        """Whether ``suggest`` has returned ``FINISHED``."""
        return self._finished

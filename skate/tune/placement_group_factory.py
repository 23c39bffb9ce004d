"""PlacementGroupFactory: the resources of a trial that starts actors of its own.

A trial with a factory runs in a placement group made from its bundles: the
trial's actor takes the first bundle, and the trainable places its own actors
(rollout workers, training workers) in the others through
``skate.util.get_current_placement_group()``.

>>> from skate import tune
>>> pgf = tune.PlacementGroupFactory([{"CPU": 1}, {"CPU": 2}], strategy="SPREAD")
>>> pgf.required_resources, pgf.head_bundle
({'CPU': 3.0}, {'CPU': 1})
"""

from __future__ import annotations

_STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")


class PlacementGroupFactory:
    """Bundles (list of resource dicts) and a strategy for one trial's placement group."""

    def __init__(self, bundles: list, strategy: str = "PACK"):
        if not isinstance(bundles, (list, tuple)) or not bundles:
            raise ValueError("PlacementGroupFactory needs a non-empty list of bundles, e.g. "
                             "[{'CPU': 1}, {'CPU': 2}].")
        clean = []
        for i, bundle in enumerate(bundles):
            if not isinstance(bundle, dict):
                raise ValueError(f"bundle {i} must be a dict of resources, got {bundle!r}.")
            for k, v in bundle.items():
                if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                    raise ValueError(f"bundle {i}: resource {k!r} must be a number >= 0, "
                                     f"got {v!r}.")
            clean.append({k: v for k, v in bundle.items() if v})
        if strategy not in _STRATEGIES:
            raise ValueError(f"strategy must be one of {_STRATEGIES}, got {strategy!r}.")
        # An empty head bundle is allowed in Ray (the trial actor takes no resources).
        self.bundles = clean
        self.strategy = strategy

    @property
    def head_bundle(self) -> dict:
        return self.bundles[0]

    @property
    def required_resources(self) -> dict:
        total: dict = {}
        for bundle in self.bundles:
            for k, v in bundle.items():
                total[k] = total.get(k, 0.0) + float(v)
        return total

    def __eq__(self, other):
        return (isinstance(other, PlacementGroupFactory) and other.bundles == self.bundles
                and other.strategy == self.strategy)

    def __repr__(self):
        return f"PlacementGroupFactory({self.bundles!r}, strategy={self.strategy!r})"

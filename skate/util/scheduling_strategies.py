"""Scheduling strategies with Ray's names (``ray.util.scheduling_strategies``): the core's
public API, here.

>>> from skate.util.scheduling_strategies import NodeAffinitySchedulingStrategy
>>> NodeAffinitySchedulingStrategy("ab" * 14, soft=True).soft
True
"""

from skate import (
    NodeAffinitySchedulingStrategy,
    PlacementGroupSchedulingStrategy,
)

__all__ = ["NodeAffinitySchedulingStrategy", "PlacementGroupSchedulingStrategy"]

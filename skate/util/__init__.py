"""Utilities on the public API: drop-ins for parallel Python, placement groups, strategies.

``ActorPool`` is here; the drop-ins are submodules, loaded on first use:
``skate.util.multiprocessing`` (``Pool``), ``skate.util.queue`` (``Queue``),
``skate.util.joblib`` (``register_skate``) and
``skate.util.scheduling_strategies``.

>>> import skate
>>> skate.util.queue.Queue.__name__, skate.util.ActorPool.__name__
('Queue', 'ActorPool')
"""

import importlib

from skate import get_node_ip_address, list_named_actors
from skate.util.actor_pool import ActorPool
from skate.util.placement_group import (
    PlacementGroup,
    get_current_placement_group,
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)

_SUBMODULES = {
    "actor_pool",
    "joblib",
    "multiprocessing",
    "placement_group",
    "queue",
    "scheduling_strategies",
}

__all__ = [
    "ActorPool",
    "PlacementGroup",
    "get_current_placement_group",
    "get_node_ip_address",
    "get_placement_group",
    "list_named_actors",
    "placement_group",
    "placement_group_table",
    "remove_placement_group",
]


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f"skate.util.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'skate.util' has no attribute {name!r}")

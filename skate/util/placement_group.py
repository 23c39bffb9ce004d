"""Placement groups (Ray's ``ray.util.placement_group``): the core's public API, here.

>>> from skate.util.placement_group import placement_group, PlacementGroup
>>> placement_group.__module__
'skate.core.placement_group'
"""

from skate import (
    PlacementGroup,
    PlacementGroupID,
    get_current_placement_group,
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)

__all__ = [
    "PlacementGroup",
    "PlacementGroupID",
    "get_current_placement_group",
    "get_placement_group",
    "placement_group",
    "placement_group_table",
    "remove_placement_group",
]

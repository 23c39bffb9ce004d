"""Scheduling strategies with Ray's names.

On one node every strategy places work on that node; the cluster scheduler
honours them across nodes.
"""

from __future__ import annotations


class NodeAffinitySchedulingStrategy:
    """Run on the node ``node_id``; with ``soft=True`` elsewhere if it cannot."""

    def __init__(self, node_id: str, soft: bool, _spill_on_unavailable: bool = False,
                 _fail_on_unavailable: bool = False):
        if not isinstance(node_id, str):
            raise TypeError("node_id must be the node's hex id (a str)")
        self.node_id = node_id
        self.soft = soft


class PlacementGroupSchedulingStrategy:
    """Run inside a placement group's bundle."""

    def __init__(self, placement_group, placement_group_bundle_index: int = -1,
                 placement_group_capture_child_tasks=None):
        self.placement_group = placement_group
        self.placement_group_bundle_index = placement_group_bundle_index
        self.placement_group_capture_child_tasks = placement_group_capture_child_tasks


__all__ = ["NodeAffinitySchedulingStrategy", "PlacementGroupSchedulingStrategy"]

"""The cluster's state (Ray's ``ray.util.state``): the core's public API, here.

>>> from skate.util.state import list_actors, summarize_actors
>>> list_actors.__module__
'skate.core.state'
"""

from skate.core.state import (
    ActorState,
    JobState,
    NodeState,
    PlacementGroupState,
    TaskState,
    get_actor,
    get_job,
    get_node,
    get_placement_group,
    get_task,
    list_actors,
    list_jobs,
    list_nodes,
    list_placement_groups,
    list_tasks,
    summarize_actors,
    summarize_tasks,
    timeline,
)

__all__ = [
    "ActorState",
    "JobState",
    "NodeState",
    "PlacementGroupState",
    "TaskState",
    "get_actor",
    "get_job",
    "get_node",
    "get_placement_group",
    "get_task",
    "list_actors",
    "list_jobs",
    "list_nodes",
    "list_placement_groups",
    "list_tasks",
    "summarize_actors",
    "summarize_tasks",
    "timeline",
]

"""The cluster's state (Ray's ``ray.util.state``): the core's public API, here.

>>> from skate.util.state import list_actors, summarize_actors
>>> list_actors.__module__
'skate.core.state'
"""

from skate import state as _state

ActorState = _state.ActorState
JobState = _state.JobState
NodeState = _state.NodeState
PlacementGroupState = _state.PlacementGroupState
TaskState = _state.TaskState
get_actor = _state.get_actor
get_job = _state.get_job
get_node = _state.get_node
get_placement_group = _state.get_placement_group
get_task = _state.get_task
list_actors = _state.list_actors
list_jobs = _state.list_jobs
list_nodes = _state.list_nodes
list_placement_groups = _state.list_placement_groups
list_tasks = _state.list_tasks
summarize_actors = _state.summarize_actors
summarize_tasks = _state.summarize_tasks
timeline = _state.timeline

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

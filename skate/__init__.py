"""Skate: scale Python from a laptop to a cluster, with Ray's API.

>>> import skate
>>> @skate.remote
... def square(x):
...     return x * x
>>> skate.get([square.remote(i) for i in range(4)])
[0, 1, 4, 9]

Importing skate starts nothing; the first ``init()`` (or the first remote
call) starts a private node. Names are loaded on first use, so a worker
process that needs only the runtime does not pay for the whole API.
"""

import importlib

__version__ = "0.1.0"

_LAZY = {
    "ActorClass": "skate.core.actor",
    "ActorHandle": "skate.core.actor",
    "method": "skate.core.actor",
    "available_resources": "skate.core.api",
    "cancel": "skate.core.api",
    "cluster_resources": "skate.core.api",
    "get": "skate.core.api",
    "get_actor": "skate.core.api",
    "get_gpu_ids": "skate.core.api",
    "init": "skate.core.api",
    "is_initialized": "skate.core.api",
    "kill": "skate.core.api",
    "nodes": "skate.core.api",
    "put": "skate.core.api",
    "remote": "skate.core.api",
    "shutdown": "skate.core.api",
    "wait": "skate.core.api",
    "ObjectRef": "skate.core.object_ref",
    "ObjectRefGenerator": "skate.core.generator",
    "get_runtime_context": "skate.core.runtime_context",
    "timeline": "skate.core.state",
}
#: The core's public API for the libraries (skate.util re-exports it under Ray's names:
#: ``skate.util.placement_group``, ``skate.util.scheduling_strategies``, ``skate.util.state``),
#: so no library imports ``skate.core``; tests/test_boundaries.py checks it.
_CORE_API = {
    "PlacementGroup": "skate.core.placement_group",
    "PlacementGroupID": "skate.core.placement_group",
    "get_current_placement_group": "skate.core.placement_group",
    "get_placement_group": "skate.core.placement_group",
    "placement_group": "skate.core.placement_group",
    "placement_group_table": "skate.core.placement_group",
    "remove_placement_group": "skate.core.placement_group",
    "NodeAffinitySchedulingStrategy": "skate.core.scheduling_strategies",
    "PlacementGroupSchedulingStrategy": "skate.core.scheduling_strategies",
    "get_node_ip_address": "skate.core.api",
    "list_named_actors": "skate.core.api",
    "RefPromise": "skate.core.promise",
    "state": "skate.core.state",  # the module itself: skate.state.list_actors(...), ...
    "metrics": "skate.core.metrics",  # the module itself: skate.metrics.Counter(...), ...
}
_SUBMODULES = {"actor", "cloudpickle", "cluster_utils", "dashboard", "exceptions",
               "experimental", "job_config", "job_submission", "serve", "train", "tune", "util"}

__all__ = sorted(_LAZY) + sorted(_CORE_API) + sorted(_SUBMODULES) + ["__version__"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in ("state", "metrics"):
        value = importlib.import_module(_CORE_API[name])
    elif name in _CORE_API:
        value = getattr(importlib.import_module(_CORE_API[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"skate.{name}")
    else:
        raise AttributeError(f"module 'skate' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return __all__

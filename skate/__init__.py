"""Skate: scale Python from a laptop to a cluster, with Ray's API.

>>> import skate
>>> @skate.remote
... def square(x):
...     return x * x
>>> skate.get([square.remote(i) for i in range(4)])
[0, 1, 4, 9]

Importing skate starts nothing; the first ``init()`` (or the first remote
call) starts a private node.
"""

from skate import actor, exceptions, util
from skate.core.actor import ActorClass, ActorHandle, method
from skate.core.api import (
    available_resources,
    cancel,
    cluster_resources,
    get,
    get_actor,
    get_gpu_ids,
    init,
    is_initialized,
    kill,
    nodes,
    put,
    remote,
    shutdown,
    wait,
)
from skate.core.object_ref import ObjectRef
from skate.core.runtime_context import get_runtime_context

__version__ = "0.1.0"

__all__ = [
    "ActorClass", "ActorHandle", "ObjectRef", "actor", "available_resources", "util", "cancel",
    "cluster_resources", "exceptions", "get", "get_actor", "get_gpu_ids", "get_runtime_context",
    "init", "is_initialized", "kill", "method", "nodes", "put", "remote", "shutdown", "wait",
    "__version__",
]

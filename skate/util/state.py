"""The cluster's state (Ray's ``ray.util.state``): the core's public API, here.

>>> from skate.util.state import list_actors, summarize_actors
>>> list_actors.__module__
'skate.core.state'
"""

from skate import state as _state

__all__ = list(_state.__all__)
globals().update({name: getattr(_state, name) for name in __all__})

"""Module globals for functions shipped by value, shared within one pool process.

cloudpickle ships functions defined in ``__main__`` (and lambdas) by value, and
every shipment unpickles with its own copy of the globals it uses. So a global
that the initializer sets would stay invisible to the mapped function, which
breaks the most common ``Pool(initializer=...)`` pattern (Ray's Pool has this
problem: ray-project/ray#37705).

A pool process therefore rebinds each such function to one namespace per
module name, as if that module had been imported once in the process: the
first value that arrives for a global wins, and whatever the process's own
code assigns stays. That is the standard library's semantics, where a worker
keeps its own copy of the module from its start and later changes in the
parent are not seen. Helper functions shipped along (same original module)
are rebound too. Functions pickled by reference (importable modules) already
share their real module and are left alone.
"""

from __future__ import annotations

import builtins
import sys
import types

__all__ = ["SharedGlobals"]


def _shipped_by_value(func: types.FunctionType) -> bool:
    module = sys.modules.get(func.__module__)
    return module is None or func.__globals__ is not getattr(module, "__dict__", None)


class SharedGlobals:
    """The namespaces of one process, by module name.

    >>> import cloudpickle
    >>> ns = {"__name__": "__main__"}
    >>> exec("def init():\\n    global x\\n    x = 1\\ndef read():\\n    return x\\nx = 0", ns)
    >>> init, read = (cloudpickle.loads(cloudpickle.dumps(f)) for f in (ns["init"], ns["read"]))
    >>> shared = SharedGlobals()
    >>> shared.adopt(init)()
    >>> shared.adopt(read)()
    1
    """

    def __init__(self):
        # module name -> the namespace its by-value functions run in
        self._namespaces: dict[str, dict] = {}

    def adopt(self, obj):
        """``obj`` rebound to this process's namespace if it is a function shipped by value;
        anything else unchanged."""
        if isinstance(obj, types.FunctionType) and _shipped_by_value(obj):
            return self._rebind(obj, {})
        return obj

    def _rebind(self, func: types.FunctionType, memo: dict) -> types.FunctionType:
        if id(func) in memo:
            return memo[id(func)]
        ns = self._namespaces.setdefault(func.__module__, {"__builtins__": builtins})
        new = types.FunctionType(
            func.__code__, ns, func.__name__, func.__defaults__, func.__closure__
        )
        new.__kwdefaults__ = func.__kwdefaults__
        new.__qualname__ = func.__qualname__
        new.__doc__ = func.__doc__
        new.__dict__.update(func.__dict__)
        memo[id(func)] = new
        for name, value in func.__globals__.items():
            if name in ns or name == "__builtins__":
                continue  # first value wins; the process's own assignments stay
            if isinstance(value, types.FunctionType) and value.__globals__ is func.__globals__:
                value = self._rebind(value, memo)  # a helper shipped with it
            ns[name] = value
        return new

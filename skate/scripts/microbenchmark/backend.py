"""Finding and probing the backend: the module imported under the name ``ray``.

Nothing here imports skate or ray at module level, so the package also runs under a
Ray-only virtualenv; the backend is imported by :func:`import_backend` at run time.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys


def repo_root() -> str:
    """The source checkout this file is in."""
    # <root>/skate/scripts/microbenchmark/backend.py -> <root>
    here = os.path.abspath(__file__)
    for _ in range(4):
        here = os.path.dirname(here)
    return here


def import_backend(name: str):
    """Import the backend module ("ray" or "skate") and return it."""
    if name == "ray":
        # Never phone home from a benchmark run.
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        return importlib.import_module(name)
    except ImportError:
        if name != "skate":
            raise
        # Running from a source checkout that is not pip-installed: put the repo root
        # on sys.path, and on PYTHONPATH so worker processes can import skate too.
        root = repo_root()
        if root not in sys.path:
            sys.path.insert(0, root)
        pp = os.environ.get("PYTHONPATH", "")
        if root not in pp.split(os.pathsep):
            os.environ["PYTHONPATH"] = root + (os.pathsep + pp if pp else "")
        return importlib.import_module(name)


def backend_version(mod) -> str:
    """The backend's ``__version__``, or "unknown"."""
    return str(getattr(mod, "__version__", "unknown"))


def kill_all(ray, handles):
    """Kill the given actors, ignoring errors (a backend without ray.kill is left alone)."""
    kill = getattr(ray, "kill", None)
    if kill is None:
        return
    for h in handles:
        try:
            kill(h)
        except Exception:
            pass


def supports_kwarg(fn, name) -> bool:
    """Whether `fn` accepts the keyword argument `name` (or any keyword)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def placement_group_api(ray):
    """(placement_group, remove_placement_group) from the backend, or None."""
    util = getattr(ray, "util", None)
    if util is None:
        try:
            util = importlib.import_module(ray.__name__ + ".util")
        except ImportError:
            return None
    create = getattr(util, "placement_group", None)
    remove = getattr(util, "remove_placement_group", None)
    if inspect.ismodule(create):  # util.placement_group is a submodule
        remove = remove or getattr(create, "remove_placement_group", None)
        create = getattr(create, "placement_group", None)
    if create is None:
        try:
            mod = importlib.import_module(ray.__name__ + ".util.placement_group")
            create = getattr(mod, "placement_group", None)
            remove = remove or getattr(mod, "remove_placement_group", None)
        except ImportError:
            return None
    if not callable(create) or not callable(remove):
        return None
    return create, remove

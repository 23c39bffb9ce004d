"""Skate's dashboard: a web page and a JSON API over the state API, and the jobs API.

One dashboard process per cluster, started by ``skate start --head`` (or by
``start_dashboard`` for any cluster): it reads the cluster through the state
API (without joining it), samples its resources, serves http://127.0.0.1:8265
and runs submitted jobs on the head.
See docs/dashboard.md and docs/jobs.md.

>>> import skate.dashboard
>>> sorted(skate.dashboard.__all__)
['DashboardConfig', 'DashboardProcess', 'DashboardUnavailable', 'create_app', 'start_dashboard']

Importing it starts nothing and loads nothing heavy: names load on first use.
"""

import importlib

_LAZY = {
    "DashboardConfig": "skate.dashboard.config",
    "DashboardProcess": "skate.dashboard.launch",
    "DashboardUnavailable": "skate.dashboard.launch",
    "create_app": "skate.dashboard.app",
    "start_dashboard": "skate.dashboard.launch",
}
__all__ = sorted(_LAZY)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'skate.dashboard' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value

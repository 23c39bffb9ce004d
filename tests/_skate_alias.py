"""Make ``import skate`` resolve to real Ray when SKATE_TEST_AGAINST_RAY=1.

The suite is written against Skate's public API (which mirrors Ray 2.x).  To
check that every test encodes Ray's real semantics, the same tests can be run
against Ray: this module registers Ray's modules under Skate's names before
any test module imports them.

It is imported from ``tests/__init__.py`` (so that worker processes which
unpickle functions defined in test modules by reference get the alias too)
and from ``tests/conftest.py``.
"""

import os
import sys

AGAINST_RAY = os.environ.get("SKATE_TEST_AGAINST_RAY") == "1"

_ALIASES = {
    "skate": "ray",
    "skate.exceptions": "ray.exceptions",
    "skate.util": "ray.util",
    "skate.actor": "ray.actor",
    "skate.util.scheduling_strategies": "ray.util.scheduling_strategies",
    "skate.util.actor_pool": "ray.util.actor_pool",
    "skate.util.queue": "ray.util.queue",
    "skate.util.multiprocessing": "ray.util.multiprocessing",
    "skate.job_config": "ray.job_config",
}


def install() -> None:
    """Alias Ray's modules under Skate's names (Ray mode only; idempotent)."""
    if not AGAINST_RAY:
        return
    import importlib

    for skate_name, ray_name in _ALIASES.items():
        sys.modules[skate_name] = importlib.import_module(ray_name)


install()

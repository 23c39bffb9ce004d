"""Placement groups: reserve resources on nodes as a unit, then run tasks and actors in them.

Public core API, re-exported as ``skate.util.placement_group`` (Ray's home for it).

>>> import skate
>>> from skate.util import placement_group, remove_placement_group
>>> from skate.util.scheduling_strategies import PlacementGroupSchedulingStrategy
>>> pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="PACK")  # doctest: +SKIP
>>> skate.get(pg.ready())                                          # doctest: +SKIP
>>> @skate.remote
... def f():
...     return 1
>>> f.options(
...     scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 0)).remote()  # doctest: +SKIP
>>> remove_placement_group(pg)                                     # doctest: +SKIP
"""

from __future__ import annotations

import os

from skate.core import runtime
from skate.core.config import placement_group_from_env
from skate.core.ids import BinaryID
from skate.core.promise import RefPromise
from skate.core.resources import validate


class PlacementGroupID(BinaryID):
    """The id of a placement group (``pg.id.hex()``)."""


class PlacementGroup:
    """A handle on a placement group; pass it to PlacementGroupSchedulingStrategy."""

    def __init__(self, pg_id: bytes, bundles: list, strategy: str = "PACK"):
        self.id = PlacementGroupID(pg_id)
        self.bundle_specs = [dict(b) for b in bundles]
        self.strategy = strategy

    @property
    def bundle_count(self) -> int:
        return len(self.bundle_specs)

    def ready(self):
        """An ObjectRef that becomes ready (True) once every bundle is reserved."""
        promise = RefPromise()

        def done(ok, value):
            if ok:
                promise.set_result(True)
            else:
                promise.set_exception(value)

        runtime.core().gcs.wait_placement_group(self.id.binary(), callback=done)
        return promise.ref

    def wait(self, timeout_seconds: float = 30) -> bool:
        """True once the group is created; False if ``timeout_seconds`` pass first."""
        ready, _ = runtime.core().wait([self.ready()], timeout=timeout_seconds)
        return bool(ready)

    def __reduce__(self):
        return (PlacementGroup, (self.id.binary(), self.bundle_specs, self.strategy))

    def __eq__(self, other):
        return isinstance(other, PlacementGroup) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"PlacementGroup({self.id.hex()}, {self.bundle_specs}, {self.strategy})"


def placement_group(bundles: list, strategy: str = "PACK", name: str = "",
                    lifetime: str | None = None, **_ignored) -> PlacementGroup:
    """Reserve ``bundles`` (a list of resource dicts) by ``strategy``, all or none.

    Strategies: PACK, SPREAD, STRICT_PACK, STRICT_SPREAD. Returns at once;
    ``pg.ready()`` / ``pg.wait()`` tell when the reservation is made.
    """
    validate(bundles, strategy)
    if lifetime not in (None, "detached"):
        raise ValueError(f"lifetime must be None or 'detached', got {lifetime!r}.")
    core = runtime.core()
    pg_id = os.urandom(14)
    core.gcs.create_placement_group(pg_id, bundles, strategy, name or None, core.namespace,
                                    core.job_id, lifetime == "detached")
    return PlacementGroup(pg_id, bundles, strategy)


def remove_placement_group(placement_group: PlacementGroup) -> None:
    """Release the group's reservation; tasks and actors running in it are stopped."""
    if not isinstance(placement_group, PlacementGroup):
        raise TypeError(f"remove_placement_group() takes a PlacementGroup, got "
                        f"{type(placement_group).__name__}.")
    runtime.core().gcs.remove_placement_group(placement_group.id.binary())


def get_placement_group(name: str) -> PlacementGroup:
    """The named placement group in the current namespace (ValueError if none)."""
    core = runtime.core()
    info = core.gcs.get_named_placement_group(name, core.namespace)
    if info is None:
        raise ValueError(f"Failed to look up placement group with name {name!r}.")
    return PlacementGroup(bytes.fromhex(info["placement_group_id"]),
                          list(info["bundles"].values()), info["strategy"])


def placement_group_table(placement_group: PlacementGroup | None = None) -> dict | None:
    """State of one group, or of all of them keyed by hex id."""
    pg_id = placement_group.id.binary() if placement_group is not None else None
    return runtime.core().gcs.placement_group_table(pg_id)


_current: list = []  # the PlacementGroup of this worker, once looked up


def get_current_placement_group() -> PlacementGroup | None:
    """The group the current task or actor runs in, if any (None in the driver).

    >>> get_current_placement_group() is None  # in the driver
    True
    """
    current = placement_group_from_env()
    if current is None:
        return None
    if not _current or _current[0].id.hex() != current[0]:
        pg_id = bytes.fromhex(current[0])
        info = runtime.core().gcs.placement_group_table(pg_id) or {}
        bundles = list((info.get("bundles") or {}).values())
        _current[:] = [PlacementGroup(pg_id, bundles, info.get("strategy", "PACK"))]
    return _current[0]

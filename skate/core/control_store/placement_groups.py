"""Placement groups: reserve bundles of resources on nodes, all or none.

``assign`` (pure) picks a node for every bundle from the nodes' free
resources, by strategy: PACK (as few nodes as possible), SPREAD (as many as
possible), STRICT_PACK (one node or nothing), STRICT_SPREAD (a different
node per bundle or nothing). The manager then reserves in two phases: it
asks each chosen node manager to *prepare* its bundles, and if any refuses
(its resources changed meanwhile) it returns those already prepared, so a
group holds all its bundles or none. Unplaced groups are retried as nodes
join or free up.

A reserved bundle ``i`` of group ``g`` turns, on its node, ``{"CPU": 2}`` into
the resources ``CPU_group_i_g`` and ``CPU_group_g`` (Ray's naming), which tasks
in the group ask for instead of plain CPUs.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from skate.core import resources as res
from skate.core.resources import validate

log = logging.getLogger(__name__)

PENDING, CREATED, REMOVED = "PENDING", "CREATED", "REMOVED"


def assign(bundles: list, strategy: str, available: dict) -> list | None:
    """A node id per bundle, or None if the group cannot be placed now.

    ``bundles`` are dicts of natural amounts; ``available`` maps node id ->
    free fixed-point units (see :mod:`resources`).
    """
    need = [res.to_units(b) for b in bundles]
    free = {n: dict(a) for n, a in sorted(available.items())}

    def take(node, units):
        res.subtract(free[node], units)

    if strategy in ("PACK", "STRICT_PACK"):
        total: dict = {}
        for u in need:
            res.add(total, u)
        for n in free:
            if res.fits(total, free[n]):
                return [n] * len(need)
        if strategy == "STRICT_PACK":
            return None
    out: list = []
    used: list = []
    for u in need:
        if strategy == "PACK":
            order = used + [n for n in free if n not in used]
        elif strategy == "SPREAD":
            order = [n for n in free if n not in used] + used
        else:  # STRICT_SPREAD
            order = [n for n in free if n not in used]
        node = next((n for n in order if res.fits(u, free[n])), None)
        if node is None:
            return None
        take(node, u)
        out.append(node)
        if node not in used:
            used.append(node)
    return out


@dataclass
class Group:
    pg_id: bytes
    bundles: list
    strategy: str
    name: str | None
    namespace: str
    job_id: str | None
    detached: bool
    state: str = PENDING
    nodes: list = field(default_factory=list)  # node id per bundle once created
    waiters: list = field(default_factory=list)  # (conn, rid) waiting for CREATED/REMOVED
    placing: bool = False

    def info(self) -> dict:
        return {
            "placement_group_id": self.pg_id.hex(), "name": self.name or "",
            "bundles": {i: dict(b) for i, b in enumerate(self.bundles)},
            "bundles_to_node_id": {i: n for i, n in enumerate(self.nodes)},
            "strategy": self.strategy, "state": self.state, "namespace": self.namespace,
        }


class PlacementGroups:
    """The control store's placement group table and the two-phase reservation."""

    def __init__(self, store):
        self.store = store  # the ControlStore: its lock and its node table (nodes.py)
        self.groups: dict[bytes, Group] = {}
        self.named: dict[tuple, bytes] = {}

    def create(self, pg_id, bundles, strategy, name, namespace, job_id, detached) -> dict:
        validate(bundles, strategy)
        if name:
            other = self.named.get((namespace, name))
            if other is not None and self.groups[other].state != REMOVED:
                raise ValueError(f"A placement group named {name!r} already exists in "
                                 f"namespace {namespace!r}.")
            self.named[(namespace, name)] = pg_id
        g = Group(pg_id, [dict(b) for b in bundles], strategy, name or None, namespace, job_id,
                  detached)
        self.groups[pg_id] = g
        self.try_place(g)
        return g.info()

    def try_place_all(self) -> None:
        for g in list(self.groups.values()):
            if g.state == PENDING and not g.placing:
                self.try_place(g)

    def try_place(self, g: Group) -> None:
        """Start a placement attempt in the background (it talks to node managers)."""
        cs = self.store
        available = {n: res.to_units(cs.nodes.available.get(n, {}))
                     for n in cs.nodes.raylets}
        nodes = assign(g.bundles, g.strategy, available)
        if nodes is None:
            return
        g.placing = True
        threading.Thread(target=self._reserve, args=(g, nodes), daemon=True,
                         name="skate-pg").start()

    def _reserve(self, g: Group, nodes: list) -> None:
        cs = self.store
        pg_hex = g.pg_id.hex()
        prepared = []
        ok = True
        for i, (bundle, node) in enumerate(zip(g.bundles, nodes)):
            raylet = cs.nodes.raylets.get(node)
            try:
                if raylet is None or not raylet.prepare_bundle(pg_hex, i, bundle, timeout=10):
                    ok = False
            except Exception as e:  # a node that died or answered badly: not reserved
                log.info("preparing bundle %d of %s on %s failed: %s", i, pg_hex, node, e)
                ok = False
            if not ok:
                break
            prepared.append((i, node))
        with cs.lock:
            g.placing = False
            if ok and g.state == PENDING:
                g.state = CREATED
                g.nodes = list(nodes)
                self._wake(g, True)
                return
        for i, node in prepared:  # all or nothing
            raylet = cs.nodes.raylets.get(node)
            if raylet is not None:
                raylet.return_bundle(pg_hex, i)

    def _wake(self, g: Group, ok: bool) -> None:
        waiters, g.waiters = g.waiters, []
        for conn, rid in waiters:
            conn.reply(rid, g.info() if ok else ValueError(
                f"The placement group {g.pg_id.hex()} was removed."), ok=ok)

    def wait(self, pg_id, conn, rid):
        g = self.groups.get(pg_id)
        if g is None:
            raise ValueError(f"No placement group {pg_id.hex()} (if the head's control store "
                             f"was restarted since it was made: groups are not kept across "
                             f"a restart).")
        if g.state == CREATED:
            return g.info()
        if g.state == REMOVED:
            raise ValueError(f"The placement group {pg_id.hex()} was removed.")
        g.waiters.append((conn, rid))
        return None

    def remove(self, pg_id) -> None:
        g = self.groups.get(pg_id)
        if g is None or g.state == REMOVED:
            return
        self._release(g)
        g.state = REMOVED
        if g.name and self.named.get((g.namespace, g.name)) == pg_id:
            del self.named[(g.namespace, g.name)]
        self._wake(g, False)

    def _release(self, g: Group) -> None:
        for i, node in enumerate(g.nodes):
            raylet = self.store.nodes.raylets.get(node)
            if raylet is not None:
                raylet.return_bundle(g.pg_id.hex(), i)
        g.nodes = []

    def node_died(self, node: str) -> None:
        """Groups with a bundle on a dead node are reserved again from scratch."""
        for g in self.groups.values():
            if g.state == CREATED and node in g.nodes:
                self._release(g)
                g.state = PENDING

    def job_finished(self, job_id: str) -> None:
        for g in list(self.groups.values()):
            if g.job_id == job_id and not g.detached:
                self.remove(g.pg_id)

    def table(self, pg_id=None):
        if pg_id is not None:
            g = self.groups.get(pg_id)
            return g.info() if g else {}
        return {g.pg_id.hex(): g.info() for g in self.groups.values()}

    def by_name(self, name: str, namespace: str):
        pg_id = self.named.get((namespace, name))
        return None if pg_id is None else self.groups[pg_id].info()

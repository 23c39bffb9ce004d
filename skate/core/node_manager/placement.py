"""Where a lease request should be served: here, or spilled to another node.

Pure policy over a snapshot of the cluster (no I/O), so it is unit-tested
without processes. A node manager serves a request locally when it can; it
spills a request to another node when the request can never fit here but fits
there, when it does not fit here *now* but another node has room now, when
the strategy spreads work, or when it pins another node.

``view`` maps node id -> ``NodeView``; amounts are fixed-point units
(see :mod:`resources`). SPREAD's round robin is the caller's state: it passes
its turn in (``spread_turn``) and advances it when a decision says it used it
(``Decision.spread``), so the same inputs always give the same decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from skate.core import resources as res

HERE = "here"


@dataclass(frozen=True)
class NodeView:
    total: dict
    available: dict
    alive: bool = True
    address: str = ""  # its node manager
    transfer_address: str = ""  # its object transfer (gRPC) server
    stream_address: str = ""  # its plain-socket object stream server


@dataclass(frozen=True)
class Decision:
    node: str | None  # HERE, another node's id, or None (queue here: nothing fits yet)
    infeasible: bool = False  # no live node could ever run it
    error: str | None = None  # the request can never be served (hard affinity to a dead node)
    unknown_target: bool = False  # pinned to a node this view has not heard of (yet)
    spread: bool = False  # SPREAD's turn was used: the caller advances its ``spread_turn``


def decide(units: dict, strategy, local: str, view: dict, queued_here: int = 0,
           preferred: str | None = None, spread_turn: int = 0) -> Decision:
    """Decide for one request. ``strategy`` is None, "DEFAULT", "SPREAD" or ("node", id, soft).

    ``preferred`` (locality) is the node holding the task's largest arguments: used
    when it has room now. ``spread_turn`` picks SPREAD's node (round robin over the
    candidates); a decision that used it has ``spread`` set.
    """
    alive = {n: v for n, v in view.items() if v.alive}
    here = alive.get(local)
    feasible = [n for n, v in sorted(alive.items()) if res.fits(units, v.total)]

    if isinstance(strategy, tuple) and strategy[0] == "node":
        _, target, soft = strategy
        tv = alive.get(target)
        if tv is not None and res.fits(units, tv.total):
            return Decision(HERE if target == local else target)
        if target not in view:  # it may have joined since this view was taken
            return Decision(None, unknown_target=True)
        if not soft:
            why = "is dead or unknown" if tv is None else "can never fit the request"
            return Decision(None, error=f"The node {target} that the task is pinned to "
                                        f"(NodeAffinitySchedulingStrategy, soft=False) {why}.")
        strategy = None

    if not feasible:
        return Decision(None, infeasible=True)

    if strategy == "SPREAD":
        fitting_now = [n for n in feasible if res.fits(units, alive[n].available)]
        pool = fitting_now or feasible
        choice = pool[spread_turn % len(pool)]
        return Decision(HERE if choice == local else choice, spread=True)

    if strategy is None and preferred in alive and res.fits(units, alive[preferred].available):
        return Decision(HERE if preferred == local else preferred)

    if here is not None and res.fits(units, here.total):
        if res.fits(units, here.available) and queued_here == 0:
            return Decision(HERE)
        # busy here: use a node with room now, else wait here
        others = [n for n in feasible if n != local and res.fits(units, alive[n].available)]
        if others:
            return Decision(_most_free(others, alive, units))
        return Decision(HERE if res.fits(units, here.available) else None)
    # never fits here: the feasible node with the most room (it queues there if busy)
    return Decision(_most_free(feasible, alive, units))


def _most_free(nodes: list, alive: dict, units: dict) -> str:
    def headroom(n):
        avail = alive[n].available
        return min((avail.get(k, 0) - v for k, v in units.items()), default=0), n

    return max(nodes, key=headroom)

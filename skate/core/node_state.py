"""What the nodes know: workers, objects and references, log files, resource demand.

Public core API, part of ``skate.state`` (and ``skate.util.state``) with
Ray's names: ``list_workers``, ``list_objects``, ``summarize_objects``,
``list_logs``, ``get_log``, plus ``cluster_status`` (what ``skate status``
prints). The control store knows which nodes are alive; each call then asks
every alive node's manager (``node_manager/introspection.py``), which for
objects asks every worker and driver of its node. A node that does not
answer within the timeout is left out and counted in the result's
``partial`` (listings) -- a listing never hangs on one stuck process.

>>> import skate
>>> from skate.util.state import list_objects
>>> skate.init()  # doctest: +SKIP
>>> ref = skate.put(b"x" * 10_000_000)  # doctest: +SKIP
>>> [o.object_size for o in list_objects(filters=[("object_id", "=", ref.hex())])]  # doctest: +SKIP
[10000069]
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterator

from skate.core.state_query import DEFAULT_LIMIT, DEFAULT_TIMEOUT_S, _cluster, _select

LOG_CHUNK = 1 << 20
MAX_TAIL_READ = 4 << 20  # a node answers at most this much per read


@dataclass(frozen=True)
class WorkerState:
    """One worker or driver process (Ray's ``WorkerState``)."""

    worker_id: str
    is_alive: bool
    worker_type: str  #: WORKER or DRIVER
    state: str  #: STARTING, IDLE, LEASED, DRIVER or DEAD
    pid: int | None
    node_id: str
    ip: str
    actor_class_name: str | None  #: the actor it runs, if any
    worker_launch_time_ms: int | None
    end_time_ms: int | None
    exit_code: int | None


@dataclass(frozen=True)
class ObjectState:
    """One reference to an object, from one process (Ray's ``ObjectState``: an object
    several processes refer to has a row for each), or a store entry nobody refers to."""

    object_id: str
    object_size: int | None  #: bytes, where known (inline values and store entries)
    task_status: str  #: PENDING, FINISHED or FAILED (its owner's view); "-" when borrowed
    reference_type: str  #: LOCAL_REFERENCE, BORROWED_BY_OTHERS, ACTOR_HANDLE, UNREFERENCED
    call_site: str  #: what made it: ``f.remote()``, ``skate.put()``, ``actor call``
    type: str  #: WORKER, DRIVER, or STORE for an entry without a reference
    pid: int | None
    ip: str
    node_id: str
    worker_id: str
    is_owner: bool
    local_refs: int
    num_borrowers: int
    store_state: str  #: IN_MEMORY, SPILLED, INLINE (in the owner's memory) or "-"
    pinned: int  #: readers that map it now (on the node holding it)


def list_workers(filters: list | None = None, limit: int = DEFAULT_LIMIT, detail: bool = False,
                 timeout: float = DEFAULT_TIMEOUT_S, address: str | None = None
                 ) -> list[WorkerState]:
    """Workers and drivers of every alive node, exited workers (the last 1000 per node)
    too."""
    rows = []
    with _nodes(address, timeout) as nodes:
        for _, client in nodes:
            rows += [WorkerState(**r) for r in _ask(client.list_workers, timeout) or ()]
    return _select(rows, WorkerState, filters, limit)


def list_objects(filters: list | None = None, limit: int = DEFAULT_LIMIT,
                 detail: bool = False, timeout: float = DEFAULT_TIMEOUT_S,
                 address: str | None = None) -> list[ObjectState]:
    """Every reference every process holds, and store entries nobody refers to."""
    return _select(_objects(address, timeout)[0], ObjectState, filters, limit)


def summarize_objects(timeout: float = DEFAULT_TIMEOUT_S, address: str | None = None) -> dict:
    """Objects grouped by call site, in Ray's shape::

        {"cluster": {"summary": {"skate.put()": {"total_objects": 2, "total_size_mb": 20.0,
                                                  "total_num_workers": 1, "total_num_nodes": 1,
                                                  "task_state_counts": {"FINISHED": 2},
                                                  "ref_type_counts": {"LOCAL_REFERENCE": 2}}},
                     "total_objects": 2, "total_size_mb": 20.0, "summary_by": "callsite",
                     "partial": 0}}
    """
    rows, partial = _objects(address, timeout)
    groups: dict[str, list] = defaultdict(list)
    for r in rows:
        groups[r.call_site or "(borrowed)"].append(r)
    summary = {}
    for site, rs in sorted(groups.items()):
        sizes = {r.object_id: r.object_size or 0 for r in rs}
        summary[site] = {
            "total_objects": len(sizes), "total_size_mb": sum(sizes.values()) / 2**20,
            "total_num_workers": len({r.worker_id for r in rs if r.worker_id}),
            "total_num_nodes": len({r.node_id for r in rs}),
            "task_state_counts": dict(Counter(r.task_status for r in rs)),
            "ref_type_counts": dict(Counter(r.reference_type for r in rs))}
    unique = {r.object_id: r.object_size or 0 for r in rows}
    return {"cluster": {"summary": summary, "total_objects": len(unique),
                        "total_size_mb": sum(unique.values()) / 2**20,
                        "summary_by": "callsite", "partial": partial}}


def cluster_status(timeout: float = 10.0, address: str | None = None) -> dict:
    """What ``skate status`` prints: per node its resources (total and available) and object
    store use, and the cluster's demand -- lease requests waiting by resource shape,
    those no node can ever fit (infeasible), and placement groups still pending::

        {"nodes": [{"node_id", "node_ip", "is_head_node", "state", "resources_total",
                    "resources_available", "object_store": {...}}],
         "demand": [{"shape": {"CPU": 1.0}, "count": 3}],
         "infeasible": [{"shape": {"GPU": 8.0}, "count": 1}],
         "pending_placement_groups": [{"placement_group_id", "name", "bundles"}]}
    """
    nodes_out: list[dict] = []
    demand: Counter = Counter()
    infeasible: Counter = Counter()
    with _nodes(address, timeout, dead=True) as nodes:
        for info, client in nodes:
            row = {"node_id": info["NodeID"], "node_ip": info.get("NodeManagerAddress", ""),
                   "is_head_node": bool(info.get("is_head")),
                   "state": "ALIVE" if info["Alive"] else "DEAD",
                   "resources_total": dict(info.get("Resources", {})),
                   "resources_available": None, "object_store": None}
            if client is not None:
                resources = _ask(client.resources, timeout)
                if resources is not None:
                    row["resources_total"], row["resources_available"] = resources
                row["object_store"] = _ask(client.store_stats, timeout)
                for shape, n, never in _ask(client.demand, timeout) or ():
                    (infeasible if never else demand)[tuple(sorted(shape.items()))] += n
            nodes_out.append(row)
        groups = _store_of(nodes).placement_group_table(None, timeout=timeout) or {}
    pending = [{"placement_group_id": pg, "name": g.get("name") or "",
                "bundles": [dict(b) for b in (g.get("bundles") or {}).values()]}
               for pg, g in groups.items() if g.get("state") == "PENDING"]
    return {"nodes": nodes_out,
            "demand": [{"shape": dict(s), "count": n} for s, n in demand.most_common()],
            "infeasible": [{"shape": dict(s), "count": n} for s, n in infeasible.most_common()],
            "pending_placement_groups": pending}


# -- logs --------------------------------------------------------------------------------
def list_logs(node_id: str | None = None, glob_filter: str = "*",
              timeout: float = DEFAULT_TIMEOUT_S, address: str | None = None
              ) -> dict[str, dict[str, list[str]]]:
    """Log files by node, then by kind: ``{node_id: {"worker_out": [...], "worker_err":
    [...], "raylet": [...], "gcs": [...], "job_driver": [...], "other": [...]}}``.
    Workers' files are ``worker-<worker id>-<pid>.out|.err``."""
    out = {}
    with _nodes(address, timeout) as nodes:
        for info, client in nodes:
            if node_id is not None and not info["NodeID"].startswith(node_id):
                continue
            kinds: dict[str, list[str]] = defaultdict(list)
            for name, _size in _ask(client.list_logs, timeout) or ():
                if fnmatch.fnmatch(name, glob_filter):
                    kinds[_log_kind(name)].append(name)
            out[info["NodeID"]] = dict(kinds)
    return out


def get_log(filename: str | None = None, node_id: str | None = None,
            actor_id: str | None = None, task_id: str | None = None, pid: int | None = None,
            follow: bool = False, tail: int = 1000, suffix: str = "out",
            interval: float = 0.5, timeout: float = DEFAULT_TIMEOUT_S,
            address: str | None = None, stop: threading.Event | None = None
            ) -> Iterator[str]:
    """The lines of one log file, as Ray's ``get_log``: name it (``filename``, on
    ``node_id`` or the head), or give the actor, task (the worker it ran on) or worker pid
    whose output to show (``suffix`` "out" or "err"). The last ``tail`` lines (-1: all);
    with ``follow``, new lines as they are written, until the caller stops iterating or
    sets ``stop`` (another thread's way to end it while the log is quiet: the generator
    returns within ``interval``).

    >>> for line in get_log(actor_id=actor._actor_id.hex(), tail=20):  # doctest: +SKIP
    ...     print(line)
    """
    if suffix not in ("out", "err"):
        raise ValueError(f"suffix is 'out' or 'err', got {suffix!r}.")
    if not isinstance(tail, int) or isinstance(tail, bool) or tail == 0 or tail < -1:
        raise ValueError(f"tail is a positive number of lines or -1 (all), got {tail!r}.")
    with _nodes(address, timeout) as nodes:
        node, client, name = _resolve_log(nodes, filename, node_id, actor_id, task_id, pid,
                                          suffix, timeout, address)
        offset = _tail_offset(client, name, tail, timeout)
        partial = b""
        while True:
            data, end, size = client.read_log(name, offset, LOG_CHUNK, timeout=timeout)
            if size < offset:  # rotated under us: start over in the new file
                offset = 0
                continue
            offset = end
            if data:
                *lines, partial = (partial + data).split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", "replace")
                continue
            if not follow:
                if partial:
                    yield partial.decode("utf-8", "replace")
                return
            if stop is None:
                time.sleep(interval)
            elif stop.wait(interval):
                return


def _resolve_log(nodes, filename, node_id, actor_id, task_id, pid, suffix, timeout, address):
    """(node info, its client, file name) of the log a ``get_log`` call names."""
    given = [k for k, v in (("filename", filename), ("actor_id", actor_id),
                            ("task_id", task_id), ("pid", pid)) if v is not None]
    if len(given) != 1:
        raise ValueError("Name one log: filename (with node_id), actor_id, task_id or pid "
                         f"(with node_id); got {', '.join(given) or 'none'}.")
    worker_id = None
    if actor_id is not None:
        from skate.core.state import get_actor

        actor = get_actor(actor_id, timeout=timeout, address=address)
        if actor is None or actor.pid is None:
            raise ValueError(f"No actor {actor_id} with a process (it may not have started).")
        node_id, pid = actor.node_id, actor.pid
    elif task_id is not None:
        from skate.core.state import get_task

        task = get_task(task_id, timeout=timeout, address=address)
        if task is None or task.worker_id is None:
            raise ValueError(f"No task {task_id} that ran on a worker (is the history on?).")
        node_id, worker_id = task.node_id, task.worker_id
    chosen = [(i, c) for i, c in nodes if node_id is None and i.get("is_head")
              or node_id is not None and i["NodeID"].startswith(node_id)]
    if not chosen:
        raise ValueError(f"No alive node {node_id}." if node_id else "No alive head node.")
    info, client = chosen[0]
    if filename is None:
        want = f"worker-{worker_id}-*.{suffix}" if worker_id else f"worker-*-{pid}.{suffix}"
        names = [n for n, _ in client.list_logs(timeout=timeout) if fnmatch.fnmatch(n, want)]
        if not names:
            raise ValueError(f"No {suffix} log for that process on node {info['NodeID'][:12]}"
                             " (it printed nothing yet).")
        filename = names[-1]
    return info, client, filename


def _tail_offset(client, name: str, tail: int, timeout: float) -> int:
    """Where the last ``tail`` lines of the file begin (0 for all of it)."""
    if tail == -1:
        return 0
    back = min(256 * tail, MAX_TAIL_READ)
    while True:
        data, end, _size = client.read_log(name, -back, back, timeout=timeout)
        start = end - len(data)
        newline = data.endswith(b"\n")
        lines = (data[:-1] if newline else data).split(b"\n")
        if len(lines) > tail:  # the last ``tail`` lines begin after the others' newlines
            return end - len(b"\n".join(lines[-tail:])) - newline
        if start == 0 or back == MAX_TAIL_READ:
            return start
        back = min(back * 4, MAX_TAIL_READ)


def _log_kind(name: str) -> str:
    if name.startswith("worker-"):
        return "worker_err" if name.endswith(".err") else "worker_out"
    for prefix, kind in (("raylet", "raylet"), ("gcs", "gcs"), ("job-driver", "job_driver")):
        if name.startswith(prefix):
            return kind
    return "other"


# -- asking the nodes ----------------------------------------------------------------------
def _objects(address, timeout) -> tuple[list[ObjectState], int]:
    rows: list[ObjectState] = []
    partial = 0
    sizes: dict[str, int] = {}
    placed: dict[str, tuple] = {}  # oid -> (store state, pins), where a node holds it
    answers = []
    with _nodes(address, timeout) as nodes:
        for info, client in nodes:
            got = _ask(client.list_objects, timeout)
            if got is None:
                partial += 1
                continue
            partial += got["partial"]
            answers.append((info, got))
            for oid, size, pins, spilled, secondary in got["store"]:
                sizes[oid] = size
                if not secondary or oid not in placed:
                    placed[oid] = ("SPILLED" if spilled else "IN_MEMORY", pins)
    referenced = set()
    for info, got in answers:
        for pid, worker_id, kind, refs in got["refs"]:
            for oid, owned, local, borrowers, state, in_store, size, site in refs:
                referenced.add(oid)
                if size is not None:
                    sizes.setdefault(oid, size)
                where = placed.get(oid) or (("INLINE" if owned and not in_store and
                                             state != "PENDING" else "-"), 0)
                ref_type = ("ACTOR_HANDLE" if site == "actor handle" else
                            "LOCAL_REFERENCE" if local else
                            "BORROWED_BY_OTHERS" if borrowers else "UNREFERENCED")
                rows.append(ObjectState(
                    object_id=oid, object_size=None, task_status={
                        "READY": "FINISHED", "BORROWED": "-"}.get(state, state),
                    reference_type=ref_type, call_site=site, type=kind, pid=pid,
                    ip=info.get("NodeManagerAddress", ""), node_id=info["NodeID"],
                    worker_id=worker_id, is_owner=owned, local_refs=local,
                    num_borrowers=borrowers, store_state=where[0], pinned=where[1]))
        for oid, size, pins, spilled, _secondary in got["store"]:
            if oid not in referenced:
                rows.append(ObjectState(
                    object_id=oid, object_size=size, task_status="FINISHED",
                    reference_type="UNREFERENCED", call_site="", type="STORE", pid=None,
                    ip=info.get("NodeManagerAddress", ""), node_id=info["NodeID"],
                    worker_id="", is_owner=False, local_refs=0, num_borrowers=0,
                    store_state="SPILLED" if spilled else "IN_MEMORY", pinned=pins))
    # a borrower learns the size and call site from the owner's row (or the store's entry)
    sites = {r.object_id: r.call_site for r in rows if r.is_owner}
    rows = [dataclasses.replace(r, object_size=sizes.get(r.object_id),
                                call_site=r.call_site or sites.get(r.object_id, ""))
            for r in rows]
    return rows, partial


@contextlib.contextmanager
def _nodes(address: str | None, timeout: float, dead: bool = False):
    """[(node info, NodeManagerClient)] of the alive nodes (with ``dead``, dead ones too,
    with None), each connection closed afterwards."""
    from skate.core import rpc
    from skate.core.node_manager.client import NodeManagerClient

    with _cluster(address) as (store, token):
        out: list[tuple] = []
        conns = []
        try:
            for info in store.get_nodes(timeout=timeout):
                if not info["Alive"]:
                    if dead:
                        out.append((info, None))
                    continue
                try:
                    conn = rpc.connect(info["raylet_address"], name="state", timeout=5,
                                       token=token)
                except (OSError, ValueError):
                    if dead:
                        out.append((info, None))
                    continue
                conns.append(conn)
                out.append((info, NodeManagerClient(conn)))
            yield _Nodes(out, store)
        finally:
            for c in conns:
                c.close()


class _Nodes(list):
    """The nodes' (info, client) pairs, with the control store they came from."""

    def __init__(self, items, store):
        super().__init__(items)
        self.store = store


def _store_of(nodes: _Nodes):
    return nodes.store


def _ask(fn, timeout):
    """``fn(timeout=...)``, or None if that node does not answer (it died meanwhile)."""
    from skate.core import rpc

    try:
        return fn(timeout=timeout)
    except (rpc.ConnectionClosed, TimeoutError, OSError):
        return None

"""The cluster's state as typed records: actors, nodes, placement groups, jobs.

Public core API, re-exported as ``skate.util.state`` under Ray's names
(``list_actors``, ``get_actor``, ``summarize_actors``, ...). The records are
frozen dataclasses with Ray's field names; every call asks the control store
once, so a listing is a snapshot.

A process connected to a cluster (``skate.init()`` ran) asks through its own
connection; any other process -- the ``skate list`` command, a notebook that
never called ``init`` -- connects to the cluster this machine started with
``skate start --head`` (``address="auto"``, the default) without joining it
as a job.

>>> from skate.util.state import list_actors
>>> list_actors(filters=[("state", "=", "ALIVE")], limit=10)  # doctest: +SKIP
[ActorState(actor_id='5e1f...', class_name='Counter', state='ALIVE', ...)]
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field

from skate.core.state_query import (  # noqa: F401 - DEFAULT_* are part of the API
    DEFAULT_LIMIT,
    DEFAULT_TIMEOUT_S,
    _check_limit,
    _checks,
    _one,
    _select,
    _store,
)


@dataclass(frozen=True)
class ActorState:
    """One actor (Ray's ``ActorState``)."""

    actor_id: str
    class_name: str
    state: str  #: PENDING_CREATION, ALIVE, RESTARTING or DEAD
    job_id: str
    name: str  #: "" if unnamed
    ray_namespace: str
    node_id: str | None
    pid: int | None
    is_detached: bool
    num_restarts: int
    death_cause: str | None


@dataclass(frozen=True)
class NodeState:
    """One node (Ray's ``NodeState``)."""

    node_id: str
    node_ip: str
    is_head_node: bool
    state: str  #: ALIVE or DEAD
    node_name: str
    resources_total: dict = field(default_factory=dict)
    state_message: str | None = None  #: why a dead node died


@dataclass(frozen=True)
class PlacementGroupState:
    """One placement group (Ray's ``PlacementGroupState``)."""

    placement_group_id: str
    name: str
    state: str  #: PENDING, CREATED or REMOVED
    strategy: str
    bundles: list = field(default_factory=list)  #: [{"bundle_id", "node_id", "unit_resources"}]
    ray_namespace: str = ""


@dataclass(frozen=True)
class JobState:
    """One job: a driver that connected (Ray's ``JobDetails``, driver jobs)."""

    job_id: str
    type: str  #: DRIVER
    status: str  #: RUNNING while its driver is connected, then FINISHED
    ray_namespace: str
    start_time: int  #: ms since the epoch
    end_time: int | None  #: ms since the epoch, once the driver left
    driver_address: str
    config: dict = field(default_factory=dict)  #: code_search_path, runtime_env, metadata


@dataclass(frozen=True)
class TaskState:
    """One attempt of a task or actor task (Ray's ``TaskState``); times in ms since the
    epoch, ``events`` each state with the time it began."""

    task_id: str
    attempt_number: int
    name: str
    state: str  #: PENDING_ARGS_AVAIL ... RUNNING, RUNNING_IN_RAY_GET/WAIT, FINISHED, FAILED
    job_id: str
    type: str  #: NORMAL_TASK or ACTOR_TASK
    func_or_class_name: str
    actor_id: str | None
    parent_task_id: str | None
    node_id: str | None
    worker_id: str | None
    worker_pid: int | None
    error_type: str | None  #: Ray's names: TASK_EXECUTION_EXCEPTION, WORKER_DIED, ...
    error_message: str | None
    required_resources: dict = field(default_factory=dict)
    creation_time_ms: int | None = None
    start_time_ms: int | None = None
    end_time_ms: int | None = None
    events: list = field(default_factory=list)


# -- listing ------------------------------------------------------------------------------
def list_tasks(filters: list | None = None, limit: int = DEFAULT_LIMIT, detail: bool = False,
               timeout: float = DEFAULT_TIMEOUT_S, address: str | None = None, *,
               offset: int = 0) -> list[TaskState]:
    """Task attempts, newest first: every process records its tasks' state changes and
    sends them to the control store in batches (every 0.2 s), which keeps the last
    100,000 attempts per job (``SKATE_TASK_EVENTS_MAX_PER_JOB``), dropping the oldest
    finished first. ``summarize_tasks()["dropped"]`` says how many went. ``offset`` (not in
    Ray's API) skips that many matches: a page deep in the history costs no more to send."""
    checks = _checks(TaskState, filters)
    _check_limit(limit)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ValueError(f"offset must be an int >= 0, got {offset!r}.")
    with _store(address) as store:
        rows = store.list_tasks([(k, eq, v) for k, eq, v in checks], limit, offset,
                                timeout=timeout)
    names = {f.name for f in dataclasses.fields(TaskState)}
    return [TaskState(**{k: v for k, v in r.items() if k in names}) for r in rows]


def get_task(id: str, timeout: float = DEFAULT_TIMEOUT_S, address: str | None = None
             ) -> TaskState | None:
    """The latest attempt of the task with this hex id, or None."""
    return _one(list_tasks([("task_id", "=", id)], 1, timeout=timeout, address=address))


def summarize_tasks(timeout: float = DEFAULT_TIMEOUT_S, address: str | None = None) -> dict:
    """Task attempts counted by function and state, in Ray's shape, with how many attempts
    the bounded history dropped per job::

        {"cluster": {"summary": {"f": {"func_or_class_name": "f",
                                       "state_counts": {"FINISHED": 10}}},
                     "total_tasks": 10, "summary_by": "func_name", "dropped": {}}}
    """
    with _store(address) as store:
        s = store.summarize_tasks(timeout=timeout)
    summary = {name: {"func_or_class_name": name, "state_counts": counts}
               for name, counts in s["summary"].items()}
    return {"cluster": {"summary": summary, "total_tasks": s["total_tasks"],
                        "summary_by": "func_name", "dropped": s["dropped"]}}


def timeline(filename: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
             address: str | None = None) -> list[dict] | None:
    """The tasks' runs as a Chrome trace (open it in https://ui.perfetto.dev or
    chrome://tracing): a row per worker, a slice per run with the task's name and ids.
    Written to ``filename`` as JSON if given (and None returned), else returned.

    >>> import skate
    >>> skate.timeline("/tmp/timeline.json")  # doctest: +SKIP
    """
    with _store(address) as store:
        events = store.task_timeline(timeout=timeout)
    if filename is None:
        return events
    import json

    with open(filename, "w") as f:
        json.dump(events, f)
    return None

def list_actors(filters: list | None = None, limit: int = DEFAULT_LIMIT, detail: bool = False,
                timeout: float = DEFAULT_TIMEOUT_S, address: str | None = None
                ) -> list[ActorState]:
    """Actors of the cluster, dead ones included (Ray keeps them too), oldest first.

    ``filters``: ``[(field, "=" | "!=", value)]``, all of which must hold; values are
    compared as strings. ``detail`` is accepted for Ray's signature (records are full).
    """
    with _store(address) as store:
        return _select(_actors(store, timeout), ActorState, filters, limit)


def list_nodes(filters: list | None = None, limit: int = DEFAULT_LIMIT, detail: bool = False,
               timeout: float = DEFAULT_TIMEOUT_S, address: str | None = None
               ) -> list[NodeState]:
    """Nodes of the cluster, dead ones included."""
    with _store(address) as store:
        return _select(_nodes(store, timeout), NodeState, filters, limit)


def list_placement_groups(filters: list | None = None, limit: int = DEFAULT_LIMIT,
                          detail: bool = False, timeout: float = DEFAULT_TIMEOUT_S,
                          address: str | None = None) -> list[PlacementGroupState]:
    """Placement groups of the cluster, removed ones included."""
    with _store(address) as store:
        return _select(_groups(store, timeout), PlacementGroupState, filters, limit)


def list_jobs(filters: list | None = None, limit: int = DEFAULT_LIMIT, detail: bool = False,
              timeout: float = DEFAULT_TIMEOUT_S, address: str | None = None) -> list[JobState]:
    """Jobs (drivers) that connected to the cluster, finished ones included."""
    with _store(address) as store:
        return _select(_jobs(store, timeout), JobState, filters, limit)


# -- one record ---------------------------------------------------------------------------
def get_actor(id: str, timeout: float = DEFAULT_TIMEOUT_S,
              address: str | None = None) -> ActorState | None:
    """The actor with this hex id, or None."""
    return _one(list_actors([("actor_id", "=", id)], 1, timeout=timeout, address=address))


def get_node(id: str, timeout: float = DEFAULT_TIMEOUT_S,
             address: str | None = None) -> NodeState | None:
    return _one(list_nodes([("node_id", "=", id)], 1, timeout=timeout, address=address))


def get_placement_group(id: str, timeout: float = DEFAULT_TIMEOUT_S,
                        address: str | None = None) -> PlacementGroupState | None:
    return _one(list_placement_groups([("placement_group_id", "=", id)], 1, timeout=timeout,
                                      address=address))


def get_job(id: str, timeout: float = DEFAULT_TIMEOUT_S,
            address: str | None = None) -> JobState | None:
    return _one(list_jobs([("job_id", "=", id)], 1, timeout=timeout, address=address))


# -- summaries ----------------------------------------------------------------------------
def summarize_actors(timeout: float = DEFAULT_TIMEOUT_S, address: str | None = None) -> dict:
    """Actors counted by class and state, in Ray's shape::

        {"cluster": {"summary": {"Counter": {"class_name": "Counter",
                                             "state_counts": {"ALIVE": 2}}},
                     "total_actors": 2, "summary_by": "class"}}
    """
    with _store(address) as store:
        actors = _actors(store, timeout)
    by_class: dict[str, Counter] = {}
    for a in actors:
        by_class.setdefault(a.class_name, Counter())[a.state] += 1
    summary = {name: {"class_name": name, "state_counts": dict(counts)}
               for name, counts in sorted(by_class.items())}
    return {"cluster": {"summary": summary, "total_actors": len(actors), "summary_by": "class"}}


# -- the one action --------------------------------------------------------------------------
def kill_actor(id: str, no_restart: bool = True, timeout: float = DEFAULT_TIMEOUT_S,
               address: str | None = None) -> bool:
    """Kill the actor with this hex id, as ``skate.kill`` does, without a handle and without
    joining the cluster (the dashboard's and the CLI's way). True if it was alive, False if
    already dead; ValueError for an id no actor has. Not in Ray's state API, which reads
    only.

    >>> from skate.util.state import kill_actor
    >>> kill_actor("5e1f...")  # doctest: +SKIP
    True
    """
    try:
        actor_id = bytes.fromhex(id)
    except (TypeError, ValueError):
        raise ValueError(f"An actor id is hex, got {id!r}.") from None
    with _store(address) as store:
        return store.kill_actor(actor_id, no_restart)


# -- what libraries publish ------------------------------------------------------------------
def get_kv(key: str, namespace: str = "", timeout: float = DEFAULT_TIMEOUT_S,
           address: str | None = None) -> bytes | None:
    """A value of the control store's key-value store (``skate.experimental.internal_kv``,
    where libraries publish their state), read without joining the cluster."""
    with _store(address) as store:
        return store.kv_get(namespace, key)


def list_kv(prefix: str = "", namespace: str = "", timeout: float = DEFAULT_TIMEOUT_S,
            address: str | None = None) -> list[str]:
    """The keys of that store under ``prefix`` in ``namespace``."""
    with _store(address) as store:
        return sorted(store.kv_keys(namespace, prefix))


# -- the records, from the control store's tables --------------------------------------------
def _actors(store, timeout: float) -> list[ActorState]:
    out = []
    for info in store.list_actors(timeout=timeout):
        out.append(ActorState(
            actor_id=info["actor_id"].hex(), class_name=info.get("class_name") or "",
            state=str(info["state"]), job_id=info.get("job_id") or "",
            name=info.get("name") or "", ray_namespace=info.get("namespace") or "",
            node_id=info.get("node_id"), pid=info.get("pid"),
            is_detached=bool(info.get("detached")), num_restarts=info.get("num_restarts", 0),
            death_cause=info.get("death_cause")))
    return out


def _nodes(store, timeout: float) -> list[NodeState]:
    return [NodeState(
        node_id=n["NodeID"], node_ip=n.get("NodeManagerAddress", ""),
        is_head_node=bool(n.get("is_head")), state="ALIVE" if n["Alive"] else "DEAD",
        node_name=n.get("NodeManagerAddress", ""), resources_total=dict(n.get("Resources", {})),
        state_message=n.get("death_reason")) for n in store.get_nodes(timeout=timeout)]


def _groups(store, timeout: float) -> list[PlacementGroupState]:
    out = []
    for pg_hex, info in (store.placement_group_table(None, timeout=timeout) or {}).items():
        nodes = info.get("bundles_to_node_id") or {}
        bundles = [{"bundle_id": f"{pg_hex}:{i}", "node_id": nodes.get(i),
                    "unit_resources": dict(b)} for i, b in (info.get("bundles") or {}).items()]
        out.append(PlacementGroupState(
            placement_group_id=pg_hex, name=info.get("name") or "", state=info["state"],
            strategy=info["strategy"], bundles=bundles,
            ray_namespace=info.get("namespace") or ""))
    return out


def _jobs(store, timeout: float) -> list[JobState]:
    out = []
    for job in store.list_jobs(timeout=timeout):
        end = job.get("end_time")
        out.append(JobState(
            job_id=job["job_id"], type="DRIVER",
            status="RUNNING" if job.get("alive") else "FINISHED",
            ray_namespace=job.get("namespace") or "",
            start_time=int(job["start_time"] * 1000),
            end_time=None if end is None else int(end * 1000),
            driver_address=job.get("driver") or "", config=dict(job.get("config") or {})))
    return out


# what the nodes know (workers, objects, logs, demand): skate.state names them too
from skate.core.node_state import (  # noqa: E402 - it uses the helpers above
    ObjectState,
    WorkerState,
    cluster_status,
    get_log,
    list_logs,
    list_objects,
    list_workers,
    summarize_objects,
)

__all__ = [
    "ActorState", "NodeState", "PlacementGroupState", "JobState", "TaskState", "WorkerState",
    "ObjectState", "list_tasks", "list_actors", "list_nodes", "list_placement_groups",
    "list_jobs", "list_workers", "list_objects", "get_task", "get_actor", "get_node",
    "get_placement_group", "get_job", "summarize_tasks", "summarize_actors",
    "summarize_objects", "timeline", "list_logs", "get_log", "cluster_status", "kill_actor",
    "get_kv", "list_kv",
]

"""Calls to the control store, one typed method per RPC (handlers: ``server.py``)."""

from __future__ import annotations

from typing import Any, Callable

from skate.core.rpc import Client
from skate.core.rpc import methods as m

Callback = Callable[[bool, Any], None]


class ControlStoreClient(Client):
    """What any process asks the control store: nodes, jobs, actors, groups, the KV store.

    >>> # inside a running cluster: ControlStoreClient(rpc.connect(gcs_address)).get_nodes()
    """

    __slots__ = ()

    # -- nodes -------------------------------------------------------------------------
    def register_node(self, node_id: str, info: dict) -> bool:
        return self.conn.call(m.REGISTER_NODE, node_id, info)

    def get_nodes(self, timeout: float | None = None) -> list[dict]:
        return self.conn.call(m.GET_NODES, timeout=timeout)

    def cluster_view(self, node_id: str, available: dict, total: dict,
                     callback: Callback) -> None:
        """A node's heartbeat; the reply is every node's view, or None: this node is dead."""
        self.conn.call_async(m.CLUSTER_VIEW, node_id, available, total, callback=callback)

    def cluster_resources(self, timeout: float | None = None) -> tuple[dict, dict]:
        """(total, available) over the live nodes."""
        return self.conn.call(m.CLUSTER_RESOURCES, timeout=timeout)

    # -- jobs --------------------------------------------------------------------------
    def register_job(self, driver_address: str, namespace: str, job_config: dict | None,
                     job_id: str | None = None) -> str | None:
        """A new job's id; with ``job_id``, rejoin a restarted control store as that job
        (None: it has the job as ended)."""
        return self.conn.call(m.REGISTER_JOB, driver_address, namespace, job_config, job_id)

    def get_job(self, job_id: str, timeout: float | None = None) -> dict | None:
        return self.conn.call(m.GET_JOB, job_id, timeout=timeout)

    def list_jobs(self, timeout: float | None = None) -> list[dict]:
        """Every job's record, oldest first (finished ones too)."""
        return self.conn.call(m.LIST_JOBS, timeout=timeout)

    # -- task history (tasks.py) ---------------------------------------------------------
    def task_events(self, entries: list) -> bool:
        """One-way: a batch of task events (``worker/task_events.py``)."""
        return self.conn.notify(m.TASK_EVENTS, entries)

    def list_tasks(self, filters: list, limit: int, offset: int = 0,
                   timeout: float | None = None) -> list[dict]:
        """Task attempts matching ``[(field, equal, value)]``, newest first, from ``offset``."""
        return self.conn.call(m.LIST_TASKS, filters, limit, offset, timeout=timeout)

    def report_metrics(self, node_id: str, batch: tuple) -> bool:
        """One-way: a process's metric updates (``skate/core/metrics.py``'s batch)."""
        return self.conn.notify(m.REPORT_METRICS, node_id, batch)

    def metrics(self, prefixes: list | None = None, timeout: float | None = None
                ) -> list[dict]:
        """The cluster's metric families (``metrics.snapshot()``'s shape), those whose name
        starts with one of ``prefixes`` if given."""
        return self.conn.call(m.METRICS, prefixes, timeout=timeout)

    def summarize_tasks(self, timeout: float | None = None) -> dict:
        return self.conn.call(m.SUMMARIZE_TASKS, timeout=timeout)

    def task_timeline(self, timeout: float | None = None) -> list[dict]:
        """Chrome trace events: a slice per run of a task, a row per worker."""
        return self.conn.call(m.TASK_TIMELINE, timeout=timeout)

    # -- the KV store --------------------------------------------------------------------
    def kv_put(self, ns: str, key: bytes, value: bytes, overwrite: bool = True) -> bool:
        return self.conn.call(m.KV_PUT, ns, key, value, overwrite)

    def kv_get(self, ns: str, key: bytes) -> bytes | None:
        return self.conn.call(m.KV_GET, ns, key)

    def kv_del(self, ns: str, key: bytes) -> bool:
        return self.conn.call(m.KV_DEL, ns, key)

    def kv_keys(self, ns: str, prefix: bytes) -> list[bytes]:
        return self.conn.call(m.KV_KEYS, ns, prefix)

    # -- actors ------------------------------------------------------------------------
    def create_actor(self, actor_id: bytes, spec: dict, job_id: str | None, name: str | None,
                     namespace: str, detached: bool, get_if_exists: bool) -> tuple:
        """("created", info, None) or ("exists", info, meta) when get_if_exists found it."""
        return self.conn.call(m.CREATE_ACTOR, actor_id, spec, job_id, name, namespace, detached,
                              get_if_exists)

    def worker_died(self, worker_id: str, owner_gone: bool = True,
                    why: str | None = None) -> bool:
        """One-way: a node manager saw a worker exit (``why``: it killed it, e.g. its memory
        monitor, and says so)."""
        return self.conn.notify(m.WORKER_DIED, worker_id, owner_gone, why)

    def actor_exited(self, actor_id: bytes, why: str, timeout: float | None = None) -> None:
        self.conn.call(m.ACTOR_EXITED, actor_id, why, timeout=timeout)

    def kill_actor(self, actor_id: bytes, no_restart: bool) -> bool:
        return self.conn.call(m.KILL_ACTOR, actor_id, no_restart)

    def get_actor_info(self, actor_id: bytes) -> dict | None:
        return self.conn.call(m.GET_ACTOR_INFO, actor_id)

    def wait_actor(self, actor_id: bytes, version: int, callback: Callback) -> None:
        """Long poll: the reply is the actor's record once its version is above ``version``."""
        self.conn.call_async(m.WAIT_ACTOR, actor_id, version, callback=callback)

    def get_named_actor(self, name: str, namespace: str) -> tuple[dict, dict] | None:
        return self.conn.call(m.GET_NAMED_ACTOR, name, namespace)

    def list_named_actors(self, namespace: str, all_namespaces: bool) -> list[dict]:
        return self.conn.call(m.LIST_NAMED_ACTORS, namespace, all_namespaces)

    def list_actors(self, timeout: float | None = None) -> list[dict]:
        return self.conn.call(m.LIST_ACTORS, timeout=timeout)

    # -- placement groups ------------------------------------------------------------------
    def create_placement_group(self, pg_id: bytes, bundles: list, strategy: str,
                               name: str | None, namespace: str, job_id: str | None,
                               detached: bool) -> dict:
        return self.conn.call(m.CREATE_PLACEMENT_GROUP, pg_id, bundles, strategy, name,
                              namespace, job_id, detached)

    def wait_placement_group(self, pg_id: bytes, callback: Callback) -> None:
        """Answered once the group is placed (or removed)."""
        self.conn.call_async(m.WAIT_PLACEMENT_GROUP, pg_id, callback=callback)

    def remove_placement_group(self, pg_id: bytes) -> bool:
        return self.conn.call(m.REMOVE_PLACEMENT_GROUP, pg_id)

    def placement_group_table(self, pg_id: bytes | None,
                              timeout: float | None = None) -> dict | None:
        return self.conn.call(m.PLACEMENT_GROUP_TABLE, pg_id, timeout=timeout)

    def get_named_placement_group(self, name: str, namespace: str) -> dict | None:
        return self.conn.call(m.GET_NAMED_PLACEMENT_GROUP, name, namespace)

    # -- misc ----------------------------------------------------------------------------
    def warning(self, message: str) -> None:
        self.conn.call(m.WARNING, message)

    def shutdown(self) -> bool:
        return self.conn.call(m.SHUTDOWN)

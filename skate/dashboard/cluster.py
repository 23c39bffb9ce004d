"""What the dashboard reads from (and does to) the cluster, behind one small interface.

``Cluster`` is the contract, ``LiveCluster`` its implementation over Skate's
public state API (``skate.state``, ``skate.util.metrics``); the tests use a
fake. The dashboard does not join the cluster: every call names the control
store's ``address`` and connects for that call only (the state API's way for
a process that is not a driver), so the dashboard loads no driver runtime and
shows no job of its own.
"""

from __future__ import annotations

import abc
from typing import Iterator

#: "every record": the state API's limit bounds each listing, and the cluster's tables are
#: bounded themselves (the task history keeps 100,000 attempts per job)
ALL = 10_000_000


class Cluster(abc.ABC):
    """The reads and writes the dashboard needs. Each call may raise ConnectionError
    (the cluster is unreachable) and ValueError (a filter the state API refuses)."""

    @abc.abstractmethod
    def nodes(self) -> list:
        """``skate.state.NodeState`` records, dead nodes included."""
        ...

    @abc.abstractmethod
    def status(self) -> dict:
        """``skate.state.cluster_status()``: per node its resources, total and available,
        and its object store's use; the demand."""
        ...

    @abc.abstractmethod
    def tasks(self, filters: list, limit: int, offset: int = 0) -> list:
        """``TaskState`` records matching ``filters`` (state API filters), newest first,
        skipping the first ``offset`` matches."""
        ...

    @abc.abstractmethod
    def task_summary(self) -> dict:
        """``summarize_tasks()["cluster"]``: counts by function name and state."""
        ...

    @abc.abstractmethod
    def actors(self) -> list:
        """``ActorState`` records, oldest first."""
        ...

    @abc.abstractmethod
    def placement_groups(self) -> list:
        ...

    @abc.abstractmethod
    def driver_jobs(self) -> list:
        """``JobState`` records of the drivers that joined."""
        ...

    @abc.abstractmethod
    def timeline(self) -> list:
        """Chrome trace events of the tasks' runs."""
        ...

    @abc.abstractmethod
    def kill_actor(self, actor_id: str, no_restart: bool) -> bool:
        """Kill an actor by hex id; False if it was already dead, LookupError if unknown."""
        ...

    @abc.abstractmethod
    def head_node_id(self) -> str | None:
        ...

    @abc.abstractmethod
    def log_files(self, node_id: str | None) -> dict:
        """``list_logs()``: ``{node_id: {kind: [file name, ...]}}``."""
        ...

    @abc.abstractmethod
    def log_lines(self, follow: bool, tail: int, **which) -> Iterator[str]:
        """``get_log(**which)``'s lines (``which``: filename and node_id, actor_id, task_id or
        pid, suffix); the caller closes the generator when done. ValueError: no such log."""
        ...

    @abc.abstractmethod
    def objects(self) -> list:
        """``ObjectState`` records: every reference every process holds."""
        ...

    @abc.abstractmethod
    def object_summary(self) -> dict:
        """``summarize_objects()["cluster"]``: objects by call site."""
        ...

    @abc.abstractmethod
    def metrics(self) -> list:
        """``skate.util.metrics.snapshot()``: every metric family with its samples."""
        ...

    @abc.abstractmethod
    def prometheus(self) -> str:
        """The metrics in Prometheus' text format."""
        ...

    @abc.abstractmethod
    def kv_keys(self, prefix: str, namespace: str) -> list:
        """Keys of the control store's KV (what libraries publish) under ``prefix``."""
        ...

    @abc.abstractmethod
    def kv_get(self, key: str, namespace: str) -> bytes | None:
        ...


class LiveCluster(Cluster):
    """The cluster whose control store is at ``address``, through the public API. The
    cluster token comes from ``SKATE_TOKEN``, as for any state API call."""

    def __init__(self, address: str):
        self.address = address

    def nodes(self) -> list:
        from skate import state

        return state.list_nodes(limit=ALL, address=self.address)

    def status(self) -> dict:
        from skate import state

        return state.cluster_status(address=self.address)

    def tasks(self, filters: list, limit: int, offset: int = 0) -> list:
        from skate import state

        return state.list_tasks(filters=filters, limit=limit, offset=offset,
                                address=self.address)

    def task_summary(self) -> dict:
        from skate import state

        return state.summarize_tasks(address=self.address)["cluster"]

    def actors(self) -> list:
        from skate import state

        return state.list_actors(limit=ALL, address=self.address)

    def placement_groups(self) -> list:
        from skate import state

        return state.list_placement_groups(limit=ALL, address=self.address)

    def driver_jobs(self) -> list:
        from skate import state

        return state.list_jobs(limit=ALL, address=self.address)

    def timeline(self) -> list:
        from skate import state

        return state.timeline(address=self.address) or []

    def kill_actor(self, actor_id: str, no_restart: bool) -> bool:
        from skate import state

        try:
            return state.kill_actor(actor_id, no_restart=no_restart, address=self.address)
        except ValueError:  # the id is checked as hex before: here no actor has it
            raise LookupError(actor_id) from None

    def head_node_id(self) -> str | None:
        return next((n.node_id for n in self.nodes() if n.is_head_node), None)

    def log_files(self, node_id: str | None) -> dict:
        from skate import state

        return state.list_logs(node_id=node_id, address=self.address)

    def log_lines(self, follow: bool, tail: int, **which) -> Iterator[str]:
        from skate import state

        return state.get_log(follow=follow, tail=tail, address=self.address,
                             **self._by_process(which))

    def _by_process(self, which: dict) -> dict:
        """An actor's or a task's log named by its node and worker pid: ``get_log`` looks
        actors and tasks up in this machine's head, not the one at ``address``."""
        from skate import state

        which = dict(which)
        if "actor_id" in which:
            actor = state.get_actor(which.pop("actor_id"), address=self.address)
            if actor is None or actor.pid is None:
                raise ValueError("No such actor with a process (it may not have started).")
            which.update(node_id=actor.node_id, pid=actor.pid)
        elif "task_id" in which:
            task = state.get_task(which.pop("task_id"), address=self.address)
            if task is None or task.worker_pid is None:
                raise ValueError("No such task that ran on a worker.")
            which.update(node_id=task.node_id, pid=task.worker_pid)
        return which

    def objects(self) -> list:
        from skate import state

        return state.list_objects(limit=ALL, address=self.address)

    def object_summary(self) -> dict:
        from skate import state

        return state.summarize_objects(address=self.address)["cluster"]

    def metrics(self) -> list:
        from skate.util import metrics

        return metrics.snapshot(address=self.address)

    def prometheus(self) -> str:
        from skate.util import metrics

        return metrics.prometheus_text(address=self.address)

    def kv_keys(self, prefix: str, namespace: str) -> list:
        from skate import state

        return state.list_kv(prefix, namespace, address=self.address)

    def kv_get(self, key: str, namespace: str) -> bytes | None:
        from skate import state

        return state.get_kv(key, namespace, address=self.address)

"""What the dashboard reads from (and does to) the cluster, behind one small interface.

``Cluster`` is the contract, ``LiveCluster`` its implementation over Skate's
public API (``skate.state`` and the root API); the tests use a fake. The
dashboard process joins the cluster as a driver of its own namespace
(``_skate_dashboard``): that gives it one connection for every read, and the
calls the state API does not offer to a process that has not joined
(``skate.available_resources()``, ``skate.kill``). Its own job is left out of
the jobs it lists.
"""

from __future__ import annotations

#: "every record": the state API's limit bounds each listing, and the cluster's tables are
#: bounded themselves (the task history keeps 100,000 attempts per job)
ALL = 10_000_000
NAMESPACE = "_skate_dashboard"


class Cluster:
    """The reads and writes the dashboard needs. Each call may raise ConnectionError
    (the cluster is unreachable) and ValueError (a filter the state API refuses)."""

    def nodes(self) -> list:
        """``skate.state.NodeState`` records, dead nodes included."""
        raise NotImplementedError

    def tasks(self, filters: list, limit: int) -> list:
        """``TaskState`` records matching ``filters`` (state API filters), newest first."""
        raise NotImplementedError

    def task_summary(self) -> dict:
        """``summarize_tasks()["cluster"]``: counts by function name and state."""
        raise NotImplementedError

    def actors(self) -> list:
        """``ActorState`` records, oldest first."""
        raise NotImplementedError

    def placement_groups(self) -> list:
        raise NotImplementedError

    def driver_jobs(self) -> list:
        """``JobState`` records of the drivers that joined (not the dashboard's own)."""
        raise NotImplementedError

    def timeline(self) -> list:
        """Chrome trace events of the tasks' runs."""
        raise NotImplementedError

    def resources(self) -> tuple[dict, dict]:
        """(total, available) logical resources of the live nodes, summed."""
        raise NotImplementedError

    def kill_actor(self, actor_id: str, no_restart: bool) -> bool:
        """Kill an actor by hex id; False if it was already dead, LookupError if unknown."""
        raise NotImplementedError

    def head_node_id(self) -> str | None:
        raise NotImplementedError


class LiveCluster(Cluster):
    """The cluster at ``address``, through the public API (``connect()`` first)."""

    def __init__(self, address: str):
        self.address = address
        self._own_job: str | None = None

    def connect(self) -> None:
        import skate

        skate.init(address=self.address, namespace=NAMESPACE, log_to_driver=False)
        self._own_job = skate.get_runtime_context().get_job_id()

    def close(self) -> None:
        import skate

        skate.shutdown()

    def nodes(self) -> list:
        from skate import state

        return state.list_nodes(limit=ALL)

    def tasks(self, filters: list, limit: int) -> list:
        from skate import state

        return state.list_tasks(filters=filters, limit=limit)

    def task_summary(self) -> dict:
        from skate import state

        return state.summarize_tasks()["cluster"]

    def actors(self) -> list:
        from skate import state

        return state.list_actors(limit=ALL)

    def placement_groups(self) -> list:
        from skate import state

        return state.list_placement_groups(limit=ALL)

    def driver_jobs(self) -> list:
        from skate import state

        return [j for j in state.list_jobs(limit=ALL) if j.job_id != self._own_job]

    def timeline(self) -> list:
        from skate import state

        return state.timeline() or []

    def resources(self) -> tuple[dict, dict]:
        import skate

        return skate.cluster_resources(), skate.available_resources()

    def kill_actor(self, actor_id: str, no_restart: bool) -> bool:
        import skate
        from skate import state
        from skate.actor import ActorHandle

        record = state.get_actor(actor_id)
        if record is None:
            raise LookupError(actor_id)
        if record.state == "DEAD":
            return False
        # The public API kills through a handle; the state API gives ids, and a handle
        # needs nothing else to be killed (no method table, no lifetime token).
        skate.kill(ActorHandle(bytes.fromhex(actor_id), {"class_name": record.class_name}),
                   no_restart=no_restart)
        return True

    def head_node_id(self) -> str | None:
        return next((n.node_id for n in self.nodes() if n.is_head_node), None)

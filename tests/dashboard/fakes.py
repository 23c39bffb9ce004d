"""A fake cluster for the dashboard's API tests: the ``cluster.Cluster`` contract over lists
of the state API's own records, with the state API's filter semantics."""

from skate.dashboard.cluster import Cluster
from skate.util.state import ActorState, JobState, NodeState, PlacementGroupState, TaskState


def task(i, name="square", state="FINISHED", job="00000001"):
    return TaskState(task_id=f"{i:024x}", attempt_number=0, name=name, state=state, job_id=job,
                     type="NORMAL_TASK", func_or_class_name=name, actor_id=None,
                     parent_task_id=None, node_id="n1", worker_id="w1", worker_pid=42,
                     error_type="TASK_EXECUTION_EXCEPTION" if state == "FAILED" else None,
                     error_message="ValueError: bad" if state == "FAILED" else None,
                     creation_time_ms=i, start_time_ms=i, end_time_ms=i + 1,
                     events=[{"state": state, "created_ms": i}])


def actor(i, state="ALIVE", class_name="Counter"):
    return ActorState(actor_id=f"{i:032x}", class_name=class_name, state=state,
                      job_id="00000001", name="", ray_namespace="ns", node_id="n1", pid=1000 + i,
                      is_detached=False, num_restarts=0, death_cause=None)


class FakeCluster(Cluster):
    def __init__(self, tasks=(), actors=(), groups=(), jobs=()):
        self._tasks = list(tasks)  # newest first, as the state API lists them
        self._actors = list(actors)
        self._groups = list(groups)
        self._jobs = list(jobs)
        self.killed = []
        self.resource_calls = 0
        self.fail = None  # an exception every call raises, when set

    def _check(self):
        if self.fail is not None:
            raise self.fail

    def nodes(self):
        self._check()
        return [NodeState(node_id="n1", node_ip="127.0.0.1", is_head_node=True, state="ALIVE",
                          node_name="127.0.0.1", resources_total={"CPU": 2.0})]

    def tasks(self, filters, limit):
        self._check()
        out = []
        for t in self._tasks:
            if all((str(getattr(t, k)) == v) is (op == "=") for k, op, v in filters):
                out.append(t)
                if len(out) >= limit:
                    break
        return out

    def task_summary(self):
        self._check()
        summary = {}
        for t in self._tasks:
            entry = summary.setdefault(t.func_or_class_name, {
                "func_or_class_name": t.func_or_class_name, "state_counts": {}})
            entry["state_counts"][t.state] = entry["state_counts"].get(t.state, 0) + 1
        return {"summary": summary, "total_tasks": len(self._tasks), "summary_by": "func_name",
                "dropped": {}}

    def actors(self):
        self._check()
        return list(self._actors)

    def placement_groups(self):
        self._check()
        return list(self._groups)

    def driver_jobs(self):
        self._check()
        return list(self._jobs)

    def timeline(self):
        self._check()
        return [{"name": t.name, "ph": "X", "ts": t.start_time_ms * 1000, "dur": 1000,
                 "pid": "node", "tid": "worker"} for t in self._tasks]

    def resources(self):
        self._check()
        self.resource_calls += 1
        return {"CPU": 2.0, "object_store_memory": 100.0}, {"CPU": 0.5,
                                                           "object_store_memory": 75.0}

    def kill_actor(self, actor_id, no_restart):
        self._check()
        found = next((a for a in self._actors if a.actor_id == actor_id), None)
        if found is None:
            raise LookupError(actor_id)
        self.killed.append((actor_id, no_restart))
        return found.state != "DEAD"

    def head_node_id(self):
        return "n1"


def group(i, state="CREATED"):
    return PlacementGroupState(placement_group_id=f"{i:032x}", name=f"pg{i}", state=state,
                               strategy="PACK", bundles=[{"bundle_id": f"{i}:0", "node_id": "n1",
                                                          "unit_resources": {"CPU": 1}}])


def driver(job_id, alive=True):
    return JobState(job_id=job_id, type="DRIVER", status="RUNNING" if alive else "FINISHED",
                    ray_namespace="ns", start_time=1000, end_time=None if alive else 2000,
                    driver_address="unix:/x", config={})

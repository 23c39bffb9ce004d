"""A fake cluster for the dashboard's API tests: the ``cluster.Cluster`` contract over lists
of the state API's own records, with the state API's filter semantics."""

import threading

from skate.dashboard.cluster import Cluster
from skate.util.state import (
    ActorState,
    JobState,
    NodeState,
    ObjectState,
    PlacementGroupState,
    TaskState,
)


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


def obj(i, size, site="skate.put()", ref="LOCAL_REFERENCE", node="n1"):
    return ObjectState(object_id=f"{i:040x}", object_size=size, task_status="FINISHED",
                       reference_type=ref, call_site=site, type="DRIVER", pid=42,
                       ip="127.0.0.1", node_id=node, worker_id="w1", is_owner=True,
                       local_refs=1, num_borrowers=0, store_state="IN_MEMORY", pinned=0)


#: what the fake head's node answers in cluster_status()
STATUS_NODE = {"node_id": "n1", "node_ip": "127.0.0.1", "is_head_node": True, "state": "ALIVE",
               "resources_total": {"CPU": 2.0, "object_store_memory": 100.0},
               "resources_available": {"CPU": 0.5, "object_store_memory": 75.0},
               "object_store": {"capacity": 1000, "used": 250, "num_objects": 3,
                                "num_in_memory": 2, "num_spilled": 1, "spilled_bytes_total": 80,
                                "restored_bytes_total": 0}}


class FakeCluster(Cluster):
    def __init__(self, tasks=(), actors=(), groups=(), jobs=(), objects=(), logs=None,
                 families=(), kv=None):
        self._tasks = list(tasks)  # newest first, as the state API lists them
        self._actors = list(actors)
        self._groups = list(groups)
        self._jobs = list(jobs)
        self._objects = list(objects)
        #: {node_id: {file name: [lines]}}; "worker-w1-42.out" is actor 0's (pid 1000 + 0)
        self.logs = logs if logs is not None else {}
        self.families = list(families)  # metrics.snapshot()'s answer
        self.kv = dict(kv or {})  # (namespace, key) -> bytes
        self.killed = []
        self.status_calls = 0
        self.fail = None  # an exception every call raises, when set
        self.open_streams = 0  # followed logs whose generator is not closed yet
        self.appended = threading.Condition()  # notified when a line is appended

    def _check(self):
        if self.fail is not None:
            raise self.fail

    def nodes(self):
        self._check()
        return [NodeState(node_id="n1", node_ip="127.0.0.1", is_head_node=True, state="ALIVE",
                          node_name="127.0.0.1", resources_total={"CPU": 2.0})]

    def status(self):
        self._check()
        self.status_calls += 1
        return {"nodes": [dict(STATUS_NODE)], "demand": [], "infeasible": [],
                "pending_placement_groups": []}

    def tasks(self, filters, limit, offset=0):
        self._check()
        out = []
        for t in self._tasks:
            if all((str(getattr(t, k)) == v) is (op == "=") for k, op, v in filters):
                if offset:
                    offset -= 1
                    continue
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

    def kill_actor(self, actor_id, no_restart):
        self._check()
        found = next((a for a in self._actors if a.actor_id == actor_id), None)
        if found is None:
            raise LookupError(actor_id)
        self.killed.append((actor_id, no_restart))
        return found.state != "DEAD"

    def head_node_id(self):
        return "n1"

    def log_files(self, node_id):
        self._check()
        out = {}
        for nid, files in self.logs.items():
            if node_id is None or nid.startswith(node_id):
                kinds = {}
                for name in files:
                    kind = ("worker_err" if name.endswith(".err") else "worker_out") \
                        if name.startswith("worker-") else "other"
                    kinds.setdefault(kind, []).append(name)
                out[nid] = kinds
        return out

    def append_log(self, node_id, name, line):
        with self.appended:
            self.logs[node_id][name].append(line)
            self.appended.notify_all()

    def log_lines(self, follow, tail, **which):
        self._check()
        if "actor_id" in which:
            actor = next((a for a in self._actors if a.actor_id == which["actor_id"]), None)
            if actor is None:
                raise ValueError("No such actor with a process (it may not have started).")
            which = {"node_id": actor.node_id, "pid": actor.pid,
                     "suffix": which.get("suffix", "out")}
        node = which.get("node_id") or "n1"
        files = self.logs.get(node)
        if files is None:
            raise ValueError(f"No alive node {node}.")
        name = which.get("filename")
        if name is None:
            want = f"-{which.get('pid')}.{which.get('suffix', 'out')}"
            name = next((n for n in files if n.startswith("worker-") and n.endswith(want)), None)
        if name not in files:
            raise ValueError("No out log for that process on node n1 (it printed nothing yet).")
        return self._follow(files[name], follow, tail)

    def _follow(self, lines, follow, tail):
        # as get_log: the last ``tail`` lines, then (follow) new ones, blocking in between
        self.open_streams += follow
        try:
            sent = max(0, len(lines) - tail)
            while True:
                with self.appended:
                    while sent >= len(lines) and follow:
                        self.appended.wait(0.05)
                    new, sent = lines[sent:], len(lines)
                yield from new
                if not follow:
                    return
        finally:
            self.open_streams -= follow

    def objects(self):
        self._check()
        return list(self._objects)

    def object_summary(self):
        self._check()
        summary = {}
        for o in self._objects:
            entry = summary.setdefault(o.call_site, {"total_objects": 0, "total_size_mb": 0.0})
            entry["total_objects"] += 1
            entry["total_size_mb"] += (o.object_size or 0) / 2**20
        return {"summary": summary, "total_objects": len(self._objects),
                "total_size_mb": sum(o.object_size or 0 for o in self._objects) / 2**20,
                "summary_by": "callsite", "partial": 0}

    def metrics(self):
        self._check()
        return list(self.families)

    def prometheus(self):
        self._check()
        from skate.core.metrics_export import render

        return render(self.families)

    def kv_keys(self, prefix, namespace):
        self._check()
        return sorted(k for ns, k in self.kv if ns == namespace and k.startswith(prefix))

    def kv_get(self, key, namespace):
        self._check()
        return self.kv.get((namespace, key))


def group(i, state="CREATED"):
    return PlacementGroupState(placement_group_id=f"{i:032x}", name=f"pg{i}", state=state,
                               strategy="PACK", bundles=[{"bundle_id": f"{i}:0", "node_id": "n1",
                                                          "unit_resources": {"CPU": 1}}])


def driver(job_id, alive=True):
    return JobState(job_id=job_id, type="DRIVER", status="RUNNING" if alive else "FINISHED",
                    ray_namespace="ns", start_time=1000, end_time=None if alive else 2000,
                    driver_address="unix:/x", config={})

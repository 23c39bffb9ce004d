"""What a node manager tells the state API: its workers, its log files, the objects its
processes hold, and the resource demand it cannot serve yet.

A mixin of ``NodeManager`` (as ``ObjectStoreHandlers`` is), so these read-only
handlers sit apart from the lease and object paths. They run under the node
manager's lock like every handler; the one that asks other processes
(``h_list_objects``) answers later (DEFER), when every worker and driver of
this node has answered or ``OBJECTS_TIMEOUT_S`` has passed -- a worker busy
in a long C call cannot hold a listing up.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

from skate.core import metrics, rpc
from skate.core import resources as res
from skate.core.config import NodeConfig
from skate.core.control_store.client import ControlStoreClient
from skate.core.node_manager.leases import Leases
from skate.core.node_manager.worker_logs import WorkerLogs
from skate.core.node_manager.worker_pool import WorkerPool
from skate.core.object_store.store import ObjectStore
from skate.core.worker.client import WorkerClient

OBJECTS_TIMEOUT_S = 3.0
EXITED_KEPT = 1000  # exited workers listed (oldest forgotten first)


class NodeIntrospection:
    """Handlers for ``skate list workers|objects``, ``skate logs`` and ``skate status``.

    The host (``NodeManager``) provides the attributes declared here.
    """

    cfg: NodeConfig
    sched: Leases
    pool: WorkerPool
    store: ObjectStore
    listener: Any
    worker_logs: WorkerLogs
    gcs: ControlStoreClient

    def _init_introspection(self) -> None:
        tags = ("State",)
        self._gauges = {
            "used": metrics.Gauge("skate_object_store_used_bytes",
                                  "Bytes of the node's object store in use."),
            "capacity": metrics.Gauge("skate_object_store_capacity_bytes",
                                      "The node's object store size."),
            "spilled_bytes_total": metrics.Gauge("skate_object_store_spilled_bytes",
                                                 "Bytes spilled to disk since the start."),
            "restored_bytes_total": metrics.Gauge("skate_object_store_restored_bytes",
                                                  "Bytes restored from disk since the start."),
            "num_objects": metrics.Gauge("skate_object_store_objects",
                                         "Objects in the node's store (memory and disk)."),
            "num_spilled": metrics.Gauge("skate_object_store_spilled_objects",
                                         "Objects of the node's store on disk now."),
        }
        self._workers_gauge = metrics.Gauge("skate_workers", "Worker processes by state.",
                                            tag_keys=tags)

        # (worker id, pid, launch time, exit time, exit code, actor class) of exited workers
        self.exited_workers: collections.deque = collections.deque(maxlen=EXITED_KEPT)

    def _record_exit(self, w) -> None:
        now = time.time()
        self.exited_workers.append((w.worker_id, w.pid, now - (time.monotonic() - w.started),
                                    now, w.returncode, w.name))

    def _report_metrics(self) -> None:
        """The node's own gauges (object store, workers), sent like any process's."""
        stats = self.store.stats()
        for key, gauge in self._gauges.items():
            gauge.set(stats[key])
        states = collections.Counter(self._worker_state(w.worker_id)
                                     for w in self.pool.workers.values())
        for state in ("STARTING", "IDLE", "LEASED"):
            self._workers_gauge.set(states[state], tags={"State": state})
        batch = metrics.PENDING.batch()
        if batch is not None:
            self.gcs.report_metrics(self.cfg.node_id, batch)

    # -- workers ------------------------------------------------------------------------
    def h_list_workers(self, conn, rid):
        """Workers and drivers of this node, exited workers too: dicts with Ray's
        ``WorkerState`` field names."""
        now, mono = time.time(), time.monotonic()
        out = []
        for w in self.pool.workers.values():
            out.append({"worker_id": w.worker_id, "is_alive": True, "worker_type": "WORKER",
                        "state": self._worker_state(w.worker_id), "pid": w.pid,
                        "node_id": self.cfg.node_id,
                        "ip": self.cfg.node_ip, "actor_class_name": w.name or None,
                        "worker_launch_time_ms": int((now - (mono - w.started)) * 1000),
                        "end_time_ms": None, "exit_code": None})
        for c in list(self.listener.connections):
            if c.peer_info.get("role") == "driver":
                out.append({"worker_id": c.peer_info.get("worker_id") or "", "is_alive": True,
                            "worker_type": "DRIVER", "state": "DRIVER",
                            "pid": c.peer_info.get("pid"), "node_id": self.cfg.node_id,
                            "ip": self.cfg.node_ip, "actor_class_name": None,
                            "worker_launch_time_ms": None, "end_time_ms": None,
                            "exit_code": None})
        for wid, pid, started, ended, code, name in self.exited_workers:
            out.append({"worker_id": wid, "is_alive": False, "worker_type": "WORKER",
                        "state": "DEAD", "pid": pid, "node_id": self.cfg.node_id,
                        "ip": self.cfg.node_ip, "actor_class_name": name or None,
                        "worker_launch_time_ms": int(started * 1000),
                        "end_time_ms": int(ended * 1000), "exit_code": code})
        return out

    def _worker_state(self, worker_id: str) -> str:
        rec = self.sched.workers.get(worker_id)
        if rec is None or not rec.registered:
            return "STARTING"
        return "LEASED" if rec.lease is not None else "IDLE"

    # -- logs ---------------------------------------------------------------------------
    def h_list_logs(self, conn, rid):
        """[(file name, size)] of this node's log folder."""
        return self.worker_logs.list()

    def h_read_log(self, conn, rid, name, offset, length):
        """(data, next offset, size) of one log file; FileNotFoundError for an unknown one."""
        return self.worker_logs.read(name, offset, length)

    # -- demand -------------------------------------------------------------------------
    def h_demand(self, conn, rid):
        """Lease requests waiting here, by resource shape: [(shape, count, infeasible)]."""
        counts: collections.Counter = collections.Counter()
        for lease in self.sched.pending:
            shape = tuple(sorted(res.from_units(lease.units).items()))
            counts[(shape, lease.infeasible_since is not None)] += 1
        return [(dict(shape), n, infeasible) for (shape, infeasible), n in counts.items()]

    # -- objects ------------------------------------------------------------------------
    def h_list_objects(self, conn, rid):
        """Every reference this node's workers and drivers hold, with this node's store
        entries: {"refs": [(pid, worker id, type, rows)], "store": [...], "partial": n}
        (``partial``: processes that did not answer in time)."""
        procs = [c for c in list(self.listener.connections)
                 if c.peer_info.get("role") in ("worker", "driver")]
        store = [(oid.hex(), e.size, sum(e.pins.values()), e.path is not None, e.secondary)
                 for oid, e in self.store.objects.items() if e.sealed]

        def done(refs: list, missing: int) -> None:
            conn.reply(rid, {"refs": refs, "store": store, "partial": missing})

        gather = _Gather(len(procs), done)
        for c in procs:
            info = (c.peer_info.get("pid"), c.peer_info.get("worker_id") or "",
                    "DRIVER" if c.peer_info.get("role") == "driver" else "WORKER")
            try:
                WorkerClient(c).object_refs(_answer_into(gather, info))
            except rpc.ConnectionClosed:
                gather.add(None)
        gather.start(OBJECTS_TIMEOUT_S)
        return rpc.DEFER


def _answer_into(gather: "_Gather", info: tuple):
    def answer(ok: bool, rows) -> None:
        gather.add(info + (rows,) if ok else None)
    return answer


class _Gather:
    """Collects ``n`` answers, then calls ``done(answers, missing)`` once: when the last
    arrives or at the deadline, whichever is first."""

    def __init__(self, n: int, done):
        self.n = n
        self.answers: list = []
        self.missing = 0
        self._done = done
        self._lock = threading.Lock()
        self._finished = False
        self._timer: threading.Timer | None = None

    def add(self, answer) -> None:
        with self._lock:
            if self._finished:
                return
            if answer is None:
                self.missing += 1
            else:
                self.answers.append(answer)
            last = len(self.answers) + self.missing >= self.n
        if last:
            self._finish()

    def start(self, timeout: float) -> None:
        if self.n == 0:
            self._finish()
            return
        with self._lock:
            if self._finished:
                return
        self._timer = threading.Timer(timeout, self._finish)
        self._timer.daemon = True
        self._timer.start()

    def _finish(self) -> None:
        with self._lock:
            if self._finished:
                return
            self._finished = True
            answers, missing = list(self.answers), self.n - len(self.answers)
        if self._timer is not None:
            self._timer.cancel()
        self._done(answers, missing)

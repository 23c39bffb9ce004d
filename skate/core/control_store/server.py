"""The control store process.

It keeps the cluster's tables and runs the actor lifecycle: an actor is
created by leasing a dedicated worker from a node manager and sending it the
class; when that worker dies the actor restarts (``max_restarts``) or is
marked dead. Callers watch an actor's record with ``wait_actor`` (a long
poll answered when its version changes) and talk to the actor directly.

Actors die with the job that made them unless detached.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

from skate.core import rpc
from skate.core.control_store.persistence import Persistence
from skate.core.control_store.placement_groups import PlacementGroups
from skate.core.node_manager.client import NodeManagerClient
from skate.core.pids import alive as _alive
from skate.core.protocol import ActorStart, JobRef
from skate.core.worker.client import WorkerClient
from skate.exceptions import ActorAlreadyExistsError

log = logging.getLogger("skate.control_store")

PENDING, ALIVE, RESTARTING, DEAD = "PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD"
#: A node still connected but silent for this long is declared dead (node managers beat
#: every 0.1 s). A node whose connection drops (kill -9, a crash) is declared dead at once;
#: this timeout only catches hung ones, so it is generous: a loaded 2-core machine can
#: starve a process for seconds.
NODE_TIMEOUT_S = float(os.environ.get("SKATE_NODE_TIMEOUT_S", 30.0))


@dataclass
class ActorRecord:
    actor_id: bytes
    spec: dict  # class_name, creation payload, resources, max_restarts, ...
    job_id: str
    name: str | None
    namespace: str
    detached: bool
    state: str = PENDING
    address: str | None = None
    worker_id: str | None = None
    pid: int | None = None
    node_id: str | None = None
    lease_id: int | None = None
    num_restarts: int = 0
    death_cause: str | None = None
    version: int = 0
    watchers: list = field(default_factory=list)  # (conn, rid)
    killed_no_restart: bool = False
    lease_raylet: object = None  # the node manager that granted its worker

    def info(self) -> dict:
        return {
            "actor_id": self.actor_id, "state": self.state, "address": self.address,
            "version": self.version, "death_cause": self.death_cause, "pid": self.pid,
            "num_restarts": self.num_restarts, "name": self.name, "namespace": self.namespace,
            "class_name": self.spec.get("class_name"), "node_id": self.node_id,
            "job_id": self.job_id, "detached": self.detached,
        }


class ControlStore:
    def __init__(self, address: str, owner_pid: int = 0, tcp: str | None = None,
                 db_path: str | None = None):
        self.lock = threading.RLock()
        self.owner_pid = owner_pid
        self.nodes: dict[str, dict] = {}
        self.available: dict[str, dict] = {}  # node -> free resources, from heartbeats
        self.last_seen: dict[str, float] = {}  # node -> monotonic time of its last heartbeat
        self.raylets: dict[str, NodeManagerClient] = {}
        self.actors: dict[bytes, ActorRecord] = {}
        self.named: dict[tuple, bytes] = {}
        self.by_worker: dict[str, bytes] = {}
        # worker id -> non-detached actors it created (drivers' end with their job instead)
        self.owned_by: dict[str, set] = {}
        self.kv: dict[tuple, bytes] = {}
        self.jobs: dict[str, dict] = {}
        self._next_job = 1
        self.placement_groups = PlacementGroups(self)
        self.db = Persistence(db_path) if db_path else None
        self._restored: list[ActorRecord] = []  # detached actors to recreate once a node joins
        if self.db is not None:
            self._restore()
        self.stopping = threading.Event()
        self.listener = rpc.Listener(address, self._handle, on_close=self._on_close, name="gcs")
        self.address = self.listener.address
        # other machines' node managers and drivers join over gRPC
        self.tcp_listener = None
        if tcp:
            from skate.core.rpc.grpc_transport import GrpcListener

            self.tcp_listener = GrpcListener(tcp, self._handle, on_close=self._on_close,
                                             name="gcs-grpc")

    def _handle(self, conn, method, args, rid):
        fn = getattr(self, "h_" + method, None)
        if fn is None:
            raise ValueError(f"control store has no method {method!r}")
        with self.lock:
            return fn(conn, rid, *args)

    def _on_close(self, conn) -> None:
        with self.lock:
            job = conn.peer_info.get("job_id")
            if job is not None:
                self.jobs[job]["alive"] = False
                self.jobs[job]["end_time"] = time.time()
                for rec in list(self.actors.values()):
                    if rec.job_id == job and not rec.detached and rec.state != DEAD:
                        self._kill(rec, "the job (driver) that created it exited")
                self.placement_groups.job_finished(job)
            node = conn.peer_info.get("node_id")
            if node is not None:
                self._node_died(node, "its node manager disconnected")

    def _node_died(self, node: str, why: str) -> None:
        info = self.nodes.get(node)
        if info is None or not info["Alive"]:
            return
        log.warning("node %s is dead: %s", node, why)
        info["Alive"] = False
        info["death_reason"] = why
        raylet = self.raylets.pop(node, None)
        if raylet is not None:
            raylet.close()
        for rec in list(self.actors.values()):
            if rec.node_id == node and rec.state != DEAD and rec.worker_id is not None:
                self._on_worker_gone(rec.worker_id, f"its node died ({why})")
        for rec in list(self.actors.values()):  # owners that were task workers there
            if rec.spec.get("owner_node") == node and rec.spec.get("owner_worker") \
                    and not rec.detached and rec.state != DEAD:
                self._kill(rec, f"the node of the worker that created it died ({why})")
        self.placement_groups.node_died(node)

    # -- persistence ---------------------------------------------------------
    def _restore(self) -> None:
        assert self.db is not None  # called only when persistence is on
        self.kv.update(self.db.load_kv())
        self._next_job = int(self.db.get_meta("next_job") or 1)
        for fields in self.db.load_actors():
            rec = ActorRecord(**fields)
            rec.state = RESTARTING
            self.actors[rec.actor_id] = rec
            if rec.name is not None:
                self.named[(rec.namespace, rec.name)] = rec.actor_id
            self._restored.append(rec)
        if self._restored:
            log.info("restored %d detached actor(s) from %s", len(self._restored), "the database")

    def _persist_actor(self, rec: ActorRecord) -> None:
        if self.db is None or not rec.detached or self.stopping.is_set():
            return
        if rec.state == DEAD:
            self.db.drop_actor(rec.actor_id)
        else:
            self.db.save_actor(rec.actor_id, {
                "actor_id": rec.actor_id, "spec": rec.spec, "job_id": rec.job_id,
                "name": rec.name, "namespace": rec.namespace, "detached": True,
                "num_restarts": rec.num_restarts})

    # -- nodes and jobs --------------------------------------------------
    def h_register_node(self, conn, rid, node_id, info):
        conn.peer_info["node_id"] = node_id
        self.nodes[node_id] = dict(info, NodeID=node_id, Alive=True)
        self.available[node_id] = dict(info["Resources"])
        self.last_seen[node_id] = time.monotonic()
        self.raylets[node_id] = NodeManagerClient(rpc.connect(info["raylet_address"],
                                                                  name="gcs->raylet"))
        restored, self._restored = self._restored, []
        for rec in restored:  # detached actors from before a head restart come back
            self._schedule(rec)
        return True

    def h_get_nodes(self, conn, rid):
        return list(self.nodes.values())

    def h_cluster_view(self, conn, rid, node_id, available, total=None):
        """A node's heartbeat: it reports its resources and gets everyone's view back.

        ``total`` changes when placement group bundles add their resources.
        """
        if node_id is not None and node_id in self.nodes:
            if not self.nodes[node_id]["Alive"]:
                return None  # declared dead: the node must stop
            self.available[node_id] = available
            if total is not None:
                self.nodes[node_id]["Resources"] = total
            self.last_seen[node_id] = time.monotonic()
        return {n: (info["Resources"], self.available.get(n, {}), info["Alive"],
                    info["raylet_address"], info.get("transfer_address", ""),
                    info.get("stream_address", ""))
                for n, info in self.nodes.items()}

    def h_cluster_resources(self, conn, rid):
        total, avail = {}, {}
        for n, info in self.nodes.items():
            if not info["Alive"]:
                continue
            for k, v in info["Resources"].items():
                total[k] = total.get(k, 0) + v
            for k, v in self.available.get(n, {}).items():
                avail[k] = avail.get(k, 0) + v
        return total, avail

    def _check_heartbeats(self) -> None:
        now = time.monotonic()
        with self.lock:
            for n, info in list(self.nodes.items()):
                if info["Alive"] and now - self.last_seen.get(n, now) > NODE_TIMEOUT_S:
                    self._node_died(n, f"no heartbeat for {NODE_TIMEOUT_S:.0f} s")

    def h_register_job(self, conn, rid, driver_address, namespace, job_config=None):
        job_id = f"{self._next_job:08x}"
        self._next_job += 1
        if self.db is not None:
            self.db.set_meta("next_job", str(self._next_job))
        conn.peer_info["job_id"] = job_id
        self.jobs[job_id] = {"job_id": job_id, "driver": driver_address, "namespace": namespace,
                             "alive": True, "start_time": time.time(),
                             "config": job_config or {}}
        return job_id

    def h_get_job(self, conn, rid, job_id):
        return self.jobs.get(job_id)

    # -- kv ----------------------------------------------------------------
    def h_kv_put(self, conn, rid, ns, key, value, overwrite=True):
        k = (ns, key)
        if not overwrite and k in self.kv:
            return False
        self.kv[k] = value
        if self.db is not None:
            self.db.kv_put(ns, key, value)
        return True

    def h_kv_get(self, conn, rid, ns, key):
        return self.kv.get((ns, key))

    def h_kv_del(self, conn, rid, ns, key):
        if self.db is not None:
            self.db.kv_del(ns, key)
        return self.kv.pop((ns, key), None) is not None

    def h_kv_keys(self, conn, rid, ns, prefix):
        return [k for (n, k) in self.kv if n == ns and k.startswith(prefix)]

    # -- actors ------------------------------------------------------------
    def h_create_actor(self, conn, rid, actor_id, spec, job_id, name, namespace, detached,
                       get_if_exists):
        if name is not None:
            existing = self.named.get((namespace, name))
            if existing is not None and self.actors[existing].state != DEAD:
                if get_if_exists:
                    found = self.actors[existing]
                    return ("exists", found.info(), found.spec["meta"])
                raise ActorAlreadyExistsError(
                    f"An actor named {name!r} already exists in namespace {namespace!r}. "
                    f"Use get_if_exists=True to reuse it, skate.get_actor({name!r}) to look it "
                    f"up, or pick another name.")
        rec = ActorRecord(actor_id, spec, job_id, name, namespace, detached)
        self.actors[actor_id] = rec
        owner = spec.get("owner_worker")
        if owner and not detached:
            self.owned_by.setdefault(owner, set()).add(actor_id)
        if name is not None:
            self.named[(namespace, name)] = actor_id
        self._persist_actor(rec)
        self._schedule(rec)
        return ("created", rec.info(), None)

    def _schedule(self, rec: ActorRecord) -> None:
        """Lease a dedicated worker for the actor (following spillback) and create it there."""
        raylet = self._raylet_for(rec)
        if raylet is None:
            self._set_dead(rec, "no node is alive to run the actor")
            return
        self._request_actor_lease(rec, raylet, rec.num_restarts, hops=0)

    def _raylet_for(self, rec: ActorRecord):
        home = rec.spec.get("home_node")
        if home in self.raylets:
            return self.raylets[home]
        head = next((n for n, i in self.nodes.items() if i["Alive"] and i.get("is_head")), None)
        return ((self.raylets.get(head) if head is not None else None)
                or next(iter(self.raylets.values()), None))

    def _retry_actor_lease(self, rec: ActorRecord, attempt: int) -> None:
        with self.lock:
            if rec.state == DEAD or rec.num_restarts != attempt:
                return
            raylet = self._raylet_for(rec)
            if raylet is None:
                self._set_dead(rec, "no node is alive to run the actor")
                return
            self._request_actor_lease(rec, raylet, attempt, 0)

    def _retry_actor_lease_later(self, rec: ActorRecord, attempt: int) -> None:
        if self.stopping.is_set():
            return
        t = threading.Timer(0.2, self._retry_actor_lease, (rec, attempt))
        t.daemon = True
        t.start()

    def _request_actor_lease(self, rec: ActorRecord, raylet, attempt: int, hops: int) -> None:
        spec = rec.spec

        def granted(ok, value):
            with self.lock:
                if rec.state == DEAD or rec.num_restarts != attempt:
                    if ok and value and value[0] != "spill":
                        raylet.return_lease(value[0], True)
                    return
                if not ok and isinstance(value, rpc.ConnectionClosed):
                    # the node manager asked died, or hung and was declared dead (we closed
                    # its connection), before it answered: ask again, from home
                    log.info("actor %s: its lease request was lost with its node (%s); "
                             "asking again", rec.actor_id.hex(), value)
                    self._retry_actor_lease_later(rec, attempt)
                    return
                if not ok or value is None:
                    self._set_dead(rec, f"could not get a worker for the actor: {value}")
                    return
                if value[0] == "spill":
                    target = self.raylets.get(value[2])
                    if target is not None and hops < 8:
                        self._request_actor_lease(rec, target, attempt, hops + 1)
                    else:
                        # sent to a node that just died, or views disagree: node managers'
                        # views catch up within a heartbeat, so ask again from home shortly
                        self._retry_actor_lease_later(rec, attempt)
                    return
                lease_id, worker_id, address, gpu_ids, node_id = value
                rec.lease_id, rec.worker_id, rec.node_id = lease_id, worker_id, node_id
                rec.lease_raylet = raylet
                self.by_worker[worker_id] = rec.actor_id
            try:
                wconn = rpc.connect(address, name="gcs->actor")
            except OSError as e:
                with self.lock:
                    self._on_worker_gone(worker_id, f"its worker could not be reached: {e}")
                return

            def created(ok2, value2):
                wconn.close()
                with self.lock:
                    if rec.state == DEAD or rec.num_restarts != attempt:
                        return
                    if not ok2 and isinstance(value2, rpc.ConnectionClosed):
                        # its worker died while creating it: a restart like any other
                        self._on_worker_gone(worker_id, f"its worker died during creation "
                                                        f"({value2})")
                        return
                    if not ok2:
                        self._set_dead(rec, f"the actor's constructor raised: {value2}")
                        raylet.return_lease(lease_id, True)
                        return
                    rec.state = ALIVE
                    rec.address = address
                    rec.pid = value2
                    self._bump(rec)

            start = ActorStart(rec.actor_id, spec["payload"], gpu_ids, spec["resources"],
                               rec.num_restarts, tuple(JobRef(rec.job_id, rec.namespace)),
                               spec["meta"])
            WorkerClient(wconn).start_actor(tuple(start), callback=created)

        raylet.request_lease(spec["resources"], spec.get("env_vars"), True, spec.get("strategy"),
                             None, hops > 0, callback=granted)

    def _bump(self, rec: ActorRecord) -> None:
        rec.version += 1
        watchers, rec.watchers = rec.watchers, []
        info = rec.info()
        for c, r in watchers:
            c.reply(r, info)

    def _set_dead(self, rec: ActorRecord, cause: str) -> None:
        rec.state = DEAD
        owned = self.owned_by.get(rec.spec.get("owner_worker") or "")
        if owned is not None:
            owned.discard(rec.actor_id)
        self._persist_actor(rec)
        rec.address = None
        rec.death_cause = cause
        if rec.name is not None and self.named.get((rec.namespace, rec.name)) == rec.actor_id:
            del self.named[(rec.namespace, rec.name)]
        self._bump(rec)

    def _kill(self, rec: ActorRecord, cause: str) -> None:
        wid = rec.worker_id
        self._set_dead(rec, cause)
        if wid is not None:
            self._kill_worker(rec, wid)

    def _kill_worker(self, rec: ActorRecord, wid: str) -> None:
        raylet = self.raylets.get(rec.node_id) if rec.node_id is not None else None
        for r in ([raylet] if raylet is not None else self.raylets.values()):
            r.kill_worker(wid)

    def _on_worker_gone(self, worker_id: str, why: str) -> None:
        actor_id = self.by_worker.pop(worker_id, None)
        rec = self.actors.get(actor_id) if actor_id else None
        if rec is None or rec.state == DEAD or rec.worker_id != worker_id:
            return
        max_restarts = rec.spec.get("max_restarts", 0)
        if rec.killed_no_restart or not (max_restarts == -1 or rec.num_restarts < max_restarts):
            self._set_dead(rec, rec.death_cause if rec.killed_no_restart and rec.death_cause
                           else f"the actor's worker process died ({why}) and max_restarts="
                                f"{max_restarts} restarts were used")
            return
        rec.num_restarts += 1
        rec.state = RESTARTING
        rec.address = None
        rec.worker_id = None
        self._bump(rec)
        self._schedule(rec)

    def h_worker_died(self, conn, rid, worker_id, owner_gone=True):
        self._on_worker_gone(worker_id, "the process exited")
        if owner_gone:
            self._kill_owned(worker_id, "the worker that created it (its owner) died")

    def _kill_owned(self, worker_id: str, why: str) -> None:
        """Non-detached actors die with the task or actor that created them (as in Ray):
        nobody could reach them through their owner any more, and a retried creator makes
        new ones, so they would only hold their resources."""
        for aid in self.owned_by.pop(worker_id, ()):
            rec = self.actors.get(aid)
            if rec is not None and rec.state != DEAD:
                self._kill(rec, why)

    def h_actor_exited(self, conn, rid, actor_id, why):
        """The actor ended itself (exit_actor): dead, never restarted."""
        rec = self.actors.get(actor_id)
        if rec is not None and rec.state != DEAD:
            rec.killed_no_restart = True
            self._set_dead(rec, why)

    def h_kill_actor(self, conn, rid, actor_id, no_restart):
        rec = self.actors.get(actor_id)
        if rec is None:
            raise ValueError(f"no actor with id {actor_id.hex()}")
        if rec.state == DEAD:
            return False
        if no_restart:
            rec.killed_no_restart = True
            rec.death_cause = "the actor was killed by skate.kill()"
            self._kill(rec, rec.death_cause)
        elif rec.worker_id is not None:
            self._kill_worker(rec, rec.worker_id)
        return True

    def h_get_actor_info(self, conn, rid, actor_id):
        rec = self.actors.get(actor_id)
        return None if rec is None else rec.info()

    def h_wait_actor(self, conn, rid, actor_id, version):
        """Answer with the actor's record once its version is above ``version``."""
        rec = self.actors.get(actor_id)
        if rec is None:
            return None
        if rec.version > version or rec.state == DEAD:
            return rec.info()
        rec.watchers.append((conn, rid))
        return rpc.DEFER

    def h_get_named_actor(self, conn, rid, name, namespace):
        aid = self.named.get((namespace, name))
        if aid is None:
            return None
        rec = self.actors[aid]
        return rec.info(), rec.spec["meta"]

    def h_list_named_actors(self, conn, rid, namespace, all_namespaces):
        return [{"name": n, "namespace": ns} for (ns, n), aid in self.named.items()
                if all_namespaces or ns == namespace]

    def h_list_actors(self, conn, rid):
        return [r.info() for r in self.actors.values()]

    # -- placement groups ------------------------------------------------------
    def h_create_placement_group(self, conn, rid, pg_id, bundles, strategy, name, namespace,
                                 job_id, detached):
        return self.placement_groups.create(pg_id, bundles, strategy, name, namespace, job_id,
                                            detached)

    def h_wait_placement_group(self, conn, rid, pg_id):
        info = self.placement_groups.wait(pg_id, conn, rid)
        return rpc.DEFER if info is None else info

    def h_remove_placement_group(self, conn, rid, pg_id):
        self.placement_groups.remove(pg_id)
        return True

    def h_placement_group_table(self, conn, rid, pg_id):
        return self.placement_groups.table(pg_id)

    def h_get_named_placement_group(self, conn, rid, name, namespace):
        return self.placement_groups.by_name(name, namespace)

    def h_ping(self, conn, rid):
        return "pong"

    def h_warning(self, conn, rid, message):
        log.warning(message)

    def h_shutdown(self, conn, rid):
        self.stopping.set()
        return True

    def run(self) -> None:
        while not self.stopping.wait(0.25):
            if self.owner_pid and not _alive(self.owner_pid):
                break
            self._check_heartbeats()
            with self.lock:
                self.placement_groups.try_place_all()
        self.listener.close()
        if self.tcp_listener is not None:
            self.tcp_listener.close()




def _detach_stdout() -> None:
    """After "ready", stdout may be a pipe nobody reads any more."""
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.close(fd)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="skate-control-store")
    p.add_argument("--address", required=True)
    p.add_argument("--session-dir", required=True)
    p.add_argument("--owner-pid", type=int, default=0)
    p.add_argument("--tcp", default=None, help="also listen on HOST:PORT")
    args = p.parse_args(argv)
    logging.basicConfig(filename=os.path.join(args.session_dir, "logs", "gcs.log"),
                        level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rpc.set_token(os.environ.get("SKATE_TOKEN"))
    cs = ControlStore(args.address, args.owner_pid, args.tcp,
                      os.path.join(args.session_dir, "gcs.sqlite3"))
    signal.signal(signal.SIGTERM, lambda *a: cs.stopping.set())
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    _detach_stdout()
    cs.run()
    os._exit(0)


if __name__ == "__main__":
    main()

"""The control store process: the cluster's tables, and the I/O shell of the actor lifecycle.

It keeps nodes (and their liveness), jobs, a small KV store, placement groups
and actors. Every actor decision is made by the pure state machine in
``actors.py``: this module turns RPCs, replies, disconnections and timers into
its events (under ``lock``) and carries out the commands it returns with the
node manager and worker clients. Callers watch an actor's record with
``wait_actor`` (a long poll answered when its version changes) and talk to the
actor directly.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
import threading
import time
from typing import Any, Callable

from skate.core import rpc
from skate.core.config import node_timeout_s, task_events_max_per_job, token_from_env
from skate.core.control_store import actor_events as ev
from skate.core.control_store.actors import DEAD, Actors
from skate.core.control_store.metrics import MetricsTable, core_families
from skate.core.control_store.nodes import Nodes
from skate.core.control_store.persistence import Persistence
from skate.core.control_store.placement_groups import PlacementGroups
from skate.core.control_store.tasks import TaskTable
from skate.core.leftovers import hold_session, leave_session
from skate.core.pids import alive as _alive
from skate.core.protocol import LeaseGrant, Spill, is_spill
from skate.core.rpc import methods as m
from skate.core.worker.client import WorkerClient

log = logging.getLogger("skate.control_store")

#: A node still connected but silent for this long is declared dead (node managers beat
#: every 0.1 s). A node whose connection drops (kill -9, a crash) is declared dead at once;
#: this timeout only catches hung ones, so it is generous: a loaded 2-core machine can
#: starve a process for seconds.
NODE_TIMEOUT_S = node_timeout_s()
#: After a restart, how long the nodes that outlived the old control store have to come
#: back and report their actors before the unreported ones are recreated (they retry
#: every 0.1 s).
ADOPTION_WINDOW_S = 3.0


class ControlStore:
    """The control store's I/O shell: RPC handlers, the node/job/KV tables, persistence.

    Every handler runs under ``lock`` on a connection's reader thread and must not
    block. Actor decisions are :class:`~skate.core.control_store.actors.Actors`'s: a
    handler or reply callback feeds it an event and carries out the commands it
    returns (``_feed``), so the lifecycle's rules live in one pure place. Invariant:
    every ``wait_actor`` parked in ``watchers[a]`` is answered exactly once, at actor
    ``a``'s next version change (a DEAD actor's record is answered at once, never parked).
    """

    def __init__(self, address: str, owner_pid: int = 0, tcp: str | None = None,
                 db_path: str | None = None):
        self.lock = threading.RLock()  # every table below is read and written under it
        self.owner_pid = owner_pid
        self.nodes = Nodes()  # the actor machine's node table follows its live nodes
        self.actors = Actors(persist_all=not owner_pid)  # a `skate start` head's, restartable
        self.watchers: dict[bytes, list] = {}  # actor id -> [(conn, rid)] of wait_actor calls
        self.kv: dict[tuple, bytes] = {}
        self.jobs: dict[str, dict] = {}
        self.tasks = TaskTable(task_events_max_per_job())  # bounded history, per job
        self.metrics = MetricsTable()  # what processes report, summed per node
        self._next_job = 1
        self.placement_groups = PlacementGroups(self)
        self.stopping = threading.Event()
        self._commands: dict[type, Callable[[Any], None]] = {
            ev.RequestLease: self._request_lease, ev.ReturnLease: self._return_lease,
            ev.CancelLease: self._cancel_lease,
            ev.StartActor: self._start_actor, ev.KillWorker: self._kill_worker,
            ev.NotifyWatchers: self._notify_watchers, ev.Persist: self._persist,
            ev.DropPersisted: self._drop_persisted, ev.RetryLater: self._retry_later,
        }
        self.db = Persistence(db_path) if db_path else None
        if self.db is not None:
            self._restore()
        self._handlers: dict[str, Callable[..., Any]] = {
            m.REGISTER_NODE: self.h_register_node, m.GET_NODES: self.h_get_nodes,
            m.CLUSTER_VIEW: self.h_cluster_view, m.CLUSTER_RESOURCES: self.h_cluster_resources,
            m.REGISTER_JOB: self.h_register_job, m.GET_JOB: self.h_get_job,
            m.LIST_JOBS: self.h_list_jobs, m.TASK_EVENTS: self.h_task_events,
            m.LIST_TASKS: self.h_list_tasks, m.SUMMARIZE_TASKS: self.h_summarize_tasks,
            m.TASK_TIMELINE: self.h_task_timeline,
            m.REPORT_METRICS: self.h_report_metrics,
            m.METRICS: self.h_metrics,
            m.KV_PUT: self.h_kv_put, m.KV_GET: self.h_kv_get, m.KV_DEL: self.h_kv_del,
            m.KV_KEYS: self.h_kv_keys,
            m.CREATE_ACTOR: self.h_create_actor, m.WORKER_DIED: self.h_worker_died,
            m.ACTOR_EXITED: self.h_actor_exited, m.KILL_ACTOR: self.h_kill_actor,
            m.GET_ACTOR_INFO: self.h_get_actor_info, m.WAIT_ACTOR: self.h_wait_actor,
            m.GET_NAMED_ACTOR: self.h_get_named_actor,
            m.LIST_NAMED_ACTORS: self.h_list_named_actors, m.LIST_ACTORS: self.h_list_actors,
            m.CREATE_PLACEMENT_GROUP: self.h_create_placement_group,
            m.WAIT_PLACEMENT_GROUP: self.h_wait_placement_group,
            m.REMOVE_PLACEMENT_GROUP: self.h_remove_placement_group,
            m.PLACEMENT_GROUP_TABLE: self.h_placement_group_table,
            m.GET_NAMED_PLACEMENT_GROUP: self.h_get_named_placement_group,
            m.PING: self.h_ping, m.WARNING: self.h_warning, m.SHUTDOWN: self.h_shutdown,
        }
        self.listener = rpc.Listener(address, self._handle, on_close=self._on_close, name="gcs")
        self.address = self.listener.address
        # other machines' node managers and drivers join over gRPC
        self.tcp_listener = None
        if tcp:
            from skate.core.rpc.grpc_transport import GrpcListener

            self.tcp_listener = GrpcListener(tcp, self._handle, on_close=self._on_close,
                                             name="gcs-grpc")

    def _handle(self, conn, method, args, rid):
        fn = self._handlers.get(method)
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
                self._feed(ev.JobFinished(job))
                self.placement_groups.job_finished(job)
            node = conn.peer_info.get("node_id")
            if node is not None:
                self._node_died(node, "its node manager disconnected")

    def _node_died(self, node: str, why: str) -> None:
        # closing its client fails its outstanding lease requests: they come back as lost
        if not self.nodes.mark_dead(node, why):
            return
        log.warning("node %s is dead: %s", node, why)
        self.metrics.forget_node(node)
        self._feed(ev.NodeDied(node, why))
        self.placement_groups.node_died(node)

    def _restore(self) -> None:
        """Tables from before a head restart; detached actors come back once a node joins."""
        assert self.db is not None  # called only when persistence is on
        self.kv.update(self.db.load_kv())
        self._next_job = int(self.db.get_meta("next_job") or 1)
        # each start of the control store on this database is an epoch; a restored actor's
        # versions start above any it had before, so a watcher that reconnects hears of it
        epoch = int(self.db.get_meta("epoch") or 0) + 1
        self.db.set_meta("epoch", str(epoch))
        records = self.db.load_actors()
        for f in records:
            self._feed(ev.ActorRestored(f["actor_id"], f["spec"], f["job_id"], f["name"],
                                        f["namespace"], f.get("num_restarts", 0),
                                        f.get("detached", True), epoch << 32))
        if records:
            log.info("restored %d actor(s) from the database", len(records))
            # the nodes that outlived the old control store report their actors meanwhile
            timer = threading.Timer(ADOPTION_WINDOW_S, self._adoption_over)
            timer.daemon = True
            timer.start()

    # -- nodes and jobs --------------------------------------------------
    def h_register_node(self, conn, rid, node_id, info):
        """A node joins, or comes back after this control store restarted with the actors
        it still runs (``info["actors"]``: (actor id, attempt, lease grant)); False if it was
        declared dead (it must stop: its actors were recreated elsewhere)."""
        known = self.nodes.info.get(node_id)
        if known is not None and not known["Alive"]:
            return False
        conn.peer_info["node_id"] = node_id
        self.nodes.register(node_id, {k: v for k, v in info.items() if k != "actors"},
                            time.monotonic())
        self._feed(ev.NodeJoined(node_id, bool(info.get("is_head"))))
        for actor_id, attempt, grant in info.get("actors", ()):
            self._feed(ev.ActorAdopted(actor_id, attempt, node_id, LeaseGrant.read(grant)))
        return True

    def h_get_nodes(self, conn, rid):
        return list(self.nodes.info.values())

    def h_cluster_view(self, conn, rid, node_id, available, total=None):
        """A node's heartbeat: it reports its resources and gets everyone's view back, or
        None: it was declared dead and must stop."""
        if not self.nodes.heartbeat(node_id, available, total, time.monotonic()):
            return None
        return self.nodes.view()

    def h_cluster_resources(self, conn, rid):
        return self.nodes.cluster_resources()

    def _check_heartbeats(self) -> None:
        with self.lock:
            for n in self.nodes.silent(time.monotonic(), NODE_TIMEOUT_S):
                self._node_died(n, f"no heartbeat for {NODE_TIMEOUT_S:.0f} s")

    def h_register_job(self, conn, rid, driver_address, namespace, job_config=None,
                       job_id=None):
        """A new job's id; or, given ``job_id``, a driver back after this control store
        restarted (None: that job ended here, the driver must give up)."""
        if job_id is not None:
            known = self.jobs.get(job_id)
            if known is not None and not known["alive"]:
                return None
            self._next_job = max(self._next_job, int(job_id, 16) + 1)
        else:
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

    def h_list_jobs(self, conn, rid):
        return list(self.jobs.values())

    # -- task history ----------------------------------------------------------
    def h_task_events(self, conn, rid, entries):
        self.tasks.add(entries)

    def h_list_tasks(self, conn, rid, filters, limit, offset=0):
        return self.tasks.select(filters, limit, offset)

    def h_report_metrics(self, conn, rid, node_id, batch):
        self.metrics.apply(node_id, batch)

    def h_metrics(self, conn, rid, prefixes=None):
        """Every metric (or those whose name starts with one of ``prefixes``): the core's,
        from the tables here, and what processes reported."""
        want = tuple(prefixes) if prefixes else None
        families = [] if want is not None and not any("skate_".startswith(p) or
                                                      p.startswith("skate_") for p in want) \
            else core_families(self.nodes, self.actors, self.tasks)
        families += self.metrics.families(want)
        return families if want is None else [f for f in families
                                              if f["name"].startswith(want)]

    def h_summarize_tasks(self, conn, rid):
        return self.tasks.summary()

    def h_task_timeline(self, conn, rid):
        return self.tasks.timeline()

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

    # -- actors (the decisions are in actors.py) ----------------------------------------
    def h_create_actor(self, conn, rid, actor_id, spec, job_id, name, namespace, detached,
                       get_if_exists):
        if name is not None and get_if_exists:
            found = self.actors.find_named(namespace, name)
            if found is not None:
                return ("exists", found.info(), found.spec["meta"])
        if actor_id not in self.actors.actors:  # else: a call sent again after a reconnect
            self._feed(ev.ActorCreated(actor_id, spec, job_id, name, namespace, detached))
        return ("created", self.actors.actors[actor_id].info(), None)

    def h_worker_died(self, conn, rid, worker_id, owner_gone=True, why=None):
        self._feed(ev.WorkerGone(worker_id, why or "the process exited"))
        if owner_gone:
            self._feed(ev.OwnerDied(worker_id))

    def h_actor_exited(self, conn, rid, actor_id, why):
        """The actor ended itself (exit_actor): dead, never restarted."""
        self._feed(ev.ActorExited(actor_id, why))

    def h_kill_actor(self, conn, rid, actor_id, no_restart):
        a = self.actors.get(actor_id)
        if a is None:
            raise ValueError(f"no actor with id {actor_id.hex()}")
        if a.state == DEAD:
            return False
        self._feed(ev.KillRequested(actor_id, no_restart))
        return True

    def h_get_actor_info(self, conn, rid, actor_id):
        a = self.actors.get(actor_id)
        return None if a is None else a.info()

    def h_wait_actor(self, conn, rid, actor_id, version):
        """Answer with the actor's record once its version is above ``version``."""
        a = self.actors.get(actor_id)
        if a is None:
            return None
        if a.version > version or a.state == DEAD:
            return a.info()
        self.watchers.setdefault(actor_id, []).append((conn, rid))
        return rpc.DEFER

    def h_get_named_actor(self, conn, rid, name, namespace):
        a = self.actors.find_named(namespace, name)
        return None if a is None else (a.info(), a.spec["meta"])

    def h_list_named_actors(self, conn, rid, namespace, all_namespaces):
        return [{"name": n, "namespace": ns} for (ns, n) in self.actors.named
                if all_namespaces or ns == namespace]

    def h_list_actors(self, conn, rid):
        return [a.info() for a in self.actors.actors.values()]

    # -- carrying out the state machine's commands -------------------------------------------
    def _feed(self, event) -> None:
        """Hand the actor state machine an event and carry out its commands (lock held)."""
        for command in self.actors.handle(event):
            self._commands[type(command)](command)

    def _request_lease(self, c: ev.RequestLease) -> None:
        raylet = self.nodes.raylets.get(c.node_id)
        reply = functools.partial(self._lease_replied, c.actor_id, c.attempt, c.node_id, c.hops)
        if raylet is None:  # the machine's node table follows this one: not expected
            reply(False, rpc.ConnectionClosed(f"node {c.node_id} is not connected"))
            return
        raylet.request_lease(c.resources, c.env_vars, True, c.strategy, None, c.hops > 0,
                             callback=reply, tag=(c.actor_id, c.attempt))

    def _cancel_lease(self, c: ev.CancelLease) -> None:
        raylet = self.nodes.raylets.get(c.node_id)
        if raylet is not None:  # gone: its requests went with it
            raylet.cancel_tagged_lease((c.actor_id, c.attempt))

    def _lease_replied(self, actor_id, attempt, node_id, hops, ok, value) -> None:
        if ok and is_spill(value):
            event: object = ev.LeaseSpilled(actor_id, attempt, hops, Spill.read(value).node_id)
        elif ok and value is not None:
            event = ev.LeaseGranted(actor_id, attempt, node_id, LeaseGrant.read(value))
        elif not ok and isinstance(value, rpc.ConnectionClosed):
            # the node manager asked died, or hung and was declared dead (we closed its
            # connection), before it answered: the machine asks again, from home
            log.info("actor %s: its lease request was lost with its node (%s); asking again",
                     actor_id.hex(), value)
            event = ev.LeaseLost(actor_id, attempt, str(value))
        else:
            event = ev.LeaseFailed(actor_id, attempt, value)
        with self.lock:
            commands = self.actors.handle(event)
            for c in commands:
                if not isinstance(c, ev.StartActor):
                    self._commands[type(c)](c)
        for c in commands:  # connecting may take seconds (gRPC): not under the lock
            if isinstance(c, ev.StartActor):
                self._start_actor(c)

    def _start_actor(self, c: ev.StartActor) -> None:
        try:
            wconn = rpc.connect(c.address, name="gcs->actor")
        except OSError as e:
            with self.lock:
                self._feed(ev.WorkerGone(c.worker_id, f"its worker could not be reached: {e}"))
            return

        def started(ok, value):
            wconn.close()
            if ok:
                event: object = ev.StartSucceeded(c.actor_id, c.attempt, value)
            elif isinstance(value, rpc.ConnectionClosed):
                event = ev.StartLost(c.actor_id, c.attempt, str(value))
            else:
                event = ev.StartFailed(c.actor_id, c.attempt, value)
            with self.lock:
                self._feed(event)

        WorkerClient(wconn).start_actor(tuple(c.start), callback=started)

    def _return_lease(self, c: ev.ReturnLease) -> None:
        raylet = self.nodes.raylets.get(c.node_id)
        if raylet is not None:
            raylet.return_lease(c.lease_id, c.kill)

    def _kill_worker(self, c: ev.KillWorker) -> None:
        raylet = self.nodes.raylets.get(c.node_id) if c.node_id is not None else None
        for r in ([raylet] if raylet is not None else list(self.nodes.raylets.values())):
            r.kill_worker(c.worker_id)

    def _notify_watchers(self, c: ev.NotifyWatchers) -> None:
        for conn, rid in self.watchers.pop(c.actor_id, ()):
            conn.reply(rid, c.info)

    def _persist(self, c: ev.Persist) -> None:
        # none is dropped while it stops, so they come back with a restart
        if self.db is not None and not self.stopping.is_set():
            self.db.save_actor(c.actor_id, c.fields)

    def _drop_persisted(self, c: ev.DropPersisted) -> None:
        if self.db is not None and not self.stopping.is_set():
            self.db.drop_actor(c.actor_id)

    def _adoption_over(self) -> None:
        with self.lock:
            if not self.stopping.is_set():
                live = frozenset(j for j, rec in self.jobs.items() if rec["alive"])
                self._feed(ev.AdoptionOver(live))

    def _retry_later(self, c: ev.RetryLater) -> None:
        if self.stopping.is_set():
            return
        t = threading.Timer(c.delay_s, self._retry_due, (c.actor_id, c.attempt))
        t.daemon = True
        t.start()

    def _retry_due(self, actor_id: bytes, attempt: int) -> None:
        with self.lock:
            self._feed(ev.RetryDue(actor_id, attempt))

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
    rpc.set_token(token_from_env())
    lock = hold_session(args.session_dir)  # for life: this session is not a leftover
    cs = ControlStore(args.address, args.owner_pid, args.tcp,
                      os.path.join(args.session_dir, "gcs.sqlite3"))
    signal.signal(signal.SIGTERM, lambda *a: cs.stopping.set())
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    _detach_stdout()
    cs.run()
    if cs.db is not None:
        cs.db.close()
    leave_session(lock, args.session_dir)  # the last of the session's processes removes it
    os._exit(0)


if __name__ == "__main__":
    main()

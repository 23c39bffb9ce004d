"""The node manager process: the I/O shell around its lease books and object store.

Leases follow Ray's direct-call design (see ``leases.py``, which decides
everything about them as a pure state machine): this module turns RPCs,
worker exits and the heartbeat into its events, and executes the commands it
returns -- replies on connections, worker starts and kills, warnings to
users, worker deaths to the control store. The object store's requests are
``object_handlers.py``'s.

All state is guarded by ``self.lock``; handlers run on connection reader
threads and must not block (long waits answer later via DEFER). The clock
is read here, once per event, and passed in.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import signal
import sys
import threading
import time
from typing import Any, Callable

from skate.core import kill_points, rpc
from skate.core import resources as res
from skate.core.config import (
    IDLE_WORKER_TIMEOUT_S,
    MemoryMonitorConfig,
    NodeConfig,
    gcs_reconnect_timeout_s,
    log_rotation_max_bytes,
    token_from_env,
)
from skate.core.control_store.client import ControlStoreClient
from skate.core.ids import random_id
from skate.core.leftovers import hold_session, leave_session, reap
from skate.core.node_manager import leases as ls
from skate.core.node_manager import placement
from skate.core.node_manager.introspection import NodeIntrospection
from skate.core.node_manager.memory_monitor import MemoryMonitor
from skate.core.node_manager.object_handlers import ObjectStoreHandlers
from skate.core.node_manager.worker_logs import WorkerLogs
from skate.core.node_manager.worker_pool import WorkerPool, WorkerProc, worker_argv
from skate.core.object_store.store import ObjectStore
from skate.core.object_store.stream import StreamServer
from skate.core.object_store.transfer import TransferClient, TransferServer
from skate.core.pids import alive as _alive
from skate.core.rpc import methods as m
from skate.core.rpc.reconnecting import ReconnectingConnection, Refused
from skate.core.worker.client import WorkerClient

log = logging.getLogger("skate.node_manager")

HEARTBEAT_S = 0.1


class NodeManager(ObjectStoreHandlers, NodeIntrospection):
    """A node's I/O shell: leases through ``sched`` (the pure ``leases.Leases``), the worker
    pool's processes, the object store's books (``ObjectStoreHandlers``), heartbeats.

    Every handler runs under ``lock`` on a connection's reader thread and must not block.
    Lease decisions are ``sched``'s: a handler, a worker's exit or a heartbeat becomes an
    event, and the commands that come back are carried out in order, still under the lock
    (replies, worker starts and kills, the control store told of a death). Invariant:
    ``sched``'s workers are exactly the pool's live processes plus those whose exit is
    still on its way to ``_on_worker_exit``.
    """

    def __init__(self, cfg: NodeConfig):
        self.cfg = cfg
        self.lock = threading.RLock()
        self.address = f"unix:{os.path.join(cfg.session_dir, 'raylet.sock')}"
        self.sched = ls.Leases(
            cfg.node_id, res.to_units(cfg.resources), int(cfg.resources.get("GPU", 0)),
            pool_size=max(1, int(cfg.resources.get("CPU", 1))),
            prestart_workers=cfg.prestart_workers, idle_timeout_s=IDLE_WORKER_TIMEOUT_S,
            new_worker_id=lambda: random_id(8).hex(), address=self.address)
        self.store = ObjectStore(cfg.arena_path, cfg.object_store_memory,
                                 os.path.join(cfg.session_dir, "spill"))
        self.store_waiters: dict[bytes, list] = {}  # oid -> [(conn, rid)] waiting for seal
        self.log_subscribers: set[rpc.Connection] = set()
        self.worker_logs = WorkerLogs(os.path.join(cfg.session_dir, "logs"),
                                      log_rotation_max_bytes())
        self._init_introspection()
        argv = worker_argv(self.address, cfg.gcs_address, cfg.session_dir, cfg.node_id,
                           cfg.arena_path, self.store.capacity, cfg.node_ip)
        self.pool = WorkerPool(argv, cfg.session_dir, self._on_worker_lines,
                               on_exit=self._on_worker_exit,
                               on_zygote_ready=self._prestart)
        self.stopping = threading.Event()
        self.cluster_view: dict = {}  # node id -> placement.NodeView, refreshed by heartbeats
        self.handlers: dict[str, Callable[..., Any]] = {  # method -> h_<method>(conn, rid, ..)
            m.REGISTER_WORKER: self.h_register_worker,
            m.REGISTER_DRIVER: self.h_register_driver,
            m.HELLO_CONTROL_STORE: self.h_hello_control_store,
            m.SET_WORKER_NAME: self.h_set_worker_name,
            m.REQUEST_LEASE: self.h_request_lease,
            m.CANCEL_LEASE_REQUEST: self.h_cancel_lease_request,
            m.CANCEL_TAGGED_LEASE: self.h_cancel_tagged_lease,
            m.RETURN_LEASE: self.h_return_lease,
            m.BLOCKED: self.h_blocked,
            m.PREPARE_BUNDLE: self.h_prepare_bundle,
            m.RETURN_BUNDLE: self.h_return_bundle,
            m.KILL_WORKER: self.h_kill_worker,
            m.WORKER_EXIT_CAUSE: self.h_worker_exit_cause,
            m.RESOURCES: self.h_resources,
            m.NODE_INFO: self.h_node_info,
            m.SCHEDULER_STATE: self.h_scheduler_state,
            m.FLUSH_LOGS: self.h_flush_logs,
            m.LIST_WORKERS: self.h_list_workers,
            m.LIST_LOGS: self.h_list_logs,
            m.READ_LOG: self.h_read_log,
            m.DEMAND: self.h_demand,
            m.LIST_OBJECTS: self.h_list_objects,
            m.PING: self.h_ping,
            m.SHUTDOWN: self.h_shutdown,
            m.STORE_CREATE: self.h_store_create,
            m.STORE_SEAL: self.h_store_seal,
            m.STORE_ABORT: self.h_store_abort,
            m.STORE_GET: self.h_store_get,
            m.STORE_RELEASE_FREE: self.h_store_release_free,
            m.STORE_STATS: self.h_store_stats,
            m.STORE_OBJECTS: self.h_store_objects,
        }
        self.listener = rpc.listen(self.address, self._handle, on_close=self._on_close,
                                   name="raylet")
        self.address = self.listener.address
        self.pulling: set = set()  # objects being pulled from other nodes
        self._senders = itertools.count()
        self.transfer_server = TransferServer(cfg.node_ip, self._open_for_send,
                                              rpc.current_token())
        self.stream_server = StreamServer(cfg.node_ip, self._open_for_stream,
                                          rpc.current_token())
        with self.lock:
            self.sched.address = self.address
            self.sched.transfer_address = self.transfer_server.address
            self.sched.stream_address = self.stream_server.address
        self.transfer_client = TransferClient(rpc.current_token(), cfg.node_id)
        self._peer_nodes: dict[str, rpc.Connection] = {}  # node id -> its node manager
        self._peer_nodes_lock = threading.Lock()  # taken alone, never with self.lock
        self._node_info = {
            "NodeManagerAddress": cfg.node_ip, "raylet_address": self.address,
            "Resources": cfg.resources, "object_store_memory": self.store.capacity,
            "arena_path": cfg.arena_path, "is_head": cfg.is_head,
            "session_dir": cfg.session_dir,
            "transfer_address": self.transfer_server.address,
            "stream_address": self.stream_server.address,
        }
        # a `skate start` head's control store may be restarted: wait for it meanwhile
        self.gcs = ControlStoreClient(_connect_retry(
            cfg.gcs_address, "raylet->gcs", gcs_reconnect_timeout_s(), self._reregister))
        self.gcs.register_node(cfg.node_id, self._node_info)
        if self.pool.zygote is None:  # with a zygote, once it is ready (workers with its
            self._prestart()          # modules imported); leases meanwhile start their own
        self.memory_monitor = MemoryMonitor(self, MemoryMonitorConfig.from_env())
        self.memory_monitor.start()

    def _prestart(self) -> None:
        """Fill the pool of idle workers; with a zygote (it calls this once ready), idle
        workers started without it are replaced: the pool's workers have its modules."""
        with self.lock:
            self._feed(ls.Prestart(self.pool.zygote is not None))

    # -- the lease books: events in, commands out ---------------------------
    def _feed(self, event) -> None:
        """Apply ``event`` to the lease books and execute what they decide (under the lock)."""
        self._execute(self._decide(event))

    def _decide(self, event) -> list:
        z = self.pool.zygote
        self.sched.zygote_up = z is not None and z.ready and not z.gone
        return self.sched.handle(event)

    def _execute(self, commands: list) -> None:
        for c in commands:
            kind = type(c)
            if kind is ls.Grant:
                self._grant(c)
            elif kind is ls.SpillTo:
                c.requester.reply(c.rid, tuple(c.spill))
            elif kind is ls.Answer:
                c.requester.reply(c.rid, c.value)
            elif kind is ls.Fail:
                c.requester.reply(c.rid, c.error, ok=False)
            elif kind is ls.StartWorker:
                self._start_worker(c)
            elif kind is ls.KillWorker:
                w = self.pool.workers.get(c.worker_id)
                if w is not None:
                    self.pool.kill(w)
            elif kind is ls.NotifyWorkerDied:
                monitor = getattr(self, "memory_monitor", None)  # made last in __init__
                cause = monitor.exit_cause(c.worker_id) if monitor is not None else None
                try:
                    self.gcs.worker_died(c.worker_id, c.owner_died,
                                         cause[1] if cause is not None else None)
                except rpc.ConnectionClosed:
                    pass
            elif kind is ls.Warn:
                log.warning(c.message)
                WorkerClient(c.requester).warning(c.message)
            else:
                raise AssertionError(f"unknown lease command {c!r}")

    def _grant(self, c: ls.Grant) -> None:
        if c.requester.closed:  # gone before its requests were dropped: keep the worker
            self._feed(ls.LeaseReturned(c.grant.lease_id, False, time.monotonic()))
            return
        c.requester.reply(c.rid, tuple(c.grant))
        if c.env_vars and kill_points.fires(kill_points.hooks_of(c.env_vars), "lease_granted"):
            w = self.pool.workers.get(c.grant.worker_id)
            if w is not None:
                self.pool.kill(w)  # test hook: the worker dies with its grant in flight

    def _start_worker(self, c: ls.StartWorker) -> None:
        if self.stopping.is_set():
            return
        try:
            self.pool.start(c.worker_id, c.env_key, c.env_vars)
        except Exception:  # counted as a failed start: it backs off, then fails the requests
            log.exception("starting worker %s failed", c.worker_id)
            self._feed(ls.WorkerGone(c.worker_id, time.monotonic()))

    # -- dispatch --------------------------------------------------------
    def _handle(self, conn, method, args, rid):
        fn = self.handlers.get(method)
        if fn is None:
            raise ValueError(f"node manager has no method {method!r}")
        with self.lock:
            return fn(conn, rid, *args)

    def _on_close(self, conn) -> None:
        if self.stopping.is_set():
            return
        with self.lock:
            self.log_subscribers.discard(conn)
            for oid in self.store.release_reader(id(conn)):  # it died writing these
                for c, r in self.store_waiters.pop(oid, []):
                    c.reply(r, None)
            now = time.monotonic()
            # leases held by a departed submitter end; its requests are dropped -- but the
            # actors of a control store that may come back keep their workers (adopted)
            gcs = conn.peer_info.get("role") == "gcs" and not self.gcs.closed
            self._feed(ls.RequesterGone(conn, now, keep_granted=gcs))
            role = conn.peer_info.get("role")
            if role == "worker":
                self._feed(ls.WorkerGone(conn.peer_info["worker_id"], now))
            if role in ("driver", "worker"):
                self._free_copies(self.store.free_owner(conn.peer_info.get("address")))

    def _on_worker_exit(self, w: WorkerProc) -> None:
        """A worker process exited (seen by the pool, which reaped it): whatever it held is
        returned and waiting work gets a replacement; one that died starting counts as a
        failed start."""
        self.worker_logs.close(w.worker_id)
        with self.lock:
            if self.stopping.is_set():
                return
            self._record_exit(w)
            self._feed(ls.WorkerGone(w.worker_id, time.monotonic(), w.returncode,
                                     tuple(w.stderr_tail), w.pid))

    # -- registration ----------------------------------------------------
    def h_register_worker(self, conn, rid, worker_id, pid, address):
        w = self.pool.workers.get(worker_id)
        if w is None:
            raise ValueError(f"unknown worker {worker_id}")
        conn.peer_info.update(role="worker", worker_id=worker_id, address=address, pid=pid)
        w.conn = conn
        w.address = address
        w.registered = True
        commands = self._decide(ls.WorkerRegistered(worker_id, address, w.forked,
                                                    time.monotonic()))
        conn.reply(rid, {"node_id": self.cfg.node_id})  # before the grant of its first lease
        self._execute(commands)
        return rpc.DEFER

    def h_hello_control_store(self, conn, rid):
        conn.peer_info["role"] = "gcs"

    def h_register_driver(self, conn, rid, address, log_to_driver, worker_id="", pid=None):
        conn.peer_info.update(role="driver", address=address, worker_id=worker_id, pid=pid)
        if log_to_driver:
            self.log_subscribers.add(conn)
        return {
            "node_id": self.cfg.node_id, "arena_path": self.cfg.arena_path,
            "capacity": self.store.capacity, "node_ip": self.cfg.node_ip,
        }

    def h_set_worker_name(self, conn, rid, name):
        w = self.pool.workers.get(conn.peer_info.get("worker_id"))
        if w is not None:
            w.name = name

    # -- leases ----------------------------------------------------------
    def h_request_lease(self, conn, rid, request: dict, env_vars, dedicated, strategy=None,
                        preferred_node=None, spilled=False, tag=None, retriable=True):
        self._feed(ls.RequestLease(conn, rid, res.to_units(request), env_vars, dedicated,
                                   strategy, preferred_node, spilled, time.monotonic(), tag,
                                   retriable))
        return rpc.DEFER

    def h_cancel_tagged_lease(self, conn, rid, tag):
        """Drop this requester's unanswered request of ``tag`` (answered with None)."""
        self._feed(ls.CancelTagged(conn, tag))

    def h_cancel_lease_request(self, conn, rid, count):
        """Drop up to ``count`` of this requester's unanswered lease requests; the answer is
        how many were."""
        self._feed(ls.CancelRequests(conn, rid, count))
        return rpc.DEFER

    def h_return_lease(self, conn, rid, lease_id, kill=False):
        self._feed(ls.LeaseReturned(lease_id, kill, time.monotonic()))

    def h_blocked(self, conn, rid, blocked: bool):
        """A leased worker waits in ``get`` (True) or resumes (False): lend out its CPUs
        meanwhile."""
        worker_id = conn.peer_info.get("worker_id")
        if worker_id is not None:
            self._feed(ls.Blocked(worker_id, blocked, time.monotonic()))

    def h_prepare_bundle(self, conn, rid, pg_hex: str, index: int, bundle: dict):
        """Reserve a bundle here: its resources become the group's, or refuse (False)."""
        self._feed(ls.PrepareBundle(conn, rid, pg_hex, index, bundle, time.monotonic()))
        return rpc.DEFER

    def h_return_bundle(self, conn, rid, pg_hex: str, index: int):
        self._feed(ls.ReturnBundle(pg_hex, index, time.monotonic()))

    def h_kill_worker(self, conn, rid, worker_id):
        w = self.pool.workers.get(worker_id)
        if w is not None:
            self.pool.kill(w)
        return w is not None

    def h_worker_exit_cause(self, conn, rid, worker_id):
        """(kind, message, retry) if this node killed ``worker_id`` itself, else None."""
        return self.memory_monitor.exit_cause(worker_id)

    def _reregister(self, conn: rpc.Connection) -> None:
        """Back on a restarted control store: join again, with the actors we still run."""
        with self.lock:
            actors = self.sched.actor_leases()
        if not ControlStoreClient(conn).register_node(self.cfg.node_id,
                                                      dict(self._node_info, actors=actors)):
            raise Refused("the control store declared this node dead")
        log.warning("registered again with the control store (%d actor(s) to adopt)",
                    len(actors))

    def _heartbeat(self) -> None:
        """Report what is free here; get the cluster's view back (also our liveness signal)."""
        if not self.gcs.conn.up:  # the control store is restarting
            return
        def got(ok, value):
            if not ok:
                return
            if value is None:
                log.error("the control store declared this node dead; stopping")
                self.stopping.set()
                return
            view = {n: placement.NodeView(res.to_units(t), res.to_units(a), alive, address,
                                          transfer, stream)
                    for n, (t, a, alive, address, transfer, stream) in value.items()}
            self.cluster_view = view
            with self.lock:
                if not self.stopping.is_set():
                    self._feed(ls.ClusterView(view, time.monotonic()))

        with self.lock:
            books = self.sched.resources
            avail = res.from_units({k: v for k, v in books.available.items() if v > 0})
            total = res.from_units(books.total)
        self.gcs.cluster_view(self.cfg.node_id, avail, total, callback=got)

    # -- info --------------------------------------------------------------
    def h_resources(self, conn, rid):
        avail = self.sched.resources.available
        return (res.from_units(self.sched.resources.total),
                res.from_units({k: v for k, v in avail.items() if v > 0}))

    def h_node_info(self, conn, rid):
        return {"node_id": self.cfg.node_id, "session_dir": self.cfg.session_dir,
                "arena_path": self.cfg.arena_path, "capacity": self.store.capacity}

    def h_ping(self, conn, rid):
        return "pong"

    def h_scheduler_state(self, conn, rid):
        """What the lease scheduler holds now (tests check the watchdog invariant with it)."""
        s = self.sched
        return {
            "pending": len(s.pending), "leases": len(s.leases), "starting": s.starting(),
            "idle": {k: len(v) for k, v in s.idle.items() if v},
            "workers": len(self.pool.workers),
            "failed_starts": s.backoff.total_failures,
            "watchdog_trips": s.watchdog.trips,
        }

    def h_flush_logs(self, conn, rid):
        """Forward pending worker output now; it reaches the asker before this reply."""
        self.pool.drain()
        return True

    def h_shutdown(self, conn, rid):
        threading.Thread(target=self.shutdown, daemon=True).start()
        return True

    # -- logs --------------------------------------------------------------
    def _on_worker_lines(self, w: WorkerProc, stream: str, lines: list) -> None:
        try:
            self.worker_logs.write(w.worker_id, w.pid, stream, lines)
        except OSError as e:  # a full disk must not stop the output reaching drivers
            log.warning("writing worker %s's output failed: %s", w.worker_id, e)
        subs = list(self.log_subscribers)
        if not subs:
            return
        for c in subs:
            try:
                WorkerClient(c).worker_output(w.pid, w.name, self.cfg.node_ip, stream, lines)
            except rpc.ConnectionClosed:
                pass

    # -- life --------------------------------------------------------------
    def run(self) -> None:
        owner = self.cfg.owner_pid
        ticks = 0
        while not self.stopping.wait(HEARTBEAT_S):
            if self.gcs.closed:
                log.info("control store is gone; stopping")
                break
            ticks += 1
            try:
                self._heartbeat()
                if ticks % 10 == 0:
                    self._report_metrics()
                if ticks % 5 == 0:
                    if owner and not _alive(owner):
                        log.info("process %d that owns this node is gone; stopping", owner)
                        break
                    if not self.pool.uses_pidfds:
                        self.pool.check_exits()
                with self.lock:  # the watchdog, idle culling
                    self._feed(ls.Tick(time.monotonic()))
            except Exception:  # the node must outlive a bug in its housekeeping
                log.exception("node manager housekeeping failed")
        self.shutdown()

    def shutdown(self) -> None:
        if self.stopping.is_set() and getattr(self, "_shut", False):
            return
        self.stopping.set()
        self._shut = True
        self.pool.stop()
        self.listener.close()
        self.transfer_server.stop()
        self.stream_server.stop()
        self.transfer_client.close()
        with self._peer_nodes_lock:
            for conn in list(self._peer_nodes.values()):
                conn.close()
        self.store.close()
        self.worker_logs.close_all()
        path = rpc.unix_path(self.address)
        assert path is not None  # a node manager always listens on a Unix socket
        try:
            os.unlink(path)
        except OSError:
            pass


def _connect_retry(address: str, name: str, reconnect_s: float, on_reconnect,
                   timeout: float = 15.0) -> ReconnectingConnection:
    """The control store may still be starting (they start side by side)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return ReconnectingConnection(address, name=name, timeout_s=reconnect_s,
                                          on_reconnect=on_reconnect)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="skate-node-manager")
    p.add_argument("--config", required=True)
    args = p.parse_args(argv)
    cfg = NodeConfig.from_json(args.config)
    logging.basicConfig(
        filename=os.path.join(cfg.session_dir, "logs", f"raylet-{cfg.node_id[:8]}.log"),
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, lambda *a: nm.stopping.set())
    rpc.set_token(token_from_env())
    # for life: this session is not a leftover (a joined node's folder is in its parent's)
    root = cfg.session_dir if cfg.is_head else os.path.dirname(cfg.session_dir)
    lock = hold_session(root)
    nm = NodeManager(cfg)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    fd = os.open(os.devnull, os.O_WRONLY)  # nobody reads our stdout after "ready"
    os.dup2(fd, 1)
    os.close(fd)
    # what sessions that died together left on this machine, once we are up
    reaper = threading.Thread(target=reap, kwargs={"keep": (root,)}, name="reap", daemon=True)
    reaper.start()
    nm.run()
    # a short session must not stop before its reap has run: that is when leftovers go
    # (bounded: the driver's stop waits 5 s before it kills us)
    reaper.join(3.0)
    # a private node whose driver was killed: the last of its session's processes to stop
    # removes the session (the driver's own stop does, when it stops normally)
    leave_session(lock, root)
    os._exit(0)


if __name__ == "__main__":
    main()

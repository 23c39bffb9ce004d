"""The node manager process: grants worker leases and keeps the object store's books.

Leases follow Ray's direct-call design: a submitter asks for a worker with
some resources (``request_lease``); once one is granted it pushes tasks
straight to that worker and gives the lease back when its queue is empty.
The node manager is therefore off the per-task path. A worker blocked in
``get`` gives its CPUs back (``blocked``) so nested tasks cannot deadlock.

Requests that can never fit this node are reported as infeasible (a warning
to the requester) and stay queued, as in Ray.

All state is guarded by ``self.lock``; handlers run on connection reader
threads and must not block (long waits answer later via DEFER).
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
from dataclasses import dataclass, field

from skate.core import kill_points, rpc
from skate.core import resources as res
from skate.core.config import IDLE_WORKER_TIMEOUT_S, NodeConfig
from skate.core.control_store.client import ControlStoreClient
from skate.core.ids import random_id
from skate.core.node_manager import placement
from skate.core.node_manager.object_handlers import ObjectStoreHandlers
from skate.core.node_manager.start_policy import StartBackoff, Watchdog
from skate.core.node_manager.worker_pool import WorkerPool, WorkerProc, worker_argv
from skate.core.object_store.store import ObjectStore
from skate.core.object_store.stream import StreamServer
from skate.core.object_store.transfer import TransferClient, TransferServer
from skate.core.pids import alive as _alive
from skate.core.resources import bundle_resources as pg_bundle_resources
from skate.core.worker.client import WorkerClient
from skate.exceptions import WorkerStartupError

log = logging.getLogger("skate.node_manager")

HEARTBEAT_S = 0.1
INFEASIBLE_WARN_S = 1.0
#: The watchdog: a request that fits the free resources with no worker running or starting
#: for it for this long is a scheduler bug; it is logged, counted and a worker is started.
STALL_S = 1.0
UNKNOWN_NODE_GRACE_S = 2.0  # a node pinned to but not in our view yet: wait this long


@dataclass
class Lease:
    lease_id: int
    units: dict  # resources held, fixed point
    env_key: str
    env_vars: dict | None
    dedicated: bool
    holder: rpc.Connection  # who asked
    rid: int  # the request to answer
    strategy: str | tuple | None = None  # None, "SPREAD" or ("node", id, soft)
    infeasible_since: float | None = None  # when no node could ever fit it, first seen
    held: bool = False  # waiting to learn of the node it is pinned to: never granted here
    preferred_node: str | None = None  # where its largest arguments are (locality)
    stay: bool = False  # placed here by a SPREAD decision elsewhere: wait here, never re-spill
    created: float = field(default_factory=time.monotonic)
    worker: WorkerProc | None = None
    gpu_ids: list = field(default_factory=list)
    blocked: bool = False
    warned: bool = False


class NodeManager(ObjectStoreHandlers):
    def __init__(self, cfg: NodeConfig):
        self.cfg = cfg
        self.lock = threading.RLock()
        self.address = f"unix:{os.path.join(cfg.session_dir, 'raylet.sock')}"
        self.total = res.to_units(cfg.resources)
        self.available = dict(self.total)
        n_gpus = int(cfg.resources.get("GPU", 0))
        self.gpu_free = {i: res.UNIT for i in range(n_gpus)}  # gpu id -> free fraction
        self.store = ObjectStore(cfg.arena_path, cfg.object_store_memory,
                                 os.path.join(cfg.session_dir, "spill"))
        self.pending: list[Lease] = []
        self.bundles: dict[tuple, tuple] = {}  # (group hex, index) -> (units taken, units added)
        self.leases: dict[int, Lease] = {}
        self._next_lease = 1
        self.store_waiters: dict[bytes, list] = {}  # oid -> [(conn, rid)] waiting for seal
        self.log_subscribers: set[rpc.Connection] = set()
        self.num_task_workers_target = max(1, int(cfg.resources.get("CPU", 1)))
        argv = worker_argv(self.address, cfg.gcs_address, cfg.session_dir, cfg.node_id,
                           cfg.arena_path, self.store.capacity, cfg.node_ip)
        self.pool = WorkerPool(argv, cfg.session_dir, self._on_worker_lines,
                               on_exit=self._on_worker_exit,
                               on_zygote_ready=self._prestart)
        self.idle: dict[str, list[WorkerProc]] = {}  # env key -> idle registered workers
        self.start_backoff = StartBackoff()
        self.watchdog = Watchdog(STALL_S)  # trips are bugs: counted, logged, repaired
        self.stopping = threading.Event()
        self.cluster_view: dict = {}  # node id -> placement.NodeView, refreshed by heartbeats
        self.listener = rpc.listen(self.address, self._handle, on_close=self._on_close,
                                   name="raylet")
        self.address = self.listener.address
        self.pulling: set = set()  # objects being pulled from other nodes
        self._senders = itertools.count()
        self.transfer_server = TransferServer(cfg.node_ip, self._open_for_send,
                                              rpc.current_token())
        self.stream_server = StreamServer(cfg.node_ip, self._open_for_stream,
                                          rpc.current_token())
        self.transfer_client = TransferClient(rpc.current_token(), cfg.node_id)
        self._peer_nodes: dict[str, rpc.Connection] = {}  # node id -> its node manager
        self._peer_nodes_lock = threading.Lock()  # taken alone, never with self.lock
        self.gcs = ControlStoreClient(_connect_retry(cfg.gcs_address, "raylet->gcs"))
        self.gcs.register_node(cfg.node_id, {
            "NodeManagerAddress": cfg.node_ip, "raylet_address": self.address,
            "Resources": cfg.resources, "object_store_memory": self.store.capacity,
            "arena_path": cfg.arena_path, "is_head": cfg.is_head,
            "session_dir": cfg.session_dir,
            "transfer_address": self.transfer_server.address,
            "stream_address": self.stream_server.address,
        })
        if self.pool.zygote is None:  # with a zygote, once it is ready (workers with its
            self._prestart()          # modules imported); leases meanwhile start their own

    def _prestart(self) -> None:
        """Fill the pool of idle workers; with a zygote (it calls this once ready), idle
        workers started without it are replaced: the pool's workers have its modules."""
        with self.lock:
            if self.pool.zygote is not None:
                for w in list(self.idle.get("", [])):
                    if not w.forked:
                        self.idle[""].remove(w)
                        w.dead = w.culled = True
                        self.pool.kill(w)
            for _ in range(self.cfg.prestart_workers):
                self._start_worker("", None)

    # -- dispatch --------------------------------------------------------
    def _handle(self, conn, method, args, rid):
        fn = getattr(self, "h_" + method, None)
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
            role = conn.peer_info.get("role")
            if role == "worker":
                w = self.pool.workers.get(conn.peer_info["worker_id"])
                if w is not None:
                    self._worker_died(w)
            # leases held by a departed submitter return to the pool
            for lease in list(self.leases.values()):
                if lease.holder is conn:
                    self._return(lease, kill=True)
            self.pending = [p for p in self.pending if p.holder is not conn]
            if role in ("driver", "worker"):
                self._free_copies(self.store.free_owner(conn.peer_info.get("address")))
        self._schedule()

    # -- registration ----------------------------------------------------
    def h_register_worker(self, conn, rid, worker_id, pid, address):
        w = self.pool.workers.get(worker_id)
        if w is None:
            raise ValueError(f"unknown worker {worker_id}")
        conn.peer_info.update(role="worker", worker_id=worker_id, address=address)
        w.conn = conn
        w.address = address
        w.registered = True
        self.start_backoff.started(w.env_key)
        self._make_idle(w)
        threading.Thread(target=self._schedule, daemon=True).start()
        return {"node_id": self.cfg.node_id}

    def h_register_driver(self, conn, rid, address, log_to_driver):
        conn.peer_info.update(role="driver", address=address)
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
                        preferred_node=None, spilled=False):
        units = res.to_units(request)
        env_key = _env_key(env_vars)
        stay = spilled and strategy == "SPREAD" and self._fits_total(units)
        if stay:
            strategy = None  # another node manager chose this node for the spread: final
        lease = Lease(self._next_lease, units, env_key, env_vars, dedicated, conn, rid,
                      strategy=strategy, preferred_node=preferred_node, stay=stay)
        self._next_lease += 1
        if not self._route(lease, fresh=True):
            return rpc.DEFER
        self.pending.append(lease)
        self._schedule_locked()
        return rpc.DEFER

    def _route(self, lease: Lease, fresh: bool = False) -> bool:
        """Keep the request here (True), or answer it with a spill / an error (False)."""
        if lease.stay and (fresh or res.fits(lease.units, self.available)):
            return True
        view = dict(self.cluster_view)
        mine = view.get(self.cfg.node_id)
        # our own entry from the live books, not from the last heartbeat
        view[self.cfg.node_id] = placement.NodeView(
            dict(self.total), dict(self.available), True,
            mine.address if mine else self.address,
            mine.transfer_address if mine else self.transfer_server.address,
            mine.stream_address if mine else self.stream_server.address)
        if lease.stay:
            # placed here by another node's SPREAD decision, but busy here: move only to
            # a node with room now (never back and forth between busy ones)
            decision = placement.decide(lease.units, None, self.cfg.node_id, view, queued_here=1)
            if decision.node in (None, placement.HERE):
                return True
            lease.holder.reply(lease.rid, ("spill", view[decision.node].address, decision.node))
            return False
        if len(view) <= 1 and lease.strategy is None and lease.preferred_node is None:
            decision = placement.Decision(placement.HERE if self._fits_total(lease.units) else None,
                                          infeasible=not self._fits_total(lease.units))
        else:
            queued = sum(1 for p in self.pending if p.units == lease.units) if fresh else 0
            decision = placement.decide(lease.units, lease.strategy, self.cfg.node_id, view, queued,
                                        lease.preferred_node if fresh else None)
        lease.held = False
        if decision.unknown_target:
            if time.monotonic() - lease.created < UNKNOWN_NODE_GRACE_S:
                lease.held = True  # not for this node: wait for the view to learn of its target
                return True
            strategy, lease.strategy = lease.strategy, None
            assert isinstance(strategy, tuple)  # only node affinity has an unknown target
            if strategy[2]:  # soft: anywhere will do
                return self._route(lease)
            decision = placement.Decision(None, error=f"The node {strategy[1]} that the task is "
                                          f"pinned to (NodeAffinitySchedulingStrategy, "
                                          f"soft=False) is unknown or dead.")
        if decision.error:
            lease.holder.reply(lease.rid, ValueError(decision.error), ok=False)
            return False
        if decision.node not in (None, placement.HERE):
            address = view[decision.node].address
            lease.holder.reply(lease.rid, ("spill", address, decision.node))
            return False
        if not decision.infeasible:
            lease.infeasible_since = None
        elif lease.infeasible_since is None:
            # views lag a heartbeat (a bundle just reserved, a node just joined): warn only
            # if it stays infeasible
            lease.infeasible_since = time.monotonic()
        elif not lease.warned and time.monotonic() - lease.infeasible_since > INFEASIBLE_WARN_S:
            lease.warned = True
            msg = (f"A task or actor needs {{{res.describe(lease.units)}}} but no node has that "
                   f"much in total (this node: {{{res.describe(self.total)}}}), so it cannot be "
                   f"scheduled. It stays pending until a node with enough resources joins; lower "
                   f"its resource request or start Skate with more resources "
                   f"(skate.init(num_cpus=..., resources=...)).")
            log.warning(msg)
            WorkerClient(lease.holder).warning(msg)
        return True

    def _fits_total(self, units) -> bool:
        return res.fits(units, self.total) and self._gpus_could_fit(units)

    def _reroute_pending(self) -> None:
        """Requests waiting here may fit elsewhere now (a node joined or freed up)."""
        with self.lock:
            keep = []
            for lease in self.pending:
                if lease.holder.closed:
                    continue
                if res.fits(lease.units, self.available) and lease.infeasible_since is None \
                        and not lease.held or self._route(lease):
                    keep.append(lease)
            self.pending = keep
            self._schedule_locked()

    def _heartbeat(self) -> None:
        """Report what is free here; get the cluster's view back (also our liveness signal)."""
        def got(ok, value):
            if not ok:
                return
            if value is None:
                log.error("the control store declared this node dead; stopping")
                self.stopping.set()
                return
            self.cluster_view = {
                n: placement.NodeView(res.to_units(t), res.to_units(a), alive, address, transfer,
                                      stream)
                for n, (t, a, alive, address, transfer, stream) in value.items()}
            self._reroute_pending()

        with self.lock:
            avail = res.from_units({k: v for k, v in self.available.items() if v > 0})
            total = res.from_units(self.total)
        self.gcs.cluster_view(self.cfg.node_id, avail, total, callback=got)

    def h_cancel_lease_request(self, conn, rid, count):
        """Drop up to ``count`` of this requester's unanswered lease requests."""
        dropped = 0
        keep = []
        for p in reversed(self.pending):
            if p.holder is conn and dropped < count:
                dropped += 1
                p.holder.reply(p.rid, None)
            else:
                keep.append(p)
        self.pending = list(reversed(keep))
        return dropped

    def h_return_lease(self, conn, rid, lease_id, kill=False):
        lease = self.leases.get(lease_id)
        if lease is not None:
            self._return(lease, kill)
        self._schedule_locked()

    def h_blocked(self, conn, rid, blocked: bool):
        """A leased worker waits in ``get`` (True) or resumes (False): lend out its CPUs
        meanwhile."""
        w = self.pool.workers.get(conn.peer_info.get("worker_id"))
        lease = w.lease if w else None
        if lease is None or lease.blocked == blocked:
            return
        cpu = {"CPU": lease.units["CPU"]} if "CPU" in lease.units else {}
        lease.blocked = blocked
        if blocked:
            res.add(self.available, cpu)
            self._schedule_locked()
        else:
            res.subtract(self.available, cpu)

    # -- placement group bundles -------------------------------------------------
    def h_prepare_bundle(self, conn, rid, pg_hex: str, index: int, bundle: dict):
        """Reserve a bundle here: its resources become the group's, or refuse (False)."""
        key = (pg_hex, index)
        if key in self.bundles:
            return True
        units = res.to_units(bundle)
        if not res.fits(units, self.available):
            return False
        res.subtract(self.available, units)
        group = res.to_units(pg_bundle_resources(bundle, index, pg_hex))
        self._add_group_resources(group)
        self.bundles[key] = (units, group)
        self._schedule_locked()
        return True

    def h_return_bundle(self, conn, rid, pg_hex: str, index: int):
        entry = self.bundles.pop((pg_hex, index), None)
        if entry is None:
            return
        units, group = entry
        # whatever runs on this bundle ends with it (as in Ray)
        for lease in list(self.leases.values()):
            if any(k in group for k in lease.units):
                self._return(lease, kill=True)
        for k, v in group.items():  # shared keys (CPU_group_<g>) lose this bundle's share
            for table in (self.total, self.available):
                left = table.get(k, 0) - v
                if left > 0:
                    table[k] = left
                else:
                    table.pop(k, None)
        res.add(self.available, units)
        self._schedule_locked()

    def _add_group_resources(self, group: dict) -> None:
        res.add(self.total, group)
        res.add(self.available, group)

    def h_kill_worker(self, conn, rid, worker_id):
        w = self.pool.workers.get(worker_id)
        if w is not None:
            self.pool.kill(w)
        return w is not None

    def _gpus_could_fit(self, units) -> bool:
        need = units.get("GPU", 0)
        return need <= res.UNIT or need % res.UNIT == 0

    def _take_gpus(self, need: int) -> list | None:
        if need == 0:
            return []
        if need < res.UNIT:
            for gid, free in sorted(self.gpu_free.items()):
                if free >= need:
                    self.gpu_free[gid] -= need
                    return [gid]
            return None
        k = need // res.UNIT
        whole = [g for g, free in sorted(self.gpu_free.items()) if free == res.UNIT][:k]
        if len(whole) < k:
            return None
        for g in whole:
            self.gpu_free[g] = 0
        return whole

    def _give_gpus(self, lease: Lease) -> None:
        need = lease.units.get("GPU", 0)
        per = need if need < res.UNIT else res.UNIT
        for g in lease.gpu_ids:
            self.gpu_free[g] += per

    def _schedule(self) -> None:
        with self.lock:
            self._schedule_locked()

    def _schedule_locked(self) -> None:
        if self.stopping.is_set():
            return
        waiting_for_worker: dict[str, int] = {}
        # what is left once the requests already waiting for a worker start have theirs: a
        # worker is started only for a request that could run now, not for every queued one
        spare = dict(self.available)
        still = []
        for lease in self.pending:
            if lease.holder.closed:
                continue
            if lease.held or not res.fits(lease.units, self.available):
                still.append(lease)
                continue
            idle = self.idle.get(lease.env_key)
            if lease.dedicated or not idle:
                # dedicated (actor) leases always get a fresh worker
                if idle and lease.dedicated:
                    w = idle.pop()
                else:
                    if res.fits(lease.units, spare):
                        res.subtract(spare, lease.units)
                        waiting_for_worker[lease.env_key] = \
                            waiting_for_worker.get(lease.env_key, 0) + 1
                    still.append(lease)
                    continue
            else:
                w = idle.pop()
            gpus = self._take_gpus(lease.units.get("GPU", 0))
            if gpus is None:
                idle.append(w) if idle is not None else None
                still.append(lease)
                continue
            res.subtract(self.available, lease.units)
            lease.gpu_ids = gpus
            lease.worker = w
            w.lease = lease
            w.dedicated = lease.dedicated
            self.leases[lease.lease_id] = lease
            lease.holder.reply(lease.rid, (lease.lease_id, w.worker_id, w.address, gpus,
                                           self.cfg.node_id))
            if lease.env_vars and kill_points.fires(kill_points.hooks_of(lease.env_vars),
                                                    "lease_granted"):
                self.pool.kill(w)  # test hook: the worker dies with its grant in flight
        self.pending = still
        if not waiting_for_worker:
            return
        starting = self._starting()
        now = time.monotonic()
        for env_key, n in waiting_for_worker.items():
            if self.start_backoff.ready_at(env_key) > now:
                continue  # after failed starts; a later pass (every heartbeat) starts it
            env_vars = next((p.env_vars for p in still if p.env_key == env_key), None)
            for _ in range(n - starting.get(env_key, 0)):
                self._start_worker(env_key, env_vars)

    def _starting(self) -> dict:
        """env key -> workers started and not yet registered, counted from the processes
        themselves (a counter would drift when one dies before registering)."""
        out: dict = {}
        for w in list(self.pool.workers.values()):
            if not w.registered and not w.dead and w.returncode is None:
                out[w.env_key] = out.get(w.env_key, 0) + 1
        return out

    def _start_worker(self, env_key: str, env_vars) -> None:
        self.pool.start(random_id(8).hex(), env_key, env_vars)

    def _on_worker_exit(self, w: WorkerProc) -> None:
        """A worker process exited (seen by the pool, which reaped it): whatever it held is
        returned and waiting work gets a replacement; one that died starting counts as a
        failed start."""
        with self.lock:
            if self.stopping.is_set():
                return
            if w.registered:
                self._worker_died(w)
            elif not w.dead:
                self._failed_start(w)
            self._schedule_locked()

    def _failed_start(self, w: WorkerProc) -> None:
        w.dead = True
        key = w.env_key
        self.start_backoff.failed(key, time.monotonic(), w.returncode)
        log.warning("worker %s (pid %d) exited with code %s before it registered%s",
                    w.worker_id, w.pid, w.returncode,
                    (": " + " | ".join(w.stderr_tail[-3:])) if w.stderr_tail else "")
        if not self.start_backoff.gave_up(key):
            return
        self.start_backoff.reset(key)
        tail = "\n".join(w.stderr_tail[-20:]) or "(it wrote nothing to stderr)"
        error = WorkerStartupError(
            f"{self.start_backoff.give_up_after} workers in a row exited before they were "
            f"ready (last exit code {w.returncode}), so the tasks and actors waiting for one "
            f"were failed. Check the runtime_env (env_vars) and the Python environment. The "
            f"last worker's stderr:\n{tail}")
        keep = []
        for lease in self.pending:
            if lease.env_key == key:
                lease.holder.reply(lease.rid, error, ok=False)
            else:
                keep.append(lease)
        self.pending = keep

    def _check_stalls(self, now: float) -> None:
        """The watchdog invariant: queued work that fits the free resources has a worker
        running or starting for it within STALL_S. A trip means a bookkeeping bug; it is
        logged and repaired (a worker started), and tests assert there were none."""
        with self.lock:
            starting = self._starting()
            stalled = {}
            for lease in self.pending:
                if lease.held or lease.holder.closed or not res.fits(lease.units, self.available):
                    continue
                if starting.get(lease.env_key) or self.start_backoff.ready_at(lease.env_key) > now:
                    continue
                if not lease.dedicated and self.idle.get(lease.env_key):
                    continue  # granted on the next pass
                stalled[lease.lease_id] = lease
            for lease_id, waited in self.watchdog.tick(now, stalled):
                lease = stalled[lease_id]
                log.error("watchdog: lease request %d (%s) fits the free resources but no worker "
                          "has run or started for it for %.1f s; starting one", lease_id,
                          res.describe(lease.units), waited)
                self._start_worker(lease.env_key, lease.env_vars)

    def _make_idle(self, w: WorkerProc) -> None:
        w.lease = None
        z = self.pool.zygote
        if z is not None and z.ready and not z.gone and not w.forked and w.env_key == "":
            # started before the zygote was ready: without its modules; forked ones replace it
            w.dead = w.culled = True
            self.pool.kill(w)
            return
        w.idle_since = time.monotonic()
        self.idle.setdefault(w.env_key, []).append(w)

    def _return(self, lease: Lease, kill: bool) -> None:
        self.leases.pop(lease.lease_id, None)
        units = dict(lease.units)
        if lease.blocked:
            units.pop("CPU", None)
        res.add(self.available, units)
        self._give_gpus(lease)
        w = lease.worker
        if w is None or w.dead:
            return
        if kill or lease.dedicated:
            w.dead = True
            self.pool.kill(w)
        else:
            self._make_idle(w)

    def _worker_died(self, w: WorkerProc) -> None:
        """A registered worker is gone (its socket closed or its process exited: whichever
        is seen first; the second call does nothing)."""
        if w.death_handled:
            return
        w.death_handled = True
        w.dead = True
        lst = self.idle.get(w.env_key)
        if lst and w in lst:
            lst.remove(w)
        lease = w.lease
        if lease is not None and lease.lease_id in self.leases:
            self._return(lease, kill=False)
        try:
            # an idle worker we stopped as surplus is not an owner dying: actors it created
            # live on; any other death takes them with it (Ray's owner fate-sharing)
            self.gcs.worker_died(w.worker_id, not w.culled)
        except rpc.ConnectionClosed:
            pass

    def _cull_idle(self) -> None:
        """Stop idle workers beyond the pool's size, and ones with a runtime_env nobody uses."""
        now = time.monotonic()
        with self.lock:
            total_idle = sum(len(v) for v in self.idle.values())
            for env_key, lst in self.idle.items():
                for w in list(lst):
                    too_many = total_idle > self.num_task_workers_target or env_key != ""
                    if too_many and now - w.idle_since > IDLE_WORKER_TIMEOUT_S:
                        lst.remove(w)
                        total_idle -= 1
                        w.dead = True
                        w.culled = True
                        self.pool.kill(w)

    # -- info --------------------------------------------------------------
    def h_resources(self, conn, rid):
        avail = dict(self.available)
        return res.from_units(self.total), res.from_units({k: v for k, v in avail.items() if v > 0})

    def h_node_info(self, conn, rid):
        return {"node_id": self.cfg.node_id, "session_dir": self.cfg.session_dir,
                "arena_path": self.cfg.arena_path, "capacity": self.store.capacity}

    def h_ping(self, conn, rid):
        return "pong"

    def h_scheduler_state(self, conn, rid):
        """What the lease scheduler holds now (tests check the watchdog invariant with it)."""
        return {
            "pending": len(self.pending), "leases": len(self.leases),
            "starting": self._starting(),
            "idle": {k: len(v) for k, v in self.idle.items() if v},
            "workers": len(self.pool.workers),
            "failed_starts": self.start_backoff.total_failures,
            "watchdog_trips": self.watchdog.trips,
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
                if ticks % 5 == 0:
                    if owner and not _alive(owner):
                        log.info("process %d that owns this node is gone; stopping", owner)
                        break
                    self._cull_idle()
                    if not self.pool.uses_pidfds:
                        self.pool.check_exits()
                self._check_stalls(time.monotonic())
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
        owner = self.cfg.owner_pid
        if owner and not _alive(owner):
            # a private node whose driver was killed: nobody else will clean its session up
            import shutil

            shutil.rmtree(self.cfg.session_dir, ignore_errors=True)
        path = rpc.unix_path(self.address)
        assert path is not None  # a node manager always listens on a Unix socket
        try:
            os.unlink(path)
        except OSError:
            pass


def _connect_retry(address: str, name: str, timeout: float = 15.0) -> rpc.Connection:
    """The control store may still be starting (they start side by side)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return rpc.connect(address, name=name)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _env_key(env_vars) -> str:
    if not env_vars:
        return ""
    return repr(sorted(env_vars.items()))




def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="skate-node-manager")
    p.add_argument("--config", required=True)
    args = p.parse_args(argv)
    cfg = NodeConfig.from_json(args.config)
    logging.basicConfig(
        filename=os.path.join(cfg.session_dir, "logs", f"raylet-{cfg.node_id[:8]}.log"),
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, lambda *a: nm.stopping.set())
    rpc.set_token(os.environ.get("SKATE_TOKEN"))
    nm = NodeManager(cfg)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    fd = os.open(os.devnull, os.O_WRONLY)  # nobody reads our stdout after "ready"
    os.dup2(fd, 1)
    os.close(fd)
    nm.run()
    os._exit(0)


if __name__ == "__main__":
    main()

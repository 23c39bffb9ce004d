"""The per-process runtime: owns objects, submits work, answers other processes.

Every process that takes part (the driver and each worker) has exactly one
CoreWorker. It listens on its own Unix socket, because other processes ask
it things: the value of an object it owns (``get_object``), to wait for one
(``wait_object``), to record a borrower. Replies that must wait (an object
still being computed) are deferred, never blocking a reader thread.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import os
import sys
import threading
import time
import warnings

from skate import exceptions as exc
from skate.core import ids, metrics, rpc, serialization
from skate.core.config import (
    INLINE_THRESHOLD,
    actor_task_events_enabled,
    gcs_reconnect_timeout_s,
    task_events_enabled,
)
from skate.core.control_store.client import ControlStoreClient
from skate.core.ids import short_name
from skate.core.node_manager.client import NodeManagerClient
from skate.core.object_ref import ObjectRef, set_worker
from skate.core.object_store.client import StoreClient
from skate.core.ownership_codes import FAILED, READY
from skate.core.protocol import INLINE
from skate.core.resources import plain_request
from skate.core.rpc import methods as m
from skate.core.rpc.reconnecting import ReconnectingConnection, Refused
from skate.core.worker.actor_submitter import ActorSubmitter
from skate.core.worker.client import WorkerClient
from skate.core.worker.object_reads import ObjectReads, _wire_value
from skate.core.worker.ownership import ObjectTable
from skate.core.worker.submission import Lease, TaskRecord
from skate.core.worker.task_events import TaskEvents, error_info
from skate.core.worker.task_submitter import TaskSubmitter

log = logging.getLogger(__name__)


class CoreWorker(ObjectReads):
    """This process's part in the cluster: its objects, its submissions, its connections.

    Parts: ``objects`` (the ownership table), ``store`` (this node's shared memory),
    ``submitter`` (normal tasks), ``actors`` (one ActorSubmitter per actor called from
    here), the reads in :class:`ObjectReads`, and a housekeeping thread that sends what
    finalizers queued. Threads: connection readers run handlers and reply callbacks,
    the caller's threads submit and read, the housekeeper flushes.

    Invariants: ``connected`` is True from the end of ``__init__`` until ``disconnect``;
    ``_peers`` holds at most one open connection per address (others may be closed ones
    waiting to be replaced); ``current_task`` is set exactly while a task or actor call
    runs on the main thread; finalizers and ``__del__`` only append to
    ``deferred_calls`` / ``_borrow_removals`` (they may run on any thread, inside any lock).
    """

    namespace_explicit: bool  # set by skate.init(): whether the caller named the namespace

    def __init__(self, *, mode: str, session_dir: str, raylet_address: str, gcs_address: str,
                 node_id: str, node_ip: str, worker_id: str, namespace: str = "",
                 log_to_driver: bool = False, handlers: dict | None = None, arena_path: str = "",
                 capacity: int = 0, job_config: dict | None = None,
                 gcs_reconnect_s: float | None = None):
        self.mode = mode
        self.worker_id = worker_id
        self.node_id = node_id
        self.node_ip = node_ip
        self.session_dir = session_dir
        self.gcs_address = gcs_address
        self.namespace = namespace
        self.connected = False
        self.address = f"unix:{os.path.join(session_dir, 'sockets', worker_id)}"
        # what this process answers: as an owner (below), and in workers running work (the
        # executor's table); built before the listener can deliver a request
        self.handlers = {
            m.GET_OBJECT: self.h_get_object, m.WAIT_OBJECT: self.h_wait_object,
            m.ADD_BORROWER: self.h_add_borrower, m.REMOVE_BORROWERS: self.h_remove_borrowers,
            m.WORKER_OUTPUT: self.h_worker_output, m.WARNING: self.h_warning,
            m.GENERATOR_ITEM: self.h_generator_item,
            m.CANCEL_OWNED_TASK: self.h_cancel_owned_task, m.PING: self.h_ping,
            m.OBJECT_REFS: self.h_object_refs,
            **(handlers or {}),
        }
        self._peers: dict[str, rpc.Connection] = {}
        self._peers_lock = threading.Lock()
        self._raylet_addresses: dict[str, str] = {}  # node id -> node manager address
        self._borrow_removals: collections.deque = collections.deque()
        self.deferred_calls: collections.deque = collections.deque()  # from __del__ methods
        self.current_task: tuple | None = None  # (task_id, name) while a task runs here
        self.current_actor_id: bytes | None = None
        self.actor_restarts = 0  # in an actor's worker: how often the actor was restarted
        self.actor_meta: dict = {}  # in an actor's worker: what its handles need
        self.assigned_resources: dict = {}
        self.gpu_ids: list = []
        self.job_id: str | None = None  # a driver's from registration, a worker's per task
        # the job's runtime_env env_vars (init(runtime_env=...)): under every task and actor
        # this process submits; a worker learns them with its job (executor._enter_job)
        self.job_env_vars: dict | None = ((job_config or {}).get("runtime_env") or {}).get(
            "env_vars") or None
        self._future_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.listener = rpc.listen(self.address, self._handle, on_close=self._on_peer_closed,
                                     name=f"{mode}-{worker_id[:6]}")
        self.address = self.listener.address  # with its TCP part, in a multi-machine cluster
        # set when this process's node manager or the control store goes away for good (a
        # driver's: a worker dies with its node): work that needs them fails with it
        self.node_lost: BaseException | None = None
        lost = self._on_cluster_lost if mode == "driver" else None
        self.raylet = NodeManagerClient(rpc.connect(raylet_address, handler=self._handle,
                                                    name=f"{mode}->raylet", on_close=lost))
        # the control store of a `skate start` head may be restarted: calls wait for it (up
        # to gcs_reconnect_s, default from config) and a driver rejoins with its job
        self._job_config = job_config
        self.gcs = ControlStoreClient(ReconnectingConnection(
            gcs_address, handler=self._handle, name=f"{mode}->gcs",
            timeout_s=gcs_reconnect_timeout_s() if gcs_reconnect_s is None else gcs_reconnect_s,
            on_reconnect=self._rejoin if mode == "driver" else None,
            on_lost=self._on_control_store_lost if mode == "driver" else None))
        if mode == "driver":
            info = self.raylet.register_driver(self.address, log_to_driver, worker_id,
                                               os.getpid())
            self.job_id = self.gcs.register_job(self.address, namespace, job_config)
        else:
            self.raylet.register_worker(worker_id, os.getpid(), self.address)
            info = {"arena_path": arena_path, "capacity": capacity}
        self.store = StoreClient(info["arena_path"], info["capacity"], self.raylet, node_id,
                                 self._free_remote)
        self.objects = ObjectTable(self.address, self.store.free_later, self._remove_borrow_later)
        self.task_events = TaskEvents(task_events_enabled())  # for the state API, off-path
        self.actor_task_events = self.task_events.enabled and actor_task_events_enabled()
        self.current_attempt = 0  # of the task in current_task (a worker's, for its events)
        self.submitter = TaskSubmitter(self)
        self.actors: dict[bytes, ActorSubmitter] = {}
        self.actor_held: dict = {}  # actor id -> refs its creation arguments hold (restarts)
        self.generators: dict = {}  # task id -> ObjectRefGenerator of a streaming call made here
        self.actors_lock = threading.Lock()
        self.connected = True
        set_worker(self)
        self._stop = threading.Event()
        self._housekeeper = threading.Thread(target=self._housekeeping, name="skate-housekeeping",
                                             daemon=True)
        self._housekeeper.start()

    # -- peers -------------------------------------------------------------------
    def peer(self, address: str) -> rpc.Connection:
        conn = self._peers.get(address)
        if conn is not None and not conn.closed:
            return conn
        with self._peers_lock:
            conn = self._peers.get(address)
            if conn is None or conn.closed:
                conn = rpc.connect(address, handler=self._handle, name="peer")
                self._peers[address] = conn
            return conn

    def worker_at(self, address: str) -> WorkerClient:
        """Calls to the worker or driver at ``address`` (over the shared connection)."""
        return WorkerClient(self.peer(address))

    def node_manager_at(self, address: str) -> NodeManagerClient:
        """Calls to the node manager at ``address`` (another node's, for a spill or a free)."""
        return NodeManagerClient(self.peer(address))

    def _rejoin(self, conn: rpc.Connection) -> None:
        """A driver back on a restarted control store: its job again, by the same id."""
        if ControlStoreClient(conn).register_job(self.address, self.namespace,
                                                 self._job_config, self.job_id) is None:
            raise Refused(f"the control store has job {self.job_id} as ended")
        log.warning("rejoined the restarted control store as job %s", self.job_id)

    def _on_control_store_lost(self) -> None:
        self._on_cluster_lost(None, "control store")

    def _on_cluster_lost(self, conn, what: str = "node manager of this driver's node") -> None:
        """A driver's connection to its node manager closed, or the control store did not
        come back, while it was connected: that node (or the head) is gone, so waiting
        work fails, clearly."""
        if not getattr(self, "connected", False) or self.node_lost is not None:
            return
        self.node_lost = exc.NodeDiedError(
            f"The {what} is gone (killed, or its head stopped): tasks that need a worker "
            f"cannot run. Restart this driver once the cluster is back (a head restarted with "
            f"`skate start --head --session-dir` keeps its detached actors).")
        log.warning("%s", self.node_lost)
        self.submitter.fail_waiting(self.node_lost)

    def _on_peer_closed(self, conn) -> None:
        who = conn.peer_info.get("address")
        if who:
            self.objects.drop_borrower_everywhere(who)

    # -- requests from other processes --------------------------------------------
    def _handle(self, conn, method, args, rid):
        fn = self.handlers.get(method)
        if fn is None:
            raise ValueError(f"worker has no method {method!r}")
        return fn(conn, rid, *args)

    def h_get_object(self, conn, rid, oid):
        def answer(obj):
            conn.reply(rid, _wire_value(obj))
        if not self.objects.on_ready(oid, answer):
            return ("lost",)
        return rpc.DEFER

    def h_wait_object(self, conn, rid, oid):
        return self.h_get_object(conn, rid, oid)

    def h_add_borrower(self, conn, rid, oid, who):
        conn.peer_info.setdefault("address", who)
        return self.objects.add_borrower(oid, who)

    def h_remove_borrowers(self, conn, rid, items):
        for oid, who in items:
            self.objects.remove_borrower(oid, who)

    def h_worker_output(self, conn, rid, pid, name, ip, stream, lines):
        prefix = f"({name} pid={pid}, ip={ip})" if name else f"(pid={pid}, ip={ip})"
        out = sys.stderr if stream == "stderr" else sys.stdout
        try:
            out.write("".join(f"{prefix} {line}\n" for line in lines))
            out.flush()
        except (ValueError, OSError):
            pass

    def h_warning(self, conn, rid, message):
        # the user's program hears it through warnings (printed once per call site, and
        # filterable), as Ray's scheduler warnings reach drivers
        warnings.warn(message, UserWarning, stacklevel=1)

    def h_generator_item(self, conn, rid, task_id, index, entry):
        """A streaming task or actor method made here yielded its ``index``-th value."""
        gen = self.generators.get(task_id)
        if gen is not None:
            gen._item(index, entry)

    def h_cancel_owned_task(self, conn, rid, task_id, force, recursive):
        """Another process cancels a ref made by a task this process submitted."""
        return self.submitter.cancel(task_id, force, recursive)

    def h_ping(self, conn, rid):
        return "pong"

    def h_object_refs(self, conn, rid):
        return self.objects.references()

    # -- borrowing -----------------------------------------------------------------
    def borrow(self, ref: ObjectRef) -> None:
        """Register as a borrower with the ref's owner before using it (synchronously)."""
        if self.objects.is_borrowed(ref.id):
            return
        try:
            self.worker_at(ref.owner).add_borrower(ref.id, self.address, timeout=30)
        except (OSError, rpc.ConnectionClosed, TimeoutError):
            pass  # owner gone: a later get raises OwnerDiedError
        self.objects.mark_borrowed(ref.id, ref.owner)

    def _remove_borrow_later(self, owner: str, oid: bytes) -> None:
        self._borrow_removals.append((owner, oid))

    def adopt_contained(self, contained) -> list:
        """Refs inside a value another process made for us: we are already their borrower."""
        out = []
        for oid, owner in contained or ():
            ref = ObjectRef(oid, owner)
            if owner != self.address:
                self.objects.mark_borrowed(oid, owner)
            out.append(ref)
        return out

    def register_borrower_for(self, refs, who: str) -> list:
        """Before handing ``refs`` (inside a value) to ``who``, register it with their owners."""
        out = []
        for ref in refs:
            if ref.owner == who:
                out.append((ref.id, ref.owner))
                continue
            if ref.owner == self.address:
                self.objects.add_borrower(ref.id, who)
            else:
                try:
                    self.worker_at(ref.owner).add_borrower(ref.id, who, timeout=30)
                except (OSError, rpc.ConnectionClosed, TimeoutError):
                    pass
            out.append((ref.id, ref.owner))
        return out

    def node_is_dead(self, node_id: str, wait: bool = True) -> bool:
        """Whether the control store has declared ``node_id`` dead (waits briefly for it)."""
        if not node_id or node_id == self.node_id:
            return False
        deadline = time.monotonic() + (2.0 if wait else 0.0)
        while True:
            try:
                nodes = {n["NodeID"]: n["Alive"] for n in self.gcs.get_nodes(timeout=5)}
            except Exception:
                return False
            if not nodes.get(node_id, False):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)  # its death may reach the control store a moment after ours

    def _free_remote(self, node: str, oids: list) -> None:
        """Free primary copies our tasks left on another node (runs on the housekeeper)."""
        address = self._raylet_addresses.get(node)
        if address is None:
            try:
                for n in self.gcs.get_nodes(timeout=10):
                    self._raylet_addresses[n["NodeID"]] = n["raylet_address"]
            except Exception:
                return
            address = self._raylet_addresses.get(node)
        if address is not None:
            try:
                self.node_manager_at(address).store_release_free([], oids)
            except OSError:
                pass

    # -- housekeeping ------------------------------------------------------------------
    def _housekeeping(self) -> None:
        """Sends what finalizers queued, and gives back idle leases.

        Polls (fast while leases are held, slowly otherwise) because finalizers
        and __del__ may run on any thread at any point, so they only append to
        deques and never take a lock or write to a socket themselves.
        """
        interval = 0.05
        last_check = 0.0
        while not self._stop.wait(interval):
            try:
                self.flush_background()
                now = time.monotonic()
                busy = self.submitter.return_idle_leases(now)
                interval = 0.005 if busy else 0.05
                if self.submitter.remote_requests and now - last_check > 1.0:
                    last_check = now
                    self.submitter.abandon_requests_to_dead_nodes(now)
            except Exception:
                if self.connected:
                    log.exception("housekeeping failed")

    def _send_task_events(self) -> None:
        batch = self.task_events.batch(self._describe_task)
        if batch:
            try:
                self.gcs.task_events(batch)
            except Exception:  # events are best effort: the task itself is unaffected
                log.debug("could not send task events", exc_info=True)

    def _send_metrics(self) -> None:
        batch = metrics.PENDING.batch()
        if batch is not None and not self.gcs.report_metrics(self.node_id, batch):
            metrics.PENDING.requeue(batch)  # the control store is away: keep them

    def _describe_task(self, task, attempt: int, state: str, t: float, extra, memo: dict
                       ) -> tuple:
        """A recorded event as it goes on the wire: ids as bytes, info as a plain dict (the
        owner's task info once per task and batch, a lease's once per lease)."""
        info: dict | None = None
        if isinstance(task, TaskRecord):  # the owner's record of a normal task
            if (id(task), attempt) not in memo:  # each attempt is a record of its own
                memo[(id(task), attempt)] = None
                name = short_name(task.fn_name)
                info = {"job_id": self.job_id, "name": name,
                        "func_or_class_name": name, "type": "NORMAL_TASK",
                        "required_resources": plain_request(task.resources)}
            task_id = task.task_id
        else:
            task_id = task
        if extra is not None:
            more: dict | None
            if type(extra) is dict:  # a worker's, or an actor call's, own info
                more = extra
            elif type(extra) is bytes:  # the task that submitted it
                more = {"parent_task_id": extra.hex()}
            elif isinstance(extra, Lease):
                more = memo.get(id(extra))
                if more is None:
                    more = memo[id(extra)] = {"node_id": extra.node_id,
                                              "worker_id": extra.worker_id}
            elif isinstance(extra, BaseException):
                more = error_info(extra)
            elif type(extra) is list and extra and extra[0][0] == INLINE:  # the error returned
                try:
                    more = error_info(serialization.loads(extra[0][2], extra[0][3]))
                except Exception:  # an error that does not unpickle here is still an error
                    more = {"error_type": "TASK_EXECUTION_EXCEPTION"}
            else:
                more = None
            if more:
                info = {**info, **more} if info else more
        return (task_id, attempt, state, t, info)

    def flush_background(self, force: bool = False) -> None:
        while self.deferred_calls:
            fn = self.deferred_calls.popleft()
            try:
                fn()
            except Exception:
                log.debug("deferred call failed", exc_info=True)
        self.store.flush()
        now = time.monotonic()
        if self.task_events.due(now) or (force and self.task_events.enabled):
            self._send_task_events()
        if metrics.PENDING.due(now) or force:
            self._send_metrics()
        if not self._borrow_removals:
            return
        by_owner = collections.defaultdict(list)
        while self._borrow_removals:
            owner, oid = self._borrow_removals.popleft()
            by_owner[owner].append((oid, self.address))
        for owner, items in by_owner.items():
            try:
                self.worker_at(owner).remove_borrowers(items)
            except (OSError, rpc.ConnectionClosed):
                pass

    # -- put / get ---------------------------------------------------------------------
    def put(self, value, _owner_for=None) -> ObjectRef:
        if isinstance(value, ObjectRef):
            raise TypeError(
                "Calling skate.put() on an ObjectRef is not allowed: the object already exists. "
                "Pass the ref itself, or wrap it in a list to store a reference to it.")
        oid = ids.object_id(ids.task_id(), 0)
        with serialization.collecting_refs() as c:
            meta, bufs = serialization.dumps(value, "value passed to put()")
        self.objects.create_owned(oid)
        ref = ObjectRef(oid, self.address)
        kind = serialization.KIND_VALUE
        if len(meta) + sum(b.nbytes for b in bufs) <= INLINE_THRESHOLD:
            value, in_store = ("i", kind, meta, [bytes(b) for b in bufs]), False
        else:
            size = self.store.put(oid, kind, meta, bufs, self.address)
            value, in_store = ("s", kind, self.node_id, size), True
        self.objects.complete(oid, READY, value, in_store, list(c.refs))
        return ref

    def serialize_return(self, oid: bytes, value, caller: str, kind=serialization.KIND_VALUE):
        """A task's return value as a reply entry; large ones go to the store, owned by
        ``caller``."""
        with serialization.collecting_refs() as c:
            meta, bufs = serialization.dumps(value, "return value")
        contained = self.register_borrower_for(c.refs, caller) if c.refs else []
        size = len(meta) + sum(b.nbytes for b in bufs)
        if size <= INLINE_THRESHOLD:
            return ("i", kind, meta, [bytes(b) for b in bufs], contained)
        size = self.store.put(oid, kind, meta, bufs, caller)
        return ("s", kind, self.node_id, size, contained)

    # -- actors --------------------------------------------------------------------------
    def actor_submitter(self, actor_id: bytes, meta: dict) -> ActorSubmitter:
        s = self.actors.get(actor_id)
        if s is None:
            with self.actors_lock:
                s = self.actors.get(actor_id)
                if s is None:
                    s = self.actors[actor_id] = ActorSubmitter(
                        self, actor_id, meta.get("max_task_retries", 0), meta["class_name"],
                        meta.get("max_restarts", 0))
        return s

    # -- completing returns ------------------------------------------------------------------
    def complete_returns(self, return_ids, returns) -> None:
        for oid, r in zip(return_ids, returns):
            contained = self.adopt_contained(r[-1])
            state = FAILED if r[1] == serialization.KIND_ERROR else READY
            if r[0] == "i":
                self.objects.complete(oid, state, ("i", r[1], r[2], r[3]), False, contained)
            else:
                self.objects.complete(oid, state, ("s", r[1], r[2], r[3]), True, contained)

    def fail_returns(self, return_ids, error: BaseException) -> None:
        meta = serialization.dumps_inband(error, "error")
        for oid in return_ids:
            self.objects.complete(oid, FAILED, ("i", serialization.KIND_ERROR, meta, []), False)

    # -- shutdown ----------------------------------------------------------------------------
    def disconnect(self) -> None:
        if not self.connected:
            return
        try:
            self.submitter.return_all_leases()
            self.flush_background(force=True)
            if self.mode == "driver":
                self.raylet.flush_logs(timeout=2)
        except Exception:
            pass
        self.connected = False
        self._stop.set()
        set_worker(None)
        for c in list(self._peers.values()):
            c.close()
        for s in list(self.actors.values()):
            if s.conn is not None:
                s.conn.close()
        self.listener.close()
        self.raylet.close()
        self.gcs.close()
        self.store.close()
        if self._future_pool is not None:
            self._future_pool.shutdown(wait=False)
        path = rpc.unix_path(self.address)
        assert path is not None  # a worker always listens on a Unix socket
        try:
            os.unlink(path)
        except OSError:
            pass

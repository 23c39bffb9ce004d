"""Reading objects: ``get``, ``wait``, dependency resolution and futures.

A part of :class:`~skate.core.worker.core_worker.CoreWorker`, kept in its own
module (as the node manager's object handlers are): the reads of an object
this process owns wait on the object table; the reads of a borrowed one ask
its owner (``get_object`` / ``wait_object``) and then map stored values from
this node's store. A worker blocked in a read tells its node manager, which
lends out its CPUs meanwhile (so nested tasks cannot deadlock a full node).

Value entries are protocol.py's: ``(INLINE, kind, meta, bufs)`` or
``(STORED, kind, node, size)`` as owners keep them; ``(STORED, oid, node, size)``,
``(REF, oid, owner)`` or ``(ERROR, exception)`` as resolved arguments.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import TYPE_CHECKING, Callable

from skate import exceptions as exc
from skate.core import kill_points, rpc, serialization
from skate.core.object_ref import ObjectRef
from skate.core.ownership_codes import FAILED, PENDING
from skate.core.protocol import RUNNING, RUNNING_IN_RAY_GET, RUNNING_IN_RAY_WAIT

if TYPE_CHECKING:
    from skate.core.node_manager.client import NodeManagerClient
    from skate.core.object_store.client import StoreClient
    from skate.core.worker.client import WorkerClient
    from skate.core.worker.ownership import ObjectTable
    from skate.core.worker.task_events import TaskEvents
    from skate.core.worker.task_submitter import TaskSubmitter


class ObjectReads:
    """Object reads of a CoreWorker (see the module docstring)."""

    # provided by CoreWorker
    address: str
    mode: str
    objects: ObjectTable
    store: StoreClient
    submitter: TaskSubmitter
    raylet: NodeManagerClient
    current_task: tuple | None
    current_attempt: int
    task_events: TaskEvents
    _future_pool: concurrent.futures.ThreadPoolExecutor | None
    peer: Callable[[str], rpc.Connection]
    worker_at: Callable[[str], WorkerClient]

    def get(self, refs, timeout=None):
        if isinstance(refs, ObjectRef):
            return self._get_one(refs, _deadline(timeout))
        if not isinstance(refs, list):
            raise ValueError(
                f"skate.get() takes an ObjectRef or a list of ObjectRefs, got {type(refs).__name__}"
                f": {serialization._short(refs)}.")
        for r in refs:
            if not isinstance(r, ObjectRef):
                raise TypeError(
                    f"skate.get() got a list holding {serialization._short(r)}, which is not an "
                    f"ObjectRef; pass only ObjectRefs.")
        deadline = _deadline(timeout)
        return [self._get_one(r, deadline) for r in refs]

    def _get_one(self, ref: ObjectRef, deadline):
        entry = self._wait_value(ref, deadline)
        try:
            return self._materialize(ref, entry)
        except exc.ObjectLostError:
            # every copy is gone (its node died): rebuild it from lineage if we can
            if not self.submitter.reconstruct(ref.id):
                raise
        return self._materialize(ref, self._wait_value(ref, deadline))

    def _wait_value(self, ref: ObjectRef, deadline):
        """The wire entry of a ready object: ("i", kind, meta, bufs) / ("s", kind, node, size)
        / ("lost",)."""
        obj = self.objects.owned(ref.id)
        if obj is not None:
            if obj.state == PENDING:
                waiter = threading.Event()
                self.objects.on_ready(ref.id, lambda o: waiter.set())
                if not waiter.is_set():
                    self._blocked(True)
                    try:
                        if not waiter.wait(_remaining(deadline)):
                            raise _timeout([ref])
                    finally:
                        self._blocked(False)
            obj = self.objects.owned(ref.id)
            return _wire_value(obj) if obj is not None else ("lost",)
        if ref.owner == self.address:
            return ("lost",)
        try:
            owner = self.worker_at(ref.owner)
        except OSError:
            return ("owner_died",)
        self._blocked(True)
        try:
            return owner.get_object(ref.id, timeout=_remaining(deadline))
        except TimeoutError:
            raise _timeout([ref]) from None
        except rpc.ConnectionClosed:
            return ("owner_died",)
        finally:
            self._blocked(False)

    def _blocked(self, blocked: bool, waiting: bool = False) -> None:
        """A task running here waits in get (``waiting``: in wait) or resumes: the node
        manager lends its CPUs out meanwhile, and the task's history shows it."""
        task = self.current_task
        if self.mode == "worker" and task is not None:
            try:
                self.raylet.blocked(blocked)
            except rpc.ConnectionClosed:
                pass
            state = (RUNNING_IN_RAY_WAIT if waiting else RUNNING_IN_RAY_GET) if blocked \
                else RUNNING
            self.task_events.append((task[0], self.current_attempt, state, time.time(), None))
            if blocked and kill_points.ARMED:
                kill_points.reached("blocked")

    def _materialize(self, ref: ObjectRef, entry):
        tag = entry[0]
        if tag == "i":
            kind, meta, bufs = entry[1], entry[2], entry[3]
        elif tag == "s":
            got = self.store.get(ref.id, entry[2])
            if got is None:
                raise exc.ObjectLostError(ref.hex())
            kind, meta, bufs = got
        elif tag == "owner_died":
            raise exc.OwnerDiedError(ref.hex())
        else:
            raise exc.ObjectLostError(ref.hex(), f"Object {ref.hex()} was freed or lost before it "
                                                 f"could be read.")
        value = serialization.loads(meta, bufs)
        if kind == serialization.KIND_ERROR:
            if isinstance(value, exc.RayTaskError):
                raise value.as_instanceof_cause()
            raise value
        return value

    def resolve_dependency(self, ref: ObjectRef, callback) -> None:
        """Call ``callback(entry)`` once ``ref`` exists; entry is what a worker needs to read it."""
        def from_owned(obj):
            if obj.state == FAILED:
                callback(("err", _error_of(obj.value)))
            elif obj.in_store:
                callback(("s", ref.id, obj.value[2], obj.value[3]))
            else:
                callback(obj.value)

        if self.objects.on_ready(ref.id, from_owned):
            return
        if ref.owner == self.address:
            callback(("err", exc.ObjectLostError(ref.hex())))
            return

        def from_owner(ok, value):
            if not ok or value[0] in ("lost", "owner_died"):
                callback(("err", exc.OwnerDiedError(ref.hex()) if not ok
                          else exc.ObjectLostError(ref.hex())))
            elif value[0] == "i" and value[1] == serialization.KIND_ERROR:
                callback(("err", _error_of(value)))
            elif value[0] == "s":
                callback(("s", ref.id, value[2], value[3]))
            else:
                callback(value)
        try:
            self.worker_at(ref.owner).wait_object(ref.id, from_owner)
        except OSError:
            callback(("err", exc.OwnerDiedError(ref.hex())))

    def read_dependency(self, entry):
        """The value of one resolved dependency entry (in a worker)."""
        tag = entry[0]
        if tag == "i":
            kind, meta, bufs = entry[1], entry[2], entry[3]
        elif tag == "s":
            got = self.store.get(entry[1], entry[2])
            if got is None:
                raise exc.ObjectLostError(entry[1].hex())
            kind, meta, bufs = got
        elif tag == "r":
            _, oid, owner = entry
            ref = ObjectRef(oid, owner)
            return self._get_one(ref, None)
        else:
            raise entry[1]
        value = serialization.loads(meta, bufs)
        if kind == serialization.KIND_ERROR:
            raise value.as_instanceof_cause() if isinstance(value, exc.RayTaskError) else value
        return value

    def wait(self, refs, num_returns=1, timeout=None, fetch_local=True):
        if isinstance(refs, ObjectRef) or not isinstance(refs, (list, tuple)):
            raise TypeError(f"skate.wait() takes a list of ObjectRefs, got {type(refs).__name__}.")
        for r in refs:
            if not isinstance(r, ObjectRef):
                raise TypeError(f"skate.wait() takes ObjectRefs, but the list holds a "
                                f"{type(r).__name__}.")
        if not refs:
            return [], []
        if len(set(r.id for r in refs)) != len(refs):
            raise ValueError("skate.wait() got the same ObjectRef twice; pass distinct refs.")
        if not isinstance(num_returns, int) or num_returns < 0 or num_returns > len(refs):
            raise ValueError(f"num_returns must be an int between 0 and len(refs)={len(refs)}, "
                             f"got {num_returns!r}.")
        # Owned objects are checked by scanning under the table's condition,
        # which is notified on every completion; only borrowed refs need a
        # callback from their owner. (Callbacks per call would make a loop of
        # wait() over a shrinking list quadratic.)
        table = self.objects
        remote_ready = set()
        asked = False
        deadline = _deadline(timeout)

        def scan():
            found = []
            for r in refs:
                obj = table.owned(r.id)
                if (obj is not None and obj.state != PENDING) or r.id in remote_ready:
                    found.append(r)
                    if len(found) >= num_returns:
                        break
            return found

        def mark(oid):
            with table.changed:
                remote_ready.add(oid)
                table.changed.notify_all()

        with table.changed:
            done = scan()
            if len(done) < num_returns:
                if not asked:
                    asked = True
                    for r in refs:
                        if r.owner != self.address:
                            self.resolve_dependency(r, lambda entry, oid=r.id: mark(oid))
                        elif table.owned(r.id) is None:
                            remote_ready.add(r.id)  # freed or lost: wait reports it as ready
                self._blocked(True, waiting=True)
                try:
                    while len(done) < num_returns:
                        left = _remaining(deadline)
                        if left is not None and left <= 0:
                            break
                        table.changed.wait(left)
                        done = scan()
                finally:
                    self._blocked(False, waiting=True)
        done_ids = {r.id for r in done}
        return done, [r for r in refs if r.id not in done_ids]

    def future_for(self, ref: ObjectRef) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        pool = self._future_pool
        if pool is None:
            pool = self._future_pool = concurrent.futures.ThreadPoolExecutor(4, "skate-futures")

        def fill():
            try:
                fut.set_result(self._get_one(ref, None))
            except BaseException as e:  # the future carries any failure to its awaiter
                fut.set_exception(e)

        self.resolve_dependency(ref, lambda entry: pool.submit(fill))
        return fut

    def asyncio_future_for(self, ref: ObjectRef, loop):
        """An asyncio future on ``loop`` for ``await ref``: one hand-off to the loop.

        Small values (inline in the owner's memory) and errors are read on the loop
        thread itself: the reply thread only schedules the read, and a loop under load
        drains many such callbacks per wake-up. Store objects may need a pull from
        another node, so they are read on the future pool as before.
        """
        fut = loop.create_future()
        owned = ref.owner == self.address

        def settle(entry):
            if fut.done():  # cancelled by its awaiter
                return
            try:
                if entry[0] == "err":
                    err = entry[1]
                    raise err.as_instanceof_cause() if isinstance(err, exc.RayTaskError) else err
                value = self._get_one(ref, None) if owned else self._materialize(ref, entry)
            except BaseException as e:  # the future carries any failure to its awaiter
                fut.set_exception(e)
            else:
                fut.set_result(value)

        def ready(entry):
            if entry[0] in ("i", "err"):
                loop.call_soon_threadsafe(settle, entry)
                return
            inner = self.future_for(ref)
            inner.add_done_callback(lambda f: loop.call_soon_threadsafe(_copy_outcome, f, fut))

        self.resolve_dependency(ref, ready)
        return fut

def _wire_value(obj):
    if obj is None:
        return ("lost",)
    if obj.in_store:
        return obj.value
    return obj.value


def _copy_outcome(src: concurrent.futures.Future, dst) -> None:
    if dst.done():
        return
    if src.exception() is not None:
        dst.set_exception(src.exception())
    else:
        dst.set_result(src.result())


def _error_of(value):
    try:
        err = serialization.loads(value[2], value[3])
    except Exception as e:  # an error that does not unpickle is still an error
        return exc.RaySystemError(f"could not read a failed dependency's error: {e}")
    return err


def _deadline(timeout):
    if timeout is None:
        return None
    if not isinstance(timeout, (int, float)) or timeout < 0:
        raise ValueError(f"timeout must be None or a non-negative number, got {timeout!r}")
    return time.monotonic() + timeout


def _remaining(deadline):
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())


def _timeout(refs):
    return exc.GetTimeoutError(
        f"Get timed out: {len(refs)} object(s) not ready in time "
        f"({', '.join(r.hex() for r in refs[:3])}).")

"""Running tasks and actor methods inside a worker process.

Requests arrive on connection reader threads and are queued; the main thread
runs them one at a time, in arrival order (so an actor sees each caller's
calls in order). Threaded actors (``max_concurrency > 1``) run calls on a
thread pool; async actors run them as coroutines on one event loop thread.

Cancellation: ``cancel_task`` for the running task sends SIGINT to the main
thread; our handler turns it into TaskCancelledError only if that task is
still the one running, so a late cancel can never hit the next task.
"""

from __future__ import annotations

import collections
import inspect
import logging
import os
import signal
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, Callable

from skate import exceptions as exc
from skate.core import ids, kill_points, rpc, serialization
from skate.core.config import omp_threads_are_ours
from skate.core.protocol import RUNNING, ActorStart
from skate.core.rpc import methods as m
from skate.core.worker.actor_execution import (
    ActorExecution,
    ActorExit,
    is_generator,
    set_omp_threads,
)
from skate.core.worker.client import WorkerClient

if TYPE_CHECKING:
    from skate.core.worker.core_worker import CoreWorker

log = logging.getLogger(__name__)
_now = time.time  # task events carry wall-clock times


BOUNCE_AFTER_S = 0.02


class Executor(ActorExecution):
    """Runs a worker's tasks, actor construction and actor calls (see the module docstring).

    ``core`` is set right after construction: the CoreWorker needs the executor's handler
    table to start listening, and the executor needs the CoreWorker to run anything.
    """

    core: CoreWorker

    def __init__(self):
        # work for the main thread, in arrival order; guarded by _cv
        self._pending: collections.deque = collections.deque()
        self._cv = threading.Condition()
        self._task_started = 0.0  # when the main thread's current task began (0: idle)
        self.functions: dict[bytes, Callable] = {}
        self.calls_per_fn: dict[bytes, int] = {}
        self.actor: Any = None
        self.actor_class_name: str | None = None
        self.actor_id: bytes = b""  # set once an actor is constructed here
        self.actor_pool: Any = None  # None (main thread), "async" or a ThreadPoolExecutor
        self.actor_loop: Any = None  # the event loop thread's loop, for async actors
        self._running: bytes | None = None  # task id running on the main thread
        self._cancel: bytes | None = None  # task id asked to stop
        self._cancel_lock = threading.RLock()  # reentrant: the SIGINT handler takes it too
        self._main_ident = threading.get_ident()
        self._exiting = False
        self._event_info: dict | None = None  # see event_info()
        self._omp_ours = omp_threads_are_ours()  # else the user set OMP_NUM_THREADS: keep it
        signal.signal(signal.SIGINT, self._on_sigint)

    # -- requests (reader threads) -------------------------------------------------
    def handlers(self) -> dict:
        """The RPCs a worker answers for running work (the CoreWorker answers the rest)."""
        return {m.PUSH_TASK: self.h_push_task, m.ACTOR_CALL: self.h_actor_call,
                m.START_ACTOR: self.h_start_actor, m.CANCEL_TASK: self.h_cancel_task}

    def h_push_task(self, conn, rid, spec):
        if kill_points.ARMED:
            kill_points.reached("push_task")
        self._enqueue((self._run_task, conn, rid, spec))
        return rpc.DEFER

    def h_actor_call(self, conn, rid, spec):
        if kill_points.ARMED:
            kill_points.reached("actor_call")
        return self._actor_call(conn, rid, spec)

    def h_start_actor(self, conn, rid, start):
        if self.actor is not None and self.actor_id == ActorStart.read(start).actor_id:
            # a restarted control store adopting the actor this worker already runs
            return os.getpid()
        kill_points.reached("create_actor")
        self._enqueue((self._create_actor, conn, rid, start))
        return rpc.DEFER

    def h_cancel_task(self, conn, rid, task_id, recursive=False):
        self._cancel_task(task_id)
        if recursive:
            self.core.submitter.cancel_children(task_id)

    def _cancel_task(self, task_id: bytes) -> None:
        with self._cancel_lock:
            self._cancel = task_id
            if self._running == task_id:
                signal.pthread_kill(self._main_ident, signal.SIGINT)

    def _on_sigint(self, signum, frame):
        with self._cancel_lock:
            hit = self._running if self._running is not None and self._running == self._cancel \
                else None
        if hit is None:
            return
        if rpc.in_send():  # raising mid-frame would corrupt a connection: try again shortly
            t = threading.Timer(0.005, signal.pthread_kill, (self._main_ident, signal.SIGINT))
            t.daemon = True
            t.start()
            return
        raise exc.TaskCancelledError(hit.hex())

    # -- main loop -------------------------------------------------------------------
    def _enqueue(self, item) -> None:
        with self._cv:
            self._pending.append(item)
            self._cv.notify_all()

    def run(self) -> None:
        threading.Thread(target=self._bounce_stuck, name="skate-bouncer", daemon=True).start()
        while True:
            with self._cv:
                while not self._pending:
                    self._cv.wait()
                fn, conn, rid, spec = self._pending.popleft()
                self._task_started = time.monotonic()
            try:
                fn(conn, rid, spec)
            except ActorExit:
                return
            finally:
                self._task_started = 0.0
            if self._exiting:
                return

    def _bounce_stuck(self) -> None:
        """Hand back pipelined tasks stuck behind a task that turned out slow.

        A submitter pipelines short tasks to a worker; if the running one then
        takes longer than BOUNCE_AFTER_S, the ones queued behind it go back to
        the submitter to run elsewhere, so pipelining can delay a task but
        never deadlock it (e.g. tasks that wait for each other).
        """
        while True:
            with self._cv:
                queued = any(item[0] == self._run_task for item in self._pending)
                if not queued:
                    self._cv.wait()
                    continue
                started = self._task_started
                late = started and time.monotonic() - started > BOUNCE_AFTER_S
                if not late:
                    self._cv.wait(BOUNCE_AFTER_S / 2)
                    continue
                keep: collections.deque = collections.deque()
                bounced: list = []
                for item in self._pending:
                    (bounced if item[0] == self._run_task else keep).append(item)
                self._pending = keep
            for _, conn, rid, _spec in bounced:
                conn.reply(rid, ("bounced",))

    # -- tasks -------------------------------------------------------------------------
    def _run_task(self, conn, rid, spec) -> None:
        (task_id, fn_key, fn_blob, fn_name, args_blob, deps, return_ids, caller, gpu_ids,
         resources, max_calls, attempt, (job_id, namespace)) = spec
        core = self.core
        if job_id != core.job_id:
            self._enter_job(job_id)
        core.namespace = namespace
        with self._cancel_lock:
            if self._cancel == task_id:
                conn.reply(rid, self._error_reply(return_ids,
                                                  exc.TaskCancelledError(task_id.hex()), caller))
                return
            self._running = task_id
        core.current_task = (task_id, fn_name)
        core.current_attempt = attempt
        core.assigned_resources = resources
        self._set_gpus(gpu_ids)
        if self._omp_ours:
            set_omp_threads(resources)
        core.task_events.append((task_id, attempt, RUNNING, _now(), self.event_info(job_id)))
        app_error = False
        started = time.perf_counter()
        try:
            try:
                fn = self.functions.get(fn_key)
                if fn is None:
                    if fn_blob is None:  # its first push was bounced or lost: ask for it again
                        conn.reply(rid, ("need_function",))
                        return
                    fn = self.functions[fn_key] = serialization.loads(fn_blob)
                args, kwargs = self._load_args(args_blob, deps)
                result = fn(*args, **kwargs)
                if is_generator(result) and len(return_ids) == 1:
                    result = self._stream(conn, task_id, result, caller)
                returns = self._returns(result, return_ids, caller, fn_name)
            except exc.TaskCancelledError as e:
                returns = self._error_reply(return_ids, e, caller)[1]
            except KeyboardInterrupt:
                returns = self._error_reply(return_ids, exc.TaskCancelledError(task_id.hex()),
                                            caller)[1]
            except BaseException as e:  # the user's error travels to the caller
                app_error = True
                returns = self._error_reply(return_ids, self._task_error(fn_name, e), caller)[1]
        finally:
            with self._cancel_lock:
                self._running = None
                if self._cancel == task_id:
                    self._cancel = None
            core.current_task = None
            core.submitter.forget_children(task_id)
        exiting = False
        if max_calls:
            n = self.calls_per_fn[fn_key] = self.calls_per_fn.get(fn_key, 0) + 1
            exiting = n >= max_calls
        conn.reply(rid, ("ok", returns, app_error, exiting, time.perf_counter() - started))
        if exiting:
            self._exiting = True

    def event_info(self, job_id: str | None) -> dict:
        """What this worker adds to the events of the tasks it runs (one dict per job)."""
        info = self._event_info
        if info is None or info["job_id"] != job_id:
            core = self.core
            info = self._event_info = {"job_id": job_id, "node_id": core.node_id,
                                       "worker_id": core.worker_id, "worker_pid": os.getpid()}
        return info

    def _enter_job(self, job_id: str) -> None:
        """The first task of a job here: its code_search_path goes in front of sys.path."""
        self.core.job_id = job_id
        try:
            job = self.core.gcs.get_job(job_id, timeout=10) or {}
        except Exception as e:  # noqa: BLE001 - the task still runs; imports may fail
            log.warning("could not read job %s's config: %s", job_id, e)
            return
        config = job.get("config") or {}
        self.core.job_env_vars = (config.get("runtime_env") or {}).get("env_vars") or None
        for path in reversed(config.get("code_search_path") or []):
            if path not in sys.path:
                sys.path.insert(0, path)

    def _stream(self, conn, task_id: bytes, gen, caller: str) -> int:
        """Send each value a generator yields to the caller as it comes (see
        skate/core/generator.py); the count becomes the call's return value."""
        if inspect.isasyncgen(gen):  # an async generator in a sync task: drive it here
            import asyncio

            loop = asyncio.new_event_loop()
            try:
                return loop.run_until_complete(self._stream_async(conn, task_id, gen, caller))
            finally:
                loop.close()
        n = 0
        for value in gen:
            self._send_item(conn, task_id, n, value, caller)
            n += 1
        return n

    async def _stream_async(self, conn, task_id: bytes, gen, caller: str) -> int:
        n = 0
        if inspect.isasyncgen(gen):
            async for value in gen:
                self._send_item(conn, task_id, n, value, caller)
                n += 1
        else:
            for value in gen:
                self._send_item(conn, task_id, n, value, caller)
                n += 1
        return n

    def _send_item(self, conn, task_id: bytes, index: int, value, caller: str) -> None:
        entry = self.core.serialize_return(ids.object_id(task_id, index + 2), value, caller)
        WorkerClient(conn).generator_item(task_id, index, entry)

    def _set_gpus(self, gpu_ids) -> None:
        self.core.gpu_ids = list(gpu_ids)
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpu_ids)

    def _load_args(self, args_blob, deps):
        values = [self.core.read_dependency(d) for d in deps] if deps else ()
        if type(args_blob) is tuple:  # large arguments travelled through the store
            args, kwargs = values[args_blob[1]]
        else:
            args, kwargs = serialization.loads(args_blob)
        if deps:
            Arg = serialization.ArgRef
            args = [values[a.i] if type(a) is Arg else a for a in args]
            kwargs = {k: values[v.i] if type(v) is Arg else v for k, v in kwargs.items()}
        return args, kwargs

    def _returns(self, result, return_ids, caller, fn_name):
        n = len(return_ids)
        if n == 1:
            values = [result]
        elif n == 0:
            return []
        else:
            try:
                values = list(result)
            except TypeError:
                values = []  # not iterable: as wrong as the wrong length
            if len(values) != n:
                raise ValueError(
                    f"{fn_name} was declared with num_returns={n} but returned "
                    f"{type(result).__name__} {serialization._short(result)}; return a tuple or "
                    f"list of exactly {n} values.")
        return [self.core.serialize_return(oid, v, caller) for oid, v in zip(return_ids, values)]

    def _task_error(self, fn_name: str, e: BaseException) -> exc.RayTaskError:
        # drop the executor's own frame: the user's code starts one frame down
        tb_start = e.__traceback__.tb_next if e.__traceback__ is not None else None
        tb = "".join(traceback.format_exception(type(e), e, tb_start or e.__traceback__))
        if isinstance(e, exc.RayTaskError):
            return e
        try:
            serialization.dumps_inband(e)
            cause = e
        except Exception:
            cause = exc.RaySystemError(
                f"{type(e).__name__}: {e} (the exception could not be pickled)")
        return exc.RayTaskError(fn_name, tb, cause, os.getpid())

    def _error_reply(self, return_ids, error, caller):
        out = []
        for oid in return_ids:
            try:
                out.append(self.core.serialize_return(oid, error, caller, serialization.KIND_ERROR))
            except Exception as e:
                out.append(self.core.serialize_return(
                    oid, exc.RaySystemError(f"could not serialize the error: {e}"), caller,
                    serialization.KIND_ERROR))
        return ("ok", out, True, False, 0.0)

"""Running an actor inside its worker: construction, method calls, the actor's end.

A part of :class:`~skate.core.worker.executor.Executor`, kept in its own module.
An actor's calls run in arrival order on the main thread by default; with
``max_concurrency > 1`` on a thread pool; for an async actor (any ``async def``
method) as coroutines on one event loop thread, at most ``max_concurrency`` at
once. ``exit_actor()`` and the built-in terminate calls raise :class:`ActorExit`,
which tells the control store (no restart), answers the call and leaves the way a
Python program ends (atexit handlers run).
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable

from skate import exceptions as exc
from skate.core import rpc, serialization
from skate.core.config import omp_num_threads
from skate.core.protocol import ActorStart
from skate.core.resources import plain_request

if TYPE_CHECKING:
    from skate.core.worker.core_worker import CoreWorker

log = logging.getLogger(__name__)


class ActorExit(BaseException):
    """Raised by ``exit_actor()`` (and by the terminate calls) to end the actor at once.

    ``why`` becomes the actor's death cause, which callers see in ActorDiedError."""

    def __init__(self, why: str = "the actor exited by calling exit_actor()"):
        super().__init__(why)
        self.why = why


#: methods every actor has, handled here rather than by the user's class
_BUILTIN_EXITS = {
    "__skate_terminate__": "the actor was terminated by __ray_terminate__()",
    "__skate_out_of_scope__": "every handle to the actor went out of scope",
}


class ActorExecution:
    """The actor half of a worker's Executor (see the module docstring)."""

    # provided by Executor
    core: CoreWorker
    actor: Any
    actor_class_name: str | None
    actor_id: bytes
    actor_pool: Any
    actor_loop: Any
    actor_slots: Any
    _omp_ours: bool
    _enqueue: Callable[[tuple], None]
    _enter_job: Callable[[str], None]
    _set_gpus: Callable[[list], None]
    _load_args: Callable[..., tuple]
    _returns: Callable[..., list]
    _stream: Callable[..., int]
    _stream_async: Callable[..., Any]
    _task_error: Callable[[str, BaseException], exc.RayTaskError]
    _error_reply: Callable[..., tuple]

    def _create_actor(self, conn, rid, args) -> None:
        import inspect

        actor_id, payload, gpu_ids, resources, num_restarts, (job_id, namespace), meta = \
            ActorStart.read(args)
        if self.actor is not None and self.actor_id == actor_id:  # adopted while it was made
            conn.reply(rid, os.getpid())
            return
        core = self.core
        if job_id != core.job_id:
            self._enter_job(job_id)
        core.namespace = namespace
        core.actor_restarts = num_restarts
        core.actor_meta = meta
        core.current_actor_id = actor_id
        core.assigned_resources = resources
        self._set_gpus(gpu_ids)
        if self._omp_ours:
            set_omp_threads(resources)
        try:
            cls, args_blob, deps, max_concurrency, class_name = serialization.loads(payload)
            self.actor_class_name = class_name
            self.actor_id = actor_id
            try:
                core.raylet.set_worker_name(class_name)
            except rpc.ConnectionClosed:
                pass
            a, kw = self._load_args(args_blob, deps)
            is_async = any(inspect.iscoroutinefunction(m) or inspect.isasyncgenfunction(m)
                           for _, m in inspect.getmembers(cls, inspect.isfunction))
            if is_async:
                self._start_loop()
            try:
                self.actor = self._construct(cls, a, kw, is_async)
            except ActorExit as e:  # exit_actor() in __init__: created, then it ends
                self._exit_after_init(conn, rid, e.why)
                return
            if is_async:
                import asyncio

                self.actor_pool = "async"
                self.actor_slots = asyncio.run_coroutine_threadsafe(
                    _make_semaphore(max_concurrency), self.actor_loop).result()
            elif max_concurrency > 1:
                from concurrent.futures import ThreadPoolExecutor
                self.actor_pool = ThreadPoolExecutor(max_concurrency, "skate-actor")
        except BaseException as e:  # the constructor's error is the actor's death cause
            err = self._task_error(f"{getattr(cls, '__name__', 'actor')}.__init__", e) \
                if 'cls' in dir() else e
            # the control store marks the actor dead and has this worker stopped
            conn.reply(rid, exc.ActorDiedError(
                f"The actor's constructor failed:\n{err}", actor_id.hex()), ok=False)
            return
        conn.reply(rid, os.getpid())

    def _exit_after_init(self, conn, rid, why: str) -> None:
        try:
            self.core.gcs.actor_exited(self.actor_id, why, timeout=5)
        except Exception:
            pass
        conn.reply(rid, os.getpid())  # the control store sees it dead already: no restart
        self._leave()

    def _construct(self, cls, a, kw, is_async):
        if not is_async:
            return cls(*a, **kw)
        import asyncio

        # __init__ runs in the loop thread so that it may create loop-bound objects
        fut = asyncio.run_coroutine_threadsafe(_call_sync(cls, a, kw), self.actor_loop)
        return fut.result()

    def _start_loop(self) -> None:
        import asyncio

        loop = asyncio.new_event_loop()
        t = threading.Thread(target=loop.run_forever, name="skate-actor-loop", daemon=True)
        t.start()
        self.actor_loop = loop

    def _actor_call(self, conn, rid, spec):
        if self.actor_pool is None:
            self._enqueue((self._run_actor_call, conn, rid, spec))
        elif self.actor_pool == "async":
            import asyncio

            asyncio.run_coroutine_threadsafe(self._run_async_call(conn, rid, spec), self.actor_loop)
        else:
            self.actor_pool.submit(self._run_actor_call, conn, rid, spec)
        return rpc.DEFER

    def _run_actor_call(self, conn, rid, spec) -> None:
        task_id, method, args_blob, deps, return_ids, caller = spec
        self.core.current_task = (task_id, method)
        self.core.current_attempt = 0
        try:
            if method in _BUILTIN_EXITS:
                raise ActorExit(_BUILTIN_EXITS[method])
            args, kwargs = self._load_args(args_blob, deps)
            result = True if method == "__skate_ready__" else \
                getattr(self.actor, method)(*args, **kwargs)
            if is_generator(result) and len(return_ids) == 1:
                result = self._stream(conn, task_id, result, caller)
            returns = self._returns(result, return_ids, caller, self._qual(method))
            conn.reply(rid, ("ok", returns, False, False, 0.0))
        except ActorExit as e:
            self._actor_exits(conn, rid, return_ids, caller, e.why)
        except BaseException as e:  # the user's error travels to the caller
            conn.reply(rid, self._error_reply(return_ids, self._task_error(self._qual(method), e),
                                              caller))
        finally:
            self.core.current_task = None

    async def _run_async_call(self, conn, rid, spec) -> None:
        async with self.actor_slots:  # at most max_concurrency calls at once
            await self._run_async_call_now(conn, rid, spec)

    async def _run_async_call_now(self, conn, rid, spec) -> None:
        task_id, method, args_blob, deps, return_ids, caller = spec
        try:
            if method in _BUILTIN_EXITS:
                raise ActorExit(_BUILTIN_EXITS[method])
            if method == "__skate_ready__":
                conn.reply(rid, ("ok", self._returns(True, return_ids, caller, method), False,
                                 False, 0.0))
                return
            if deps:
                import asyncio

                args, kwargs = await asyncio.get_running_loop().run_in_executor(
                    None, self._load_args, args_blob, deps)
            else:
                args, kwargs = self._load_args(args_blob, deps)
            result = getattr(self.actor, method)(*args, **kwargs)
            if hasattr(result, "__await__"):
                result = await result
            if is_generator(result) and len(return_ids) == 1:
                result = await self._stream_async(conn, task_id, result, caller)
            returns = self._returns(result, return_ids, caller, self._qual(method))
            conn.reply(rid, ("ok", returns, False, False, 0.0))
        except ActorExit as e:
            self._actor_exits(conn, rid, return_ids, caller, e.why)
        except BaseException as e:  # the user's error travels to the caller
            conn.reply(rid, self._error_reply(return_ids, self._task_error(self._qual(method), e),
                                              caller))

    def _qual(self, method: str) -> str:
        return f"{self.actor_class_name}.{method}"

    def _actor_exits(self, conn, rid, return_ids, caller, why: str) -> None:
        """The actor ends itself (exit_actor(), __ray_terminate__, out of scope): tell the
        control store (no restart), answer this call, run the atexit handlers, leave.
        Calls queued behind this one fail on their callers' side when the connection
        closes, with the death cause set here."""
        try:
            self.core.gcs.actor_exited(self.actor_id, why, timeout=5)
        except Exception:
            pass
        if conn is not None:
            conn.reply(rid, self._error_reply(return_ids, exc.ActorDiedError(
                f"The actor {self.actor_class_name} (id {self.actor_id.hex()}) is dead: {why}.",
                self.actor_id.hex()), caller))
        self._leave()

    def _leave(self) -> None:
        """Exit the process the way a Python program ends: atexit handlers run (unlike a
        kill), output is flushed."""
        import atexit

        try:
            atexit._run_exitfuncs()
        except BaseException:  # noqa: BLE001 - a failing handler must not keep us alive
            log.exception("an atexit handler failed")
        self.core.flush_background(force=True)  # task events and metrics not sent yet
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

async def _make_semaphore(n: int):
    import asyncio

    return asyncio.Semaphore(n)


async def _call_sync(cls, a, kw):
    return cls(*a, **kw)

def is_generator(value) -> bool:
    return inspect.isgenerator(value) or inspect.isasyncgen(value)


def set_omp_threads(resources: dict) -> None:
    """OMP_NUM_THREADS = the CPUs the task or actor holds (at least 1), as Ray sets it, so
    numpy and torch do not each start a thread per core of the machine. Written only when
    it changes (most tasks of a worker hold the same CPUs)."""
    cpus = resources.get("CPU") if resources else 0
    if cpus is None:  # in a placement group: the CPUs are named after the group
        cpus = plain_request(resources).get("CPU", 0)
    value = str(max(1, int(cpus)))
    if omp_num_threads() != value:
        os.environ["OMP_NUM_THREADS"] = value

"""``Pool``: the standard library's ``multiprocessing.Pool``, with actors as its processes.

Design
------
Each pool process is a :class:`~skate.util.multiprocessing.process.PoolProcess`
actor; a *slot* holds one, and ``processes`` slots make the pool. A call
(``map``, ``imap``, ``apply_async``, ...) becomes a *job*: a source of chunks
(lists of items) and a sink that collects chunk results (``AsyncResult`` or
``IMapIterator``). Jobs queue first in, first out.

Dispatch is dynamic, like the stdlib's shared task queue, not a fixed
round-robin: whenever a process is idle, the pool takes the next chunk of the
oldest job and sends it there, so a slow chunk never holds up chunks queued
behind it. Each process has one chunk at a time; sending a second one behind
it (pipelining) was measured and gains nothing here, since the caller's
per-call cost dominates, while it would let a slow chunk block a fast one.
Completions arrive on Skate's future threads (``ObjectRef.future()``); each
one hands the chunk to its sink and pumps again. Sources are read lazily
under the pool's lock, so ``imap`` over a generator never materializes it;
an ``imap`` job stops taking chunks while its consumer lags a few chunks per
process behind (its ``next()`` pumps again), and other jobs pass it.

Placement: each slot is pinned (softly) to a node, the slots spread over the
nodes in proportion to their CPUs (one node's CPUs interleaved with the
next's, so a small pool still spans nodes). The actors themselves ask for no
CPU, like Ray's Pool, so a pool never starves the cluster's tasks nor waits
for a CPU that other work holds. ``ray_remote_args`` with a
``scheduling_strategy`` replaces this placement.

``maxtasksperchild`` counts chunks (the stdlib counts tasks, and a chunk is
one task). A slot whose actor reached the limit takes no more chunks; when
its last one completes, its actor is ended and a fresh one takes the slot,
so there are never more than ``processes`` actors running chunks. A slot
whose actor died is refilled the same way; the chunks it was running fail
with ``ActorDiedError`` (the stdlib would hang).

States: RUN -> CLOSE (``close``: no new calls; queued work still runs; the
actors end once it is done) -> ``join`` waits for that. ``terminate`` (also
``__exit__``) kills the actors at once and fails every unfinished result
with :class:`PoolTerminatedError`.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import threading
import weakref
from collections import deque
from dataclasses import dataclass

import skate
from skate.exceptions import RayActorError, RayError
from skate.util.multiprocessing.process import PoolProcess
from skate.util.multiprocessing.results import AsyncResult, IMapIterator, unwrap_error
from skate.util.scheduling_strategies import NodeAffinitySchedulingStrategy

log = logging.getLogger(__name__)

__all__ = ["Pool", "PoolTerminatedError"]

RUN, CLOSE, TERMINATE = "RUN", "CLOSE", "TERMINATE"


class PoolTerminatedError(RuntimeError, RayError):
    """The pool was terminated (``terminate()`` or leaving ``with``) before this result
    was ready. Collect results before leaving the ``with`` block, or call
    ``close()`` and ``join()`` to let queued work finish."""


@dataclass(eq=False)
class _Slot:
    """One pool process: the actor running it and its chunk counters."""

    actor: object
    # The node the slot's actors are placed on (None: wherever the scheduler likes).
    node: str | None = None
    # ``actor`` is running a chunk (it gets one at a time).
    busy: bool = False
    # Chunks ever sent to ``actor`` (for maxtasksperchild).
    sent: int = 0
    # ``actor`` takes no more chunks; it is replaced once its chunk completes.
    retiring: bool = False


# _Job.take()'s answer when an imap consumer is too far behind: try again after its next().
_WAIT = object()


class _Job:
    """One pool call: where its chunks come from, how to run them, where results go."""

    def __init__(self, func, chunks, mode: str, sink):
        self.func = func
        self.mode = mode
        self.sink = sink
        self._chunks = iter(chunks)
        self._taken = 0  # chunks handed out so far

    def take(self, bounded: bool = True):
        """``(index, items)`` of the next chunk; None when the source is exhausted;
        ``_WAIT`` when an imap consumer lags (``bounded``) and the chunk should wait."""
        imap = isinstance(self.sink, IMapIterator)
        if imap and bounded and not self.sink._may_take():
            return _WAIT
        try:
            items = next(self._chunks)
        except StopIteration:
            if imap:
                self.sink._set_length(self._taken)
            return None
        except Exception as e:  # noqa: BLE001 - the user's iterable raised: fail at its place
            self.sink._set(self._taken, False, e)
            if imap:
                self.sink._set_length(self._taken + 1)
            return None
        index = self._taken
        self._taken += 1
        return index, items


def _chunked(iterable, size: int):
    iterator = iter(iterable)
    while True:
        chunk = list(itertools.islice(iterator, size))
        if not chunk:
            return
        yield chunk


def _check_chunksize(chunksize):
    if chunksize is not None and (not isinstance(chunksize, int) or chunksize < 1):
        raise ValueError(f"Chunksize must be 1+, not {chunksize!r}")


def _spread_over_cpus(processes: int) -> list:
    """A node id per slot, in proportion to the nodes' CPUs; Nones on a single node.

    The CPUs of the nodes are interleaved (A B C A B A ...), so the first slots
    land on different nodes.
    """
    cpus = {
        n["NodeID"]: int(n["Resources"].get("CPU", 0))
        for n in skate.nodes()
        if n.get("Alive") and n["Resources"].get("CPU", 0) >= 1
    }
    if len(cpus) <= 1:
        return [None] * processes
    order = [node for r in range(max(cpus.values())) for node in sorted(cpus) if cpus[node] > r]
    return [order[i % len(order)] for i in range(processes)]


_actor_class = None


def _pool_process_class():
    global _actor_class
    if _actor_class is None:
        _actor_class = skate.remote(PoolProcess)
    return _actor_class


class Pool:
    """A pool of worker processes with ``multiprocessing.Pool``'s interface, on Skate.

    Args:
        processes: number of pool processes (actors); defaults to the cluster's CPUs.
        initializer: called as ``initializer(*initargs)`` once in each process.
        initargs: arguments of ``initializer``.
        maxtasksperchild: replace a process after it has run this many chunks.
        context: accepted for compatibility with the stdlib; ignored.
        ray_address: if Skate is not initialized yet, ``skate.init(address=ray_address)``
            (without it, ``skate.init(num_cpus=processes)`` starts a local node).
        ray_remote_args: actor options for the processes, e.g. ``{"num_cpus": 1}``
            to make each process hold a CPU. By default they hold none, like Ray's Pool.

    >>> from skate.util.multiprocessing import Pool
    >>> with Pool(2) as pool:
    ...     pool.map(abs, range(-3, 0))
    [3, 2, 1]
    """

    def __init__(
        self,
        processes: int | None = None,
        initializer=None,
        initargs=(),
        maxtasksperchild: int | None = None,
        context=None,
        ray_address: str | None = None,
        ray_remote_args: dict | None = None,
    ):
        if processes is not None and (not isinstance(processes, int) or processes < 1):
            raise ValueError(f"Number of processes must be at least 1, got {processes!r}.")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if maxtasksperchild is not None and (
            not isinstance(maxtasksperchild, int) or maxtasksperchild <= 0
        ):
            raise ValueError("maxtasksperchild must be a positive int or None")
        if context is not None:
            log.warning("Pool(context=...) is ignored: Skate starts the pool's processes.")
        if not skate.is_initialized():
            # ray_address, else RAY_ADDRESS / SKATE_ADDRESS (init reads them), else a new node
            if ray_address is not None:
                skate.init(address=ray_address)
            elif os.environ.get("SKATE_ADDRESS") or os.environ.get("RAY_ADDRESS"):
                skate.init()
            else:
                skate.init(num_cpus=processes)
        cpus = int(skate.cluster_resources().get("CPU", 1))
        if processes is None:
            processes = max(1, cpus)
        elif processes > cpus:
            raise ValueError(f"Tried to start a pool with {processes} processes on a cluster "
                             f"that has only {cpus} CPUs. Ask for at most {cpus}, or add nodes.")
        self._processes = processes
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._maxtasksperchild = maxtasksperchild
        self._actor_options = dict(ray_remote_args or {})
        self._lock = threading.Lock()
        # RUN, CLOSE or TERMINATE; changes only forward.
        self._state = RUN
        # Jobs with chunks not yet sent, oldest first.
        self._jobs: deque[_Job] = deque()
        # Chunks sent and not yet completed, over all actors (old ones included).
        self._outstanding = 0
        # Sinks that may still be pending, for terminate() to fail.
        self._sinks: weakref.WeakSet = weakref.WeakSet()
        # Set once every actor was told to end (close drained, or terminate).
        self._stopped = threading.Event()
        # __ray_terminate__ refs of actors ending on their own; join() waits for them.
        self._exiting: list = []
        if "scheduling_strategy" in self._actor_options:
            nodes = [None] * processes
        else:
            nodes = _spread_over_cpus(processes)
        self._slots = [_Slot(self._new_actor(node), node) for node in nodes]
        try:
            # Fail here, with the initializer's error, rather than at the first map.
            skate.get([slot.actor.ready.remote() for slot in self._slots])
        except BaseException as e:  # noqa: BLE001 - ends the actors, then re-raises
            for slot in self._slots:
                skate.kill(slot.actor)
            error = unwrap_error(e)
            raise error from error.__cause__

    # -- the stdlib's interface ---------------------------------------------------------------
    def apply(self, func, args=(), kwds=None, *, kwargs=None):
        """``func(*args, **kwds)`` in a pool process; blocks for the result."""
        return self.apply_async(func, args, kwds, kwargs=kwargs).get()

    def apply_async(
        self, func, args=(), kwds=None, callback=None, error_callback=None, *, kwargs=None
    ) -> AsyncResult:
        """``func(*args, **kwds)`` in a pool process; returns an :class:`AsyncResult`.

        ``kwargs`` is accepted as another name for ``kwds`` (Ray's Pool calls it so).
        """
        kwds = dict(kwds or {}, **(kwargs or {}))
        sink = AsyncResult(1, callback, error_callback, single=True)
        self._submit(_Job(func, [[(tuple(args or ()), kwds)]], "apply", sink))
        return sink

    def map(self, func, iterable, chunksize: int | None = None) -> list:
        """``[func(x) for x in iterable]`` in parallel, in order."""
        return self.map_async(func, iterable, chunksize).get()

    def map_async(
        self, func, iterable, chunksize: int | None = None, callback=None, error_callback=None
    ) -> AsyncResult:
        """Like :meth:`map`, returning an :class:`AsyncResult`."""
        return self._map_async(func, iterable, chunksize, "map", callback, error_callback)

    def starmap(self, func, iterable, chunksize: int | None = None) -> list:
        """``[func(*args) for args in iterable]`` in parallel, in order."""
        return self.starmap_async(func, iterable, chunksize).get()

    def starmap_async(
        self, func, iterable, chunksize: int | None = None, callback=None, error_callback=None
    ) -> AsyncResult:
        """Like :meth:`starmap`, returning an :class:`AsyncResult`."""
        return self._map_async(func, iterable, chunksize, "star", callback, error_callback)

    def imap(self, func, iterable, chunksize: int = 1) -> IMapIterator:
        """An iterator over ``func(x)`` for x in ``iterable``, in order, as results arrive."""
        return self._imap(func, iterable, chunksize, ordered=True)

    def imap_unordered(self, func, iterable, chunksize: int = 1) -> IMapIterator:
        """Like :meth:`imap`, in the order results complete."""
        return self._imap(func, iterable, chunksize, ordered=False)

    def close(self) -> None:
        """Accept no more calls; queued work still runs, then the processes end."""
        with self._lock:
            if self._state == RUN:
                self._state = CLOSE
        # Resumes imap jobs held back for their consumers (a closed pool reads its inputs to
        # the end, so join() returns), or ends the processes if nothing is left.
        self._pump()

    def terminate(self) -> None:
        """Stop the processes now; unfinished results fail with PoolTerminatedError."""
        with self._lock:
            if self._state == TERMINATE:
                return
            self._state = TERMINATE
            self._jobs.clear()
            actors = [slot.actor for slot in self._slots]
            sinks = list(self._sinks)
        error = PoolTerminatedError(
            "The pool was terminated before this result was ready (terminate() was called, "
            "or the `with Pool()` block was left). Get results inside the block, or call "
            "close() and join() to let queued work finish."
        )
        for sink in sinks:  # first, so that the killed calls' errors are ignored
            sink._abort(error)
        for actor in actors:
            try:
                skate.kill(actor)
            except RayActorError:
                pass  # already dead
        self._stopped.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the processes to end; call ``close()`` or ``terminate()`` first."""
        if self._state == RUN:
            raise ValueError("Pool is still running: call close() or terminate() before join().")
        if not self._stopped.wait(timeout):
            return
        if self._exiting:
            skate.wait(self._exiting, num_returns=len(self._exiting), timeout=timeout)

    def __enter__(self):
        self._check_running()
        return self

    def __exit__(self, *exc_info):
        self.terminate()

    def __reduce__(self):
        raise NotImplementedError(
            "Pool objects cannot be passed between processes or pickled; create the pool "
            "where it is used, or pass an ActorPool of actor handles instead."
        )

    def __repr__(self):
        return f"<skate.util.multiprocessing.Pool state={self._state} pool_size={self._processes}>"

    # -- submitting ---------------------------------------------------------------------------
    def _map_async(self, func, iterable, chunksize, mode, callback, error_callback):
        self._check_running()
        _check_chunksize(chunksize)
        if not hasattr(iterable, "__len__"):
            iterable = list(iterable)
        if chunksize is None:
            # The stdlib's choice: about four chunks per process.
            chunksize, extra = divmod(len(iterable), self._processes * 4)
            chunksize += bool(extra)
        num_chunks = -(-len(iterable) // chunksize) if len(iterable) else 0
        sink = AsyncResult(num_chunks, callback, error_callback)
        if num_chunks:
            self._submit(_Job(func, _chunked(iterable, chunksize), mode, sink))
        return sink

    def _imap(self, func, iterable, chunksize, ordered):
        self._check_running()
        _check_chunksize(chunksize)
        # Read ahead of the consumer by a few chunks per process, no more.
        sink = IMapIterator(ordered, ahead=4 * self._processes, wake=self._pump)
        self._submit(_Job(func, _chunked(iterable, chunksize or 1), "map", sink))
        return sink

    def _check_running(self):
        if self._state != RUN:
            raise ValueError("Pool not running")

    def _submit(self, job: _Job) -> None:
        with self._lock:
            if self._state != RUN:
                raise ValueError("Pool not running")
            self._jobs.append(job)
            self._sinks.add(job.sink)
        self._pump()

    # -- dispatch (the pool's one loop; see the module docstring) -----------------------------
    def _new_actor(self, node: str | None):
        cls = _pool_process_class()
        options = dict(self._actor_options)
        if node is not None:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=True)
        if options:
            cls = cls.options(**options)
        return cls.remote(self._initializer, self._initargs)

    def _pump(self) -> None:
        """Send chunks to idle processes; attach completion callbacks outside the lock."""
        sent, unsent = [], []
        with self._lock:
            while self._jobs and self._state != TERMINATE:
                slot = next((s for s in self._slots if not s.busy and not s.retiring), None)
                if slot is None:
                    break
                job, taken = self._next_chunk()
                if job is None:
                    break  # every job waits for its consumer
                index, items = taken
                try:
                    # Sent under the lock: the slot's state always matches what was sent.
                    ref = slot.actor.run.remote(job.func, items, job.mode)
                except Exception as e:  # noqa: BLE001 - e.g. an unpicklable function or item
                    unsent.append((job, index, e))
                    continue
                slot.busy = True
                slot.sent += 1
                self._outstanding += 1
                sent.append((ref, slot, slot.actor, job, index))
                if self._maxtasksperchild and slot.sent >= self._maxtasksperchild:
                    slot.retiring = True
            drained = self._state == CLOSE and not self._jobs and not self._outstanding
        for job, index, error in unsent:
            job.sink._set(index, False, error)
        for ref, slot, actor, job, index in sent:
            ref.future().add_done_callback(
                functools.partial(self._on_done, slot, actor, job, index)
            )
        if drained:
            self._stop_actors()

    def _next_chunk(self):
        """``(job, (index, items))`` from the oldest job that has a chunk now, or
        ``(None, None)`` (called under the lock)."""
        for job in list(self._jobs):
            # A map that already failed needs none of its remaining chunks.
            taken = None if job.sink._settled() else job.take(self._state == RUN)
            if taken is None:
                self._jobs.remove(job)
            elif taken is not _WAIT:
                return job, taken
        return None, None

    def _on_done(self, slot: _Slot, actor, job: _Job, index: int, future) -> None:
        error = future.exception()
        with self._lock:
            self._outstanding -= 1
            if slot.actor is actor:
                slot.busy = False
                died = isinstance(error, RayActorError)
                if self._state != TERMINATE and (died or slot.retiring):
                    if not died:
                        self._exiting.append(actor.__ray_terminate__.remote())
                    self._refill(slot)
        if error is None:
            job.sink._set(index, True, future.result())
        else:
            job.sink._set(index, False, unwrap_error(error))
        self._pump()

    def _refill(self, slot: _Slot) -> None:
        """Give the slot a fresh actor (called under the lock)."""
        slot.actor = self._new_actor(slot.node)
        slot.busy = slot.retiring = False
        slot.sent = 0

    def _stop_actors(self) -> None:
        """Closed and drained: end every process after its calls (at most once)."""
        with self._lock:
            if self._stopped.is_set():
                return
            self._exiting.extend(slot.actor.__ray_terminate__.remote() for slot in self._slots)
            self._stopped.set()

"""``SkateBackend``: joblib's parallel backend interface, with each batch a Skate task.

joblib hands the backend *batches* (a ``BatchedCalls``: a few calls of the
user's function, sized by joblib's auto-batching so one takes about 0.2-1 s)
through ``submit(batch, callback)``. Each batch becomes one Skate task; the
task's ``ObjectRef.future()`` calls joblib's callback when it completes, and
``retrieve_result_callback`` turns the future into the batch's results or
re-raises its exception as the user's own type (as loky does). joblib
dispatches the next batch from that callback, so about ``2 * n_jobs``
batches are in flight and Skate's scheduler spreads them over the cluster.

Nested ``Parallel`` calls inside a task use joblib's threading backend (the
base class's default): a batch never waits on batches that might queue
behind it.
"""

from __future__ import annotations

import logging
import threading

from joblib.parallel import (
    AutoBatchingMixin,
    FallbackToBackend,
    ParallelBackendBase,
    SequentialBackend,
)

import skate
from skate.util.multiprocessing.results import unwrap_error

log = logging.getLogger(__name__)

__all__ = ["SkateBackend"]


def _run_batch(batch):
    return batch()


_remote_batch = None


def _batch_function():
    global _remote_batch
    if _remote_batch is None:
        _remote_batch = skate.remote(_run_batch)
    return _remote_batch


def _cluster_cpus() -> int:
    if not skate.is_initialized():
        skate.init()
    return max(1, int(skate.cluster_resources().get("CPU", 1)))


class SkateBackend(AutoBatchingMixin, ParallelBackendBase):
    """A joblib backend that runs batches as Skate tasks (registered as ``"skate"``).

    Args:
        ray_remote_args: task options for every batch, e.g. ``{"num_cpus": 2}``
            for batches that use two cores each.

    >>> import joblib
    >>> from skate.util.joblib import register_skate
    >>> register_skate()
    >>> with joblib.parallel_backend("skate", n_jobs=2):
    ...     joblib.Parallel()(joblib.delayed(abs)(-i) for i in range(3))
    [0, 1, 2]
    """

    supports_retrieve_callback = True
    supports_inner_max_num_threads = False
    uses_threads = False
    supports_sharedmem = False
    default_n_jobs = -1

    def __init__(
        self,
        nesting_level=None,
        inner_max_num_threads=None,
        ray_remote_args: dict | None = None,
        **kwargs,
    ):
        super().__init__(
            nesting_level=nesting_level, inner_max_num_threads=inner_max_num_threads, **kwargs
        )
        self._remote_args = dict(ray_remote_args or {})
        self._lock = threading.Lock()
        # Batches submitted and not yet completed, for abort_everything to cancel.
        self._in_flight: set = set()

    def effective_n_jobs(self, n_jobs) -> int:
        """``n_jobs`` as joblib means it: -1 is every CPU of the cluster, -2 all but one."""
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        if n_jobs is None:
            return 1
        if n_jobs < 0:
            return max(_cluster_cpus() + 1 + n_jobs, 1)
        return n_jobs

    def configure(
        self,
        n_jobs=1,
        parallel=None,
        prefer=None,
        require=None,
        ray_remote_args: dict | None = None,
        **backend_kwargs,
    ) -> int:
        """Start Skate if needed; one job runs in-process, as with joblib's own backends."""
        n_jobs = self.effective_n_jobs(n_jobs)
        if n_jobs == 1:
            raise FallbackToBackend(SequentialBackend(nesting_level=self.nesting_level))
        if ray_remote_args is not None:
            self._remote_args = dict(ray_remote_args)
        if not skate.is_initialized():
            skate.init()
        self.parallel = parallel
        return n_jobs

    def submit(self, func, callback=None):
        """Run one batch as a Skate task; returns a ``concurrent.futures.Future``."""
        remote = _batch_function()
        if self._remote_args:
            remote = remote.options(**self._remote_args)
        ref = remote.remote(func)
        with self._lock:
            self._in_flight.add(ref)
        future = ref.future()
        future.add_done_callback(lambda _: self._forget(ref))
        if callback is not None:
            future.add_done_callback(callback)
        return future

    def retrieve_result_callback(self, out):
        """The batch's results; re-raises its exception as the function's own type."""
        try:
            return out.result()
        except Exception as e:  # noqa: BLE001 - re-raised as the user's exception
            error = unwrap_error(e)
            raise error from error.__cause__

    def abort_everything(self, ensure_ready: bool = True) -> None:
        """Cancel the batches still running (a batch raised; joblib drops the rest)."""
        with self._lock:
            refs, self._in_flight = list(self._in_flight), set()
        for ref in refs:
            try:
                skate.cancel(ref)
            except Exception as e:  # noqa: BLE001 - it may have completed meanwhile
                log.debug("could not cancel a joblib batch: %s", e)

    def terminate(self) -> None:
        self.reset_batch_stats()

    def _forget(self, ref) -> None:
        with self._lock:
            self._in_flight.discard(ref)

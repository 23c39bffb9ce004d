"""What a training loop calls from inside a worker: report, get_checkpoint, get_context,
get_dataset_shard.

Each worker runs the user's loop in a thread with a ``_WorkerSession``
installed. ``report`` hands one result to the worker's ``next_result()`` call
(which the trainer makes on every worker per step) and then *blocks* until
the trainer asks for the next one: the workers move in lockstep with the
trainer, a reported checkpoint directory stays in place while the trainer
copies it (a loop may delete it as soon as ``report`` returns), and when the
run is stopped the blocked call raises ``_StopTraining``, which unwinds the loop.

Outside a worker these are Tune's: in a Tune function trial ``train.report``
is ``tune.report`` (world size 1).

>>> get_context().get_world_size()  # outside a run
1
"""

from __future__ import annotations

import dataclasses
import queue
import threading

from skate.tune import session as tune_session
from skate.tune.checkpoint import Checkpoint

_session: "_WorkerSession | None" = None


class _StopTraining(BaseException):
    """Raised in a worker's loop at ``report`` when the run is stopped (a BaseException,
    so a loop's ``except Exception`` does not swallow it)."""


@dataclasses.dataclass
class StorageContext:
    """Where a run's results go: ``storage_path/experiment_name/trial_dir_name``."""

    storage_path: str | None
    experiment_dir_path: str | None
    trial_dir_path: str | None


class TrainContext(tune_session.TuneContext):
    """Facts about this worker and its run, from ``train.get_context()``: Tune's trial
    facts (name, id, folder, experiment, resources) and the worker's ranks.

    >>> ctx = TrainContext({"world_rank": 1, "world_size": 2})
    >>> ctx.get_world_rank(), ctx.get_world_size(), ctx.get_local_rank()
    (1, 2, 0)
    """

    def get_world_rank(self) -> int:
        return int(self._info.get("world_rank", 0))

    def get_world_size(self) -> int:
        return int(self._info.get("world_size", 1))

    def get_local_rank(self) -> int:
        """This worker's index among the run's workers on its node."""
        return int(self._info.get("local_rank", 0))

    def get_local_world_size(self) -> int:
        """How many of the run's workers share this worker's node."""
        return int(self._info.get("local_world_size", 1))

    def get_node_rank(self) -> int:
        """The index of this worker's node among the run's nodes."""
        return int(self._info.get("node_rank", 0))

    def get_storage(self) -> StorageContext:
        return StorageContext(self._info.get("storage_path"),
                              self._info.get("experiment_dir"), self._info.get("trial_dir"))

    def get_metadata(self) -> dict:
        return dict(self._info.get("metadata") or {})


class _WorkerSession:
    """The channel between a worker's loop thread and its ``next_result()`` calls."""

    def __init__(self, info: dict, checkpoint: Checkpoint | None, shards: dict):
        self.info = info
        self.checkpoint = checkpoint
        self.shards = shards
        self.items: queue.Queue = queue.Queue()  # ("result", metrics, path) | ("done",) | ...
        self.resume = threading.Event()
        self.stopping = False

    def report(self, metrics: dict, checkpoint: Checkpoint | None) -> None:
        if self.stopping:
            raise _StopTraining()
        self.resume.clear()
        self.items.put(("result", metrics, None if checkpoint is None else checkpoint.path))
        self.resume.wait()
        if self.stopping:
            raise _StopTraining()

    def stop(self) -> None:
        self.stopping = True
        self.resume.set()


def _install(session: _WorkerSession | None) -> None:
    global _session
    _session = session


def report(metrics: dict | None = None, *, checkpoint: Checkpoint | None = None) -> None:
    """Report metrics (rank 0's are the run's) and optionally a checkpoint (rank 0's is
    kept) from every worker; every worker must report the same number of times.

    >>> from skate import train
    >>> def loop(config):
    ...     train.report({"loss": 0.5})
    """
    if metrics is None:
        metrics = {}
    if not isinstance(metrics, dict):
        raise TypeError(f"train.report takes a dict of metrics, got {type(metrics).__name__}")
    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        raise TypeError(f"train.report(checkpoint=...) takes a train.Checkpoint, got "
                        f"{type(checkpoint).__name__}; use Checkpoint.from_directory(dir)")
    if _session is None:
        return tune_session.report(metrics, checkpoint=checkpoint)
    _session.report(dict(metrics), checkpoint)


def get_checkpoint() -> Checkpoint | None:
    """The checkpoint this run continues from (after a failure, a restore, or
    ``resume_from_checkpoint``), else None."""
    if _session is None:
        return tune_session.get_checkpoint()
    return _session.checkpoint


def get_context() -> TrainContext:
    """This worker's ranks and its run's names and folders (see ``TrainContext``)."""
    if _session is None:
        return TrainContext(tune_session.get_context()._info)
    return TrainContext(_session.info)


def get_dataset_shard(name: str = "train"):
    """This worker's share of ``datasets[name]`` given to the trainer: a list, numpy array
    or torch ``Subset`` with the rows ``rank, rank + world_size, ...`` (padded by
    wrapping around so every worker gets as many rows, as torch's DistributedSampler does).
    """
    if _session is None:
        raise RuntimeError("train.get_dataset_shard() is called inside a training loop "
                           "run by a trainer (TorchTrainer(..., datasets={...}).fit())")
    if name not in _session.shards:
        known = ", ".join(repr(k) for k in _session.shards) or "none"
        raise KeyError(f"no dataset {name!r} was given to the trainer (datasets: {known})")
    return _session.shards[name]

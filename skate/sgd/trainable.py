"""A trainer as a Tune trainable: one trial = one placement group = one worker group.

``TorchTrainer.as_trainable()`` returns a subclass of ``TrainTrainable``
carrying the trainer. Tune gives the trial the placement group of
``ScalingConfig.bundles()`` and runs this class in bundle 0; ``setup``
starts the workers in the other bundles and joins them into one process
group; the first ``step`` starts the loop on every worker (with the
checkpoint Tune restored, if any); each ``step`` then returns one report:
rank 0's metrics, and rank 0's checkpoint copied into the trial folder
(``checkpoint_000003``) before the workers go on. So everything Tune does
for a trial holds for a training run: results files and TensorBoard logs,
``CheckpointConfig(num_to_keep=...)``, ``FailureConfig(max_failures=...)``
(a failed run restarts from its latest checkpoint with a fresh worker group),
schedulers stopping a run early, ``Tuner.restore``.

Elastic runs (``num_workers=(min, max)``): the trial's group holds ``min``
workers; ``setup`` adds as many more as fit at that moment, in a placement
group of their own; after every report with a checkpoint, if more fit now, the
workers (waiting in ``report``) are stopped and a bigger group starts from
that checkpoint. A failure restarts the trial, which starts again from
``min`` plus what fits.
"""

from __future__ import annotations

import io
import os
import socket
import tarfile
import tempfile

from skate.tune.checkpoint import Checkpoint, persist
from skate.tune.trainable import Trainable


def _scaling(trainer, config: dict):
    """The trial's ScalingConfig: the trainer's, or one a Tuner's param_space gave."""
    from skate.sgd.config import ScalingConfig

    given = config.get("scaling_config")
    if given is None:
        return trainer.scaling_config
    if isinstance(given, dict):
        return ScalingConfig(**given)
    return given


class TrainTrainable(Trainable):
    """The trainer's side of a run (``_trainer`` is set on the subclass)."""

    _trainer = None

    @classmethod
    def default_resource_request(cls, config: dict):
        return _scaling(cls._trainer, config).as_placement_group_factory()

    def setup(self, config: dict) -> None:
        from skate.sgd.worker_group import WorkerGroup
        from skate.util import get_current_placement_group

        trainer = type(self)._trainer
        self.loop_config = {**(trainer.train_loop_config or {}),
                            **(config.get("train_loop_config") or {})}
        self.scaling = scaling = _scaling(trainer, config)
        self._extra_groups: list = []  # an elastic run's placement groups beyond the trial's
        pg = get_current_placement_group()
        # bundle 0 is the trainer's unless it was empty (then the group is the workers')
        first = 0 if pg is None or len(pg.bundle_specs) == scaling.min_workers else 1
        self.slots = [(pg, None if pg is None else first + i)
                      for i in range(scaling.min_workers)]
        self.slots += self._more_slots(scaling.max_workers - scaling.min_workers)
        self.group = WorkerGroup(scaling, trainer.torch_config)
        self.group.start(self.slots)
        start = trainer.resume_from_checkpoint
        self._restore_path = start.path if start is not None else None
        self._latest: str | None = None
        self._running = False

    def step(self) -> dict:
        trainer = type(self)._trainer
        if not self._running:
            trial_dir = self.logdir
            info = {**self._info, "trial_dir": trial_dir,
                    "experiment_dir": os.path.dirname(trial_dir),
                    "storage_path": os.path.dirname(os.path.dirname(trial_dir)),
                    "metadata": trainer.metadata}
            self.group.run(trainer.train_loop_per_worker, self.loop_config, info,
                           self._restore_path, trainer._dataset_refs)
            self._running = True
        items = self.group.next_results()
        done = [rank for rank, item in enumerate(items) if item[0] == "done"]
        if len(done) == len(items):
            return {"__done__": True}
        if done:
            self.group.shutdown()
            raise RuntimeError(
                f"workers {done} finished their loop while the others reported: every worker "
                f"must call train.report() the same number of times")
        _, metrics, checkpoint_path = items[0]
        if checkpoint_path is not None:
            index = self._iteration + 1
            source = self._local_copy(checkpoint_path)
            try:
                self._latest = persist(source, self.logdir, index,
                                       {"iteration": index, "time_total_s": self._time_total})
            finally:
                if source != checkpoint_path:
                    import shutil

                    shutil.rmtree(source, ignore_errors=True)
            metrics["__checkpoint__"] = self._latest
            self._grow()
        return metrics

    # -- elastic runs ----------------------------------------------------------------------
    def _more_slots(self, want: int) -> list:
        """Up to ``want`` more worker slots, in a placement group of their own, as many as
        the cluster's free resources hold now (none when none do). The free resources are
        the control store's view, at most a heartbeat old: a CPU freed a moment ago is
        seen at the next checkpoint."""
        import skate
        from skate.util import placement_group, remove_placement_group

        res = self.scaling.worker_resources
        if want <= 0:
            return []
        free = skate.available_resources()
        fits = [int(free.get(k, 0) // v) for k, v in res.items() if v]
        k = min([want] + fits)
        if k <= 0:
            return []
        pg = placement_group([dict(res) for _ in range(k)],
                             strategy="PACK" if self.scaling.placement_strategy.startswith(
                                 "STRICT") else self.scaling.placement_strategy)
        if not pg.wait(2):  # taken by someone else meanwhile
            remove_placement_group(pg)
            return []
        self._extra_groups.append(pg)
        return [(pg, i) for i in range(k)]

    def _grow(self) -> None:
        """At a reported checkpoint: when more workers fit now, restart the group bigger
        from that checkpoint (the workers are waiting in report, their state saved)."""
        from skate.sgd.worker_group import WorkerGroup

        s = self.scaling
        if not s.elastic or len(self.slots) >= s.max_workers:
            return
        more = self._more_slots(s.max_workers - len(self.slots))
        if not more:
            return
        self.group.shutdown()
        self.slots += more
        self.group = WorkerGroup(s, type(self)._trainer.torch_config)
        self.group.start(self.slots)
        self._restore_path, self._running = self._latest, False

    def _local_copy(self, path: str) -> str:
        """Rank 0's checkpoint directory as a path this process can read: the path itself
        on the same host, else its files unpacked from the worker into a temporary folder."""
        if self.group.where[0]["hostname"] == socket.gethostname() and os.path.isdir(path):
            return path
        folder = tempfile.mkdtemp(prefix="skate-train-ckpt-")
        with tarfile.open(fileobj=io.BytesIO(self.group.read_checkpoint(0, path))) as tar:
            tar.extractall(folder, filter="data")
        return folder

    def save(self, checkpoint_dir=None):
        # the loop saves only when it reports a checkpoint: hand back the latest
        return self._latest

    def restore(self, checkpoint_path) -> None:
        path = checkpoint_path.path if isinstance(checkpoint_path, Checkpoint) else checkpoint_path
        self._restore_path = self._latest = path
        meta = Checkpoint(path).get_metadata()
        self._iteration = meta.get("iteration", 0)
        self._time_total = meta.get("time_total_s", 0.0)

    def cleanup(self) -> None:
        group = getattr(self, "group", None)
        if group is not None:
            group.shutdown()
        from skate.util import remove_placement_group

        for pg in getattr(self, "_extra_groups", []):
            remove_placement_group(pg)

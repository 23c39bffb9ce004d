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
        self.group = WorkerGroup(_scaling(trainer, config), trainer.torch_config)
        self.group.start(get_current_placement_group())
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
        return metrics

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

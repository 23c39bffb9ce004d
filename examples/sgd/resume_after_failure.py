"""A worker is killed (kill -9) mid-training: the group restarts from the latest
checkpoint and finishes; then a failed run is continued with TorchTrainer.restore.

Run: python examples/sgd/resume_after_failure.py
"""

import json
import os
import signal
import tempfile

import skate
from skate import train
from skate.train.torch import TorchTrainer


def train_loop(config):
    start = 0
    checkpoint = train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            start = json.load(open(os.path.join(d, "state.json")))["epoch"] + 1
    for epoch in range(start, config["epochs"]):
        if epoch == config.get("die_at") and checkpoint is None:
            if train.get_context().get_world_rank() == 1:
                os.kill(os.getpid(), signal.SIGKILL)  # rank 1 dies; rank 0 is stopped
        if epoch == config.get("fail_at"):
            raise RuntimeError(f"out of memory at epoch {epoch}")
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "state.json"), "w") as f:
                json.dump({"epoch": epoch}, f)
            train.report({"epoch": epoch, "resumed_from": start},
                         checkpoint=train.Checkpoint.from_directory(d))


def main():
    skate.init(num_cpus=2)
    storage = tempfile.mkdtemp()
    result = TorchTrainer(
        train_loop, train_loop_config={"epochs": 5, "die_at": 2},
        scaling_config=train.ScalingConfig(num_workers=2),
        run_config=train.RunConfig(storage_path=storage, name="survives", verbose=0,
                                   failure_config=train.FailureConfig(max_failures=2)),
    ).fit()
    print(f"killed worker: finished epoch {result.metrics['epoch']}, the restarted group "
          f"resumed from epoch {result.metrics['resumed_from']}")

    failed = TorchTrainer(
        train_loop, train_loop_config={"epochs": 5, "fail_at": 3},
        scaling_config=train.ScalingConfig(num_workers=2),
        run_config=train.RunConfig(storage_path=storage, name="fails", verbose=0)).fit()
    print("failed run:", str(failed.error).splitlines()[0][:80])
    path = os.path.join(storage, "fails")
    again = TorchTrainer.restore(path, train_loop_config={"epochs": 5}).fit()
    print(f"restored: finished epoch {again.metrics['epoch']}, resumed from epoch "
          f"{again.metrics['resumed_from']}")
    skate.shutdown()


if __name__ == "__main__":
    main()

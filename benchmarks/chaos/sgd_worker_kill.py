"""Data-parallel training with a worker kill -9'd mid-epoch: it resumes from the last
checkpoint and ends on the same loss curve as a run nobody killed.

    python benchmarks/chaos/sgd_worker_kill.py [--epochs 8] [--kill-epoch 4] [--workers 2]

Two ``TorchTrainer`` runs of the same seeded model (an MLP regressing a fixed random
linear map, DistributedDataParallel over ``--workers`` processes, a checkpoint of the
model and optimizer every epoch): one quiet, one in which rank 1 kills itself
(SIGKILL) half way through epoch ``--kill-epoch`` (first attempt only). The killed
run's group is restarted from the checkpoint of the epoch before (``FailureConfig``).
Checked: both runs finish every epoch, the killed one resumed from that checkpoint,
and its per-epoch losses equal the quiet run's (to 1e-6 relative: the same data in the
same order from the same state; the epoch in flight is simply redone). Printed: both
curves, the resume point, the seconds of each run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


def train_loop(config):
    import signal

    import torch

    from skate import train
    from skate.train.torch import prepare_model

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4096, 16, generator=gen)
    y = x @ torch.randn(16, 1, generator=gen)
    rank, world = train.get_context().get_world_rank(), train.get_context().get_world_size()
    xs, ys = x[rank::world], y[rank::world]
    model = prepare_model(torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(),
                                              torch.nn.Linear(32, 1)))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    start, resumed_from = 0, None
    ckpt = train.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            state = torch.load(os.path.join(d, "state.pt"))
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = resumed_from = state["epoch"] + 1
    for epoch in range(start, config["epochs"]):
        total = 0.0
        for i in range(0, len(xs), 64):
            if (epoch == config["kill_epoch"] and ckpt is None and rank == 1
                    and i >= len(xs) // 2):
                os.kill(os.getpid(), signal.SIGKILL)  # half way through the epoch
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(xs[i:i + 64]), ys[i:i + 64])
            loss.backward()
            opt.step()
            total += loss.item() * len(xs[i:i + 64])
        with tempfile.TemporaryDirectory() as d:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch},
                       os.path.join(d, "state.pt"))
            train.report({"epoch": epoch, "loss": total / len(xs),
                          "resumed_from": resumed_from},
                         checkpoint=train.Checkpoint.from_directory(d))


def fit(epochs: int, kill_epoch: int, workers: int) -> dict:
    from skate import train
    from skate.train.torch import TorchTrainer

    t0 = time.perf_counter()
    result = TorchTrainer(
        train_loop, train_loop_config={"epochs": epochs, "kill_epoch": kill_epoch},
        scaling_config=train.ScalingConfig(num_workers=workers),
        run_config=train.RunConfig(storage_path=tempfile.mkdtemp(), name="run", verbose=0,
                                   failure_config=train.FailureConfig(max_failures=2)),
    ).fit()
    df = result.metrics_dataframe
    curve = {int(e): float(v) for e, v in zip(df["epoch"], df["loss"])}  # last report wins
    return {"seconds": round(time.perf_counter() - t0, 1), "error": str(result.error)[:300]
            if result.error else None, "losses": [curve.get(e) for e in range(epochs)],
            "resumed_from": result.metrics.get("resumed_from")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--kill-epoch", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    import skate

    skate.init(num_cpus=args.workers)
    try:
        quiet = fit(args.epochs, -1, args.workers)
        killed = fit(args.epochs, args.kill_epoch, args.workers)
    finally:
        skate.shutdown()
    failures = []
    if quiet["error"] or killed["error"]:
        failures.append(f"a run failed: {quiet['error'] or killed['error']}")
    if killed["resumed_from"] != args.kill_epoch:
        failures.append(f"resumed from {killed['resumed_from']}, not {args.kill_epoch}")
    for e, (a, b) in enumerate(zip(quiet["losses"], killed["losses"])):
        if a is None or b is None or abs(a - b) > 1e-6 * max(abs(a), 1e-12):
            failures.append(f"epoch {e}: loss {b} after the kill, {a} without")
    print(json.dumps({"date": time.strftime("%Y-%m-%d"), "quiet": quiet, "killed": killed,
                      "failures": failures}, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""One measured data-parallel run (started by ddp_epoch.py through child_runs.run_child).

    python _ddp_child.py --system skate|ray|torchrun --model mlp|cnn --epochs N \
        --workers W --cap S --torch-threads T --t0 UNIX_TIME

Every system trains the same model on the same synthetic data with the same
per-worker batch, each worker on its rows (rank, rank + W, ...), torch's
DistributedDataParallel over gloo, one torch thread per worker; the epoch
loop below is the same code in all three. Rank 0 times each epoch, the start
of the loop and the end of the first optimizer step (after the loop has made its
data and model). Skate and Ray run the loop through their TorchTrainer
(``fit()`` timed from the call); torchrun runs this file again as its worker
script (``--system torchrun-worker``). Rank 0 writes one JSON line per epoch to
``--out``; this process prints them as ``POINT`` lines and a ``DONE`` line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time


def make_model(kind: str):
    import torch

    if kind == "mlp":
        return torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                   torch.nn.Linear(256, 256), torch.nn.ReLU(),
                                   torch.nn.Linear(256, 10))
    return torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.MaxPool2d(2), torch.nn.Conv2d(16, 32, 3, padding=1),
                               torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                               torch.nn.Linear(32 * 7 * 7, 10))


def epoch_loop(cfg: dict, rank: int, world: int, wrap, report) -> None:
    """The training every system runs: ``wrap(model)`` makes it data-parallel,
    ``report(epoch, metrics)`` is called after every epoch on every rank."""
    import torch

    loop_start = time.time()
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    n = cfg["samples"]
    x = torch.randn(n, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    x, y = x[rank::world], y[rank::world]
    if cfg["model"] == "mlp":
        x = x.reshape(len(x), -1)
    model = wrap(make_model(cfg["model"]))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    b = cfg["batch"]
    first_step = None
    for epoch in range(cfg["epochs"]):
        began = time.perf_counter()
        for start in range(0, len(x) - b + 1, b):
            loss = torch.nn.functional.cross_entropy(model(x[start:start + b]),
                                                     y[start:start + b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if first_step is None:
                first_step = time.time()
        report(epoch, {"epoch": epoch, "epoch_s": time.perf_counter() - began,
                       "loss": float(loss), "first_step_at": first_step,
                       "loop_start_at": loop_start,
                       "threads": torch.get_num_threads()})


def _writer(path: str, rank: int):
    def write(epoch, metrics):
        if rank == 0:
            with open(path, "a") as f:
                f.write(json.dumps(metrics) + "\n")
    return write


def trainer_loop(config: dict) -> None:
    """Skate's and Ray's ``train_loop_per_worker`` (the same source for both)."""
    if config["system"] == "skate":
        from skate import train
        from skate.train.torch import prepare_model
    else:
        from ray import train
        from ray.train.torch import prepare_model
    ctx = train.get_context()
    write = _writer(config["out"], ctx.get_world_rank())

    def report(epoch, metrics):
        write(epoch, metrics)
        train.report({"epoch": epoch})

    epoch_loop(config, ctx.get_world_rank(), ctx.get_world_size(), prepare_model, report)


def run_trainer(a, cfg: dict) -> dict:
    storage = tempfile.mkdtemp(prefix=f"ddp-{a.system}-")
    if a.system == "skate":
        import skate as ray
        from skate import train
        from skate.train.torch import TorchTrainer
    else:
        import ray
        from ray import train
        from ray.train.torch import TorchTrainer
    kwargs = {}
    if a.preload:  # Skate's opt-in: workers forked with torch (and DDP's torch._dynamo) loaded
        kwargs["_system_config"] = {"worker_preload_modules": ["torch", "torch._dynamo"]}
    ray.init(num_cpus=max(2, os.cpu_count() or 1), **kwargs)
    if a.preload:
        wait_warm(ray)
    try:
        # the trainer holds no CPU (Skate's default; Ray Train 2.60's driver reserves none
        # and refuses trainer_resources)
        scaling = train.ScalingConfig(num_workers=a.workers)
        trainer = TorchTrainer(trainer_loop, train_loop_config=cfg, scaling_config=scaling,
                               run_config=train.RunConfig(storage_path=storage, name="bench"))
        fit_at = time.time()
        print("READY", json.dumps({"wall_s": fit_at - a.t0}), flush=True)
        result = trainer.fit()
        return {"fit_at": fit_at, "error": None if result.error is None else str(result.error)}
    finally:
        ray.shutdown()


def wait_warm(ray, timeout_s: float = 60.0) -> None:
    """Until the node's idle workers have torch._dynamo imported (a cluster already up:
    the zygote has imported it and the idle pool is made of workers forked from it)."""
    @ray.remote(num_cpus=0)
    def warm():
        return os.getpid(), "torch._dynamo" in sys.modules

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(loaded for _, loaded in ray.get([warm.remote() for _ in range(4)])):
            return
        time.sleep(0.2)
    raise TimeoutError("the workers never had torch._dynamo loaded")


def torchrun_worker(a, cfg: dict) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    from torch.nn.parallel import DistributedDataParallel

    epoch_loop(cfg, rank, world, DistributedDataParallel, _writer(cfg["out"], rank))
    dist.destroy_process_group()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--system", required=True,
                   choices=["skate", "ray", "torchrun", "torchrun-worker"])
    p.add_argument("--model", default="mlp", choices=["mlp", "cnn"])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--samples", type=int, default=8192)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--out", default=None)
    p.add_argument("--preload", action="store_true",
                   help="skate: workers forked with torch preloaded; fit() on a warm cluster")
    p.add_argument("--cap", type=float, default=600)
    p.add_argument("--torch-threads", type=int, default=0)
    p.add_argument("--t0", type=float, default=None)
    a = p.parse_args()
    a.t0 = a.t0 or time.time()
    out = a.out or tempfile.mktemp(prefix="ddp-epochs-", suffix=".jsonl")
    cfg = {"system": a.system, "model": a.model, "epochs": a.epochs, "samples": a.samples,
           "batch": a.batch, "out": out}
    if a.system == "torchrun-worker":
        return torchrun_worker(a, cfg)
    extra = {}
    if a.system == "torchrun":
        from torch.distributed.run import main as torchrun

        print("READY", json.dumps({"wall_s": time.time() - a.t0}), flush=True)
        extra["fit_at"] = a.t0  # from the process start: torchrun has no fit()
        torchrun([f"--nproc_per_node={a.workers}", "--standalone", os.path.abspath(__file__),
                  "--system", "torchrun-worker", "--model", a.model, "--epochs",
                  str(a.epochs), "--samples", str(a.samples), "--batch", str(a.batch),
                  "--out", out])
    else:
        extra = run_trainer(a, cfg)
    points = [json.loads(line) for line in open(out)] if os.path.exists(out) else []
    for pt in points:
        print("POINT", json.dumps(pt), flush=True)
    first = points[0]["first_step_at"] - extra["fit_at"] if points else None
    loop = points[0]["loop_start_at"] - extra["fit_at"] if points else None
    print("DONE", json.dumps({"epochs": len(points), "first_step_s": first, "loop_start_s": loop,
                              "error": extra.get("error")}), flush=True)
    os.unlink(out) if os.path.exists(out) else None


if __name__ == "__main__":
    sys.exit(main())

"""Seconds per epoch of 2-worker DDP training and time from fit() to the first step:
Skate's TorchTrainer vs torchrun (plain DDP) vs Ray Train 2.60, in one invocation.

    python benchmarks/sgd/ddp_epoch.py
    python benchmarks/sgd/ddp_epoch.py --model cnn --systems skate,torchrun --json /tmp/d.json

Each system runs ``_ddp_child.py`` in a fresh process: the same model, synthetic data,
per-worker batch (64) and epoch loop, gloo DDP, one torch thread per worker; 32768
samples, so an epoch is 256 steps of 64 rows per worker. Reported per system: every
epoch's time on rank 0, the median of epochs 2..N (the first includes warm-up), the
ratio to torchrun's, and the seconds from the ``fit()`` call to the start of the loop
on rank 0 and to the end of its first optimizer step (torchrun: from its process
start, for reference). ``skate-preload``: Skate with
``_system_config={"worker_preload_modules": ["torch", "torch._dynamo"]}``, fit()
called once the node's idle workers are forked from its zygote (a cluster already
up). Skate and torchrun run in this interpreter, Ray in ``--ray-python``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from child_runs import DEFAULT_RAY_PYTHON, run_child  # noqa: E402

SYSTEMS = ("skate", "torchrun", "ray", "skate-preload")
NAMES = {"skate": "Skate TorchTrainer", "torchrun": "torchrun + DDP",
         "ray": "Ray Train 2.60 TorchTrainer",
         "skate-preload": "Skate TorchTrainer, workers preloaded, warm cluster"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--systems", default="skate,torchrun,ray",
                   help=f"comma-separated subset of {','.join(SYSTEMS)}")
    p.add_argument("--model", default="mlp", choices=["mlp", "cnn"])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--samples", type=int, default=32768, help="synthetic samples, all ranks")
    p.add_argument("--repeats", type=int, default=1, help="runs per system, interleaved")
    p.add_argument("--cap", type=float, default=600.0)
    p.add_argument("--skate-python", default=sys.executable)
    p.add_argument("--ray-python", default=DEFAULT_RAY_PYTHON)
    p.add_argument("--json", metavar="OUT")
    args = p.parse_args()
    systems = [s for s in args.systems.split(",") if s]
    if not systems or set(systems) - set(SYSTEMS):
        p.error(f"--systems takes a comma-separated subset of {','.join(SYSTEMS)}")
    if args.epochs < 2:
        p.error("--epochs must be >= 2")

    runs: dict = {s: [] for s in systems}
    for _ in range(args.repeats):
        for s in systems:
            python = args.ray_python if s == "ray" else args.skate_python
            extra = ["--preload"] if s == "skate-preload" else []
            out = run_child(python, ["--system", s.split("-")[0], *extra, "--model",
                                     args.model, "--epochs",
                                     args.epochs, "--workers", args.workers, "--samples",
                                     args.samples], args.cap,
                            label=s, script=os.path.join(HERE, "_ddp_child.py"))
            epochs = [pt["epoch_s"] for pt in out["points"]]
            done = out["done"] or {}
            runs[s].append({"epoch_s": epochs, "first_step_s": done.get("first_step_s"),
                            "loop_start_s": done.get("loop_start_s"),
                            "error": done.get("error"), "leftovers": out["leftovers"],
                            "threads": out["points"][0]["threads"] if out["points"] else None,
                            "tail": None if done and epochs else out["tail"]})
            print(f"# {s}: epochs {[round(e, 2) for e in epochs]}, first step "
                  f"{done.get('first_step_s')}", file=sys.stderr, flush=True)

    def median_epoch(rs):
        xs = [e for r in rs for e in r["epoch_s"][1:]]
        return statistics.median(xs) if xs else None

    base = median_epoch(runs.get("torchrun", [])) if "torchrun" in runs else None
    print(f"\n{args.workers} workers, model {args.model}, {args.epochs} epochs\n")
    print("| system | median s / epoch (epochs 2..N) | every epoch, s | vs torchrun "
          "| fit() to loop start, s | fit() to first step, s | threads per worker |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for s, rs in runs.items():
        med = median_epoch(rs)
        every = "; ".join(", ".join(f"{e:.2f}" for e in r["epoch_s"]) for r in rs)
        ratio = f"{med / base:.3f}" if med and base else "-"
        starts = []
        for key in ("loop_start_s", "first_step_s"):
            xs = [r[key] for r in rs if r[key] is not None]
            starts.append(f"{statistics.median(xs):.2f}" if xs else "-")
        print(f"| {NAMES[s]} | {med:.3f} | {every} | {ratio} | {starts[0]} | {starts[1]} | "
              f"{rs[0]['threads']} |" if med else f"| {NAMES[s]} | failed | - | - | - | - | - |")
        for r in rs:
            if r["error"] or r["tail"]:
                print(f"  {s}: {r['error'] or r['tail'][-500:]}", file=sys.stderr)
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "runs": runs}, f, indent=1)
        print(f"\n(raw runs written to {args.json})")


if __name__ == "__main__":
    main()

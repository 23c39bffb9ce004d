"""Seconds per PPO training iteration with RLlib's default settings: Skate vs RLlib 2.60.

    python benchmarks/rllib/ppo_iteration.py
    python benchmarks/rllib/ppo_iteration.py --iters 4 --systems skate --json /tmp/it.json

Both run ``PPOConfig().environment("CartPole-v1").env_runners(num_env_runners=2)``
with nothing else changed -- RLlib's defaults, which are also Skate's:
train_batch_size 4000, minibatch_size 128, num_epochs 30, lr 5e-5, model fcnet
[256, 256] tanh with a separate value net -- each in its own fresh subprocess
(``init(num_cpus=max(2, CPU count))`` first), Skate in this interpreter, RLlib in
``--ray-python``.  One iteration is ``algo.train()``: sampling 4000 env steps on the 2
env-runner actors plus 30 epochs of 128-sample minibatches on the driver.  Reported:
the median wall time of ``train()`` over iterations 2..N (default N = 6; the first
iteration also warms up the runners), every iteration's time, env steps sampled per
iteration, and the Skate / RLlib ratio (below 1: Skate is faster).
"""

from __future__ import annotations

import argparse
import statistics
import sys

from _harness import (
    add_common_args,
    conditions,
    fmt,
    parse_systems,
    python_for,
    run_child,
    write_json,
)

SYSTEMS = ("skate", "rllib")


def one_run(system: str, args) -> dict:
    out = run_child(python_for(system, args), ["--system", system, "--task", "iter",
                                               "--seed", args.seed, "--iters", args.iters],
                    args.cap, label=f"{system} iterations", torch_threads=args.torch_threads)
    pts = out["points"]
    timed = [p["iter_s"] for p in pts if p["iter"] >= 2]
    return {"system": system, "iter_s": [p["iter_s"] for p in pts],
            "median_s": statistics.median(timed) if timed else None,
            "steps_per_iter": [p["steps"] - (pts[i - 1]["steps"] if i else 0)
                               for i, p in enumerate(pts)],
            "returns": [p["ret"] for p in pts],
            "curve": [[p["steps"], p["wall_s"], p["ret"]] for p in pts],
            "startup_s": (out["ready"] or {}).get("wall_s"),
            "torch_threads": (out["ready"] or {}).get("torch_threads"),
            "loadavg_before": out["loadavg_before"], "config": out["ready"],
            "complete": len(pts) >= args.iters, "leftovers": out["leftovers"],
            "tail": None if out["done"] else out["tail"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--systems", default="skate,rllib")
    p.add_argument("--iters", type=int, default=6, help="iterations per run (median of 2..N)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cap", type=float, default=600.0, help="per run, s")
    add_common_args(p)
    args = p.parse_args()
    systems = parse_systems(p, args, SYSTEMS)
    if args.iters < 2:
        p.error("--iters must be >= 2")

    runs = {}
    for system in systems:
        r = runs[system] = one_run(system, args)
        print(f"# {system}: iterations {[round(x, 2) for x in r['iter_s']]}, "
              f"median {fmt(r['median_s'], 2)} s", file=sys.stderr, flush=True)

    print(f"| system | median s / iteration (iters 2..{args.iters}) | every iteration, s "
          "| env steps / iteration | start-up s |")
    print("|---|---:|---|---|---:|")
    names = {"skate": "Skate PPO", "rllib": "RLlib 2.60 PPO"}
    for s, r in runs.items():
        every = ", ".join(f"{x:.2f}" for x in r["iter_s"]) + ("" if r["complete"] else " (cut)")
        steps = ", ".join(str(n) for n in r["steps_per_iter"])
        print(f"| {names[s]} | {fmt(r['median_s'], 2)} | {every} | {steps} | "
              f"{fmt(r['startup_s'], 2)} |")
    ratio = None
    if all(runs.get(s, {}).get("median_s") for s in SYSTEMS):
        ratio = runs["skate"]["median_s"] / runs["rllib"]["median_s"]
        print(f"\nSkate / RLlib seconds per iteration: {ratio:.2f} "
              f"({1 / ratio:.2f}x {'faster' if ratio < 1 else 'slower'} than RLlib)")
    print(conditions([{"system": s, **r} for s, r in runs.items()]))
    write_json(args.json, {"benchmark": "ppo_iteration", "args": vars(args), "runs": runs,
                           "ratio_skate_over_rllib": ratio})


if __name__ == "__main__":
    main()

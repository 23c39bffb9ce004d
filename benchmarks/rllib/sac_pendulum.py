"""Skate SAC against SB3's SAC on Pendulum-v1, same settings, same run: wall time of 20k
env steps and the return they reach.

    python benchmarks/rllib/sac_pendulum.py                      # skate and sb3, seed 0
    python benchmarks/rllib/sac_pendulum.py --seeds 0 1 --json /tmp/sac.json

Settings (rl-zoo's for Pendulum, SB3's defaults otherwise) are in ``_child_sac.py``.
Each (system, seed) runs in a fresh subprocess, alternating systems; wall time counts
from process start. The target: a mean return >= -200 (10 greedy episodes) after 20k
env steps, in at most SB3's wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics

from _harness import HERE, add_common_args, fmt, parse_systems, python_for, run_child, write_json

SYSTEMS = ("skate", "sb3")
LABEL = {"skate": "Skate SAC", "sb3": "SB3 SAC"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--systems", default="skate,sb3")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--cap", type=float, default=900.0)
    add_common_args(p)
    args = p.parse_args()
    systems = parse_systems(p, args, SYSTEMS)
    runs = []
    for seed in args.seeds:
        for system in systems:
            out = run_child(python_for(system, args),
                            ["--system", system, "--seed", seed, "--steps", args.steps],
                            args.cap, label=f"{system} sac seed {seed}",
                            torch_threads=args.torch_threads,
                            script=os.path.join(HERE, "_child_sac.py"))
            done = out["done"] or {}
            runs.append({"system": system, "seed": seed, "wall_s": done.get("wall_s"),
                         "train_s": done.get("train_s"), "steps": done.get("steps"),
                         "eval_return": done.get("eval_return"),
                         "torch_threads": (out["ready"] or {}).get("torch_threads"),
                         "curve": [[q["steps"], q["wall_s"], q["ret"]] for q in out["points"]],
                         "tail": None if done else out["tail"]})
            r = runs[-1]
            print(f"{LABEL[system]:<10} seed {seed}: {fmt(r['steps'])} steps, "
                  f"{fmt(r['wall_s'])} s from start ({fmt(r['train_s'])} s training), "
                  f"greedy return {fmt(r['eval_return'])}", flush=True)
            if r["tail"]:
                print(r["tail"])
    print()
    print(f"| system | runs | wall s (median) | training s | greedy return after "
          f"{args.steps:,} steps |")
    print("|---|---:|---:|---:|---:|")
    med = {}
    for system in systems:
        rs = [r for r in runs if r["system"] == system and r["wall_s"] is not None]
        if not rs:
            continue
        med[system] = statistics.median(r["wall_s"] for r in rs)
        print(f"| {LABEL[system]} | {len(rs)} | {fmt(med[system])} | "
              f"{fmt(statistics.median(r['train_s'] for r in rs))} | "
              f"{' / '.join(fmt(r['eval_return']) for r in rs)} |")
    if "skate" in med and "sb3" in med:
        print(f"\nSkate's wall time is {med['skate'] / med['sb3']:.2f} of SB3's.")
    write_json(args.json, {"runs": runs})


if __name__ == "__main__":
    main()

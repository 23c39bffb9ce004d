"""IMPALA and APPO on CartPole-v1: env steps per second with 1, 2 and 4 runners, and the
time to a 100-episode mean of 475; Skate beside RLlib 2.60 in the same run.

    python benchmarks/rllib/impala_cartpole.py                          # everything
    python benchmarks/rllib/impala_cartpole.py --systems skate --runners 1 2 4 --seeds 0 1 2

Each measurement is a fresh subprocess (``_child_async.py``: settings there), systems
alternating. Throughput is over ``--seconds`` of ``train()`` after a warm-up
iteration; on 2 cores the curve flattens once runners and learner share the cores.
"""

from __future__ import annotations

import argparse
import os
import statistics

from _harness import HERE, add_common_args, fmt, parse_systems, python_for, run_child, write_json

SYSTEMS = ("skate", "rllib")
CHILD = os.path.join(HERE, "_child_async.py")


def child(system, args, extra, label) -> dict:
    out = run_child(python_for(system, args), ["--system", system, *extra], args.cap,
                    label=label, script=CHILD)
    done = out["done"] or {}
    return {**done, "tail": None if out["done"] else out["tail"],
            "curve": [[q["steps"], q["wall_s"], q["ret"]] for q in out["points"]]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--systems", default="skate,rllib")
    p.add_argument("--algos", nargs="+", default=["APPO", "IMPALA"])
    p.add_argument("--runners", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--solve-systems", default="skate",
                   help="systems timed to the solved return (RLlib's runs take minutes)")
    p.add_argument("--cap", type=float, default=300.0)
    add_common_args(p)
    args = p.parse_args()
    systems = parse_systems(p, args, SYSTEMS)
    solve_systems = [s for s in args.solve_systems.split(",") if s]
    runs: list = []
    print("| algorithm | runners | " + " | ".join(f"{s} env steps/s" for s in systems)
          + " |")
    print("|---|---:|" + "---:|" * len(systems))
    for algo in args.algos:
        for n in args.runners:
            row = []
            for system in systems:
                r = child(system, args, ["--algo", algo, "--task", "throughput", "--runners", n,
                                         "--seconds", args.seconds], f"{system} {algo} x{n}")
                runs.append({"system": system, "algo": algo, "runners": n, "task": "throughput",
                             **r})
                row.append(fmt(r.get("steps_per_s")))
                if r["tail"]:
                    print(r["tail"])
            print(f"| {algo} | {n} | " + " | ".join(row) + " |", flush=True)
    print()
    print("| algorithm | system | seeds | wall s to 475 (each) | median | env steps (each) |")
    print("|---|---|---:|---|---:|---|")
    for algo in args.algos:
        for system in solve_systems:
            rs = []
            for seed in args.seeds:
                r = child(system, args, ["--algo", algo, "--task", "solve", "--runners", 2,
                                         "--seed", seed], f"{system} {algo} solve {seed}")
                runs.append({"system": system, "algo": algo, "seed": seed, "task": "solve", **r})
                rs.append(r)
            walls = [r["wall_s"] if r.get("solved") else float("inf") for r in rs]
            print(f"| {algo} | {system} | {len(rs)} | {' / '.join(fmt(w) for w in walls)} | "
                  f"{fmt(statistics.median(walls))} | "
                  f"{' / '.join(fmt(r.get('steps')) for r in rs)} |", flush=True)
    write_json(args.json, {"runs": runs})


if __name__ == "__main__":
    main()

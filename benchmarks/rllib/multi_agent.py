"""Multi-agent PPO on a two-agent meeting game: Skate beside RLlib 2.60, same settings,
same run; wall time from process start until both policies' mean returns reach 0.5.

    python benchmarks/rllib/multi_agent.py                    # skate and rllib, seeds 0 1 2
    python benchmarks/rllib/multi_agent.py --systems skate --seeds 0 --json /tmp/ma.json

The env and the settings are in ``_child_multi_agent.py``; each (system, seed) is a
fresh subprocess, systems alternating. Each system's own
``env_runners/module_episode_returns_mean/<policy>`` (a window of 100 episodes in both)
is what is compared with the target.
"""

from __future__ import annotations

import argparse
import os
import statistics

from _harness import HERE, add_common_args, fmt, parse_systems, python_for, run_child, write_json

SYSTEMS = ("skate", "rllib")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--systems", default="skate,rllib")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--rllib-envs", type=int, default=8,
                   help="envs per RLlib env runner (8, as Skate's)")
    p.add_argument("--cap", type=float, default=300.0)
    add_common_args(p)
    args = p.parse_args()
    systems = parse_systems(p, args, SYSTEMS)
    runs = []
    for seed in args.seeds:
        for system in systems:
            out = run_child(python_for(system, args),
                            ["--system", system, "--seed", seed, "--rllib-envs",
                             args.rllib_envs], args.cap, label=f"{system} multi-agent {seed}",
                            script=os.path.join(HERE, "_child_multi_agent.py"))
            done = out["done"] or {}
            runs.append({"system": system, "seed": seed, **done,
                         "curve": [[q["steps"], q["wall_s"], q["ret"]] for q in out["points"]],
                         "tail": None if out["done"] else out["tail"]})
            r = runs[-1]
            print(f"{system:<6} seed {seed}: solved {r.get('solved')} in {fmt(r.get('wall_s'))} s"
                  f", {fmt(r.get('steps'))} env steps, per policy {r.get('per_policy')}",
                  flush=True)
            if r["tail"]:
                print(r["tail"])
    print()
    print("| system | seeds | wall s to 0.5 (each) | median | env steps (each) | "
          "env steps/s (median) |")
    print("|---|---:|---|---:|---|---:|")
    for system in systems:
        rs = [r for r in runs if r["system"] == system]
        walls = [r["wall_s"] if r.get("solved") else float("inf") for r in rs]
        rates = [r["steps_per_s"] for r in rs if r.get("steps_per_s")]
        print(f"| {system} | {len(rs)} | {' / '.join(fmt(w) for w in walls)} | "
              f"{fmt(statistics.median(walls))} | "
              f"{' / '.join(fmt(r.get('steps')) for r in rs)} | "
              f"{fmt(statistics.median(rates)) if rates else '-'} |")
    write_json(args.json, {"runs": runs})


if __name__ == "__main__":
    main()

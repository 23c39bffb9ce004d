"""Skate DQN on CartPole-v1: env steps and seconds to a 100-episode mean return >= 400.

    python benchmarks/rllib/dqn_cartpole.py                    # skate and SB3, seeds 0 1 2
    python benchmarks/rllib/dqn_cartpole.py --systems skate --seeds 0 --json /tmp/dqn.json

* skate: ``DQN.default_config_for("CartPole-v1").debugging(seed=s).build()`` (Skate's
  tuned CartPole settings: double + dueling Q, 3-step returns, prioritized replay),
  ``algo.train()`` until ``env_runners/episode_return_mean >= 400`` or 100k env steps;
* sb3 (reference, in ``--ray-python``): SB3 DQN with rl-zoo's CartPole-v1 settings
  (lr 2.3e-3, batch 64, buffer 1e5, learning_starts 1000, gamma 0.99,
  target_update_interval 10, train_freq 256, gradient_steps 128, epsilon 1 -> 0.04
  over the first 8,000 steps as in rl-zoo's 5e4-step schedule, net [256, 256]), the
  same target and step budget, the last 100 Monitor episodes checked every env step.

Each (system, seed) runs in a fresh subprocess with a wall-clock cap (default 300 s);
time counts from process start.  The learning curve (every >= 500 env steps) goes to
``--json`` for plot_curves.py.
"""

from __future__ import annotations

import argparse
import sys

from _harness import (
    add_common_args,
    conditions,
    fmt,
    median_or_inf,
    parse_systems,
    python_for,
    run_child,
    solve_summary,
    write_json,
)

SYSTEMS = ("skate", "sb3")
LABEL = {"skate": "Skate DQN (tuned)", "sb3": "SB3 DQN (rl-zoo)"}


def one_run(system: str, seed: int, args) -> dict:
    out = run_child(python_for(system, args),
                    ["--system", system, "--task", "dqn", "--seed", seed,
                     "--target", args.target, "--max-steps", args.max_steps],
                    args.cap, label=f"{system} dqn seed {seed}",
                    torch_threads=args.torch_threads)
    return solve_summary(system, seed, args.cap, out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--systems", default="skate,sb3", help="comma-separated: skate,sb3")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--target", type=float, default=400.0)
    p.add_argument("--max-steps", type=int, default=100_000)
    p.add_argument("--cap", type=float, default=300.0, help="per run, wall s")
    add_common_args(p)
    args = p.parse_args()
    systems = parse_systems(p, args, SYSTEMS)

    runs = []
    for system in systems:
        for seed in args.seeds:
            r = one_run(system, seed, args)
            runs.append(r)
            print(f"# {system} seed {seed}: solved={r['solved']} wall_s={fmt(r['wall_s'], 2)} "
                  f"steps={r['steps']} final={fmt(r['final_return'])} ({r['reason']})",
                  file=sys.stderr, flush=True)

    print(f"| system | reached {args.target:g} | median env steps | per seed steps "
          "| median s | per seed s |")
    print("|---|---:|---:|---|---:|---|")
    for s in systems:
        rs = [r for r in runs if r["system"] == s]
        steps = [r["steps"] if r["solved"] else None for r in rs]
        per_n = ", ".join(f"{r['seed']}: " + (fmt(r["steps"]) if r["solved"] else
                                              f"not reached ({r['reason']}: "
                                              f"{fmt(r['final_return'])} at {fmt(r['steps'])})")
                          for r in rs)
        per_s = ", ".join(f"{r['seed']}: {fmt(r['wall_s'])}" for r in rs)
        print(f"| {LABEL[s]} | {sum(r['solved'] for r in rs)}/{len(rs)} | "
              f"{fmt(median_or_inf(steps))} | {per_n} | "
              f"{fmt(median_or_inf([r['wall_s'] for r in rs]))} | {per_s} |")
    print(f"\nBudget: {args.max_steps:,} env steps or {args.cap:g} s per run; time from "
          "process start.")
    print(conditions(runs))
    write_json(args.json, {"benchmark": "dqn_cartpole", "args": vars(args), "runs": runs})


if __name__ == "__main__":
    main()

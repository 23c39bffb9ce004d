"""Learning-curve PNGs from the rllib benchmarks' JSON files.

    /work/ray-venv/bin/python benchmarks/rllib/plot_curves.py \
        --ppo /tmp/rllib_cartpole_solve.json --dqn /tmp/rllib_dqn_cartpole.json

Needs matplotlib (any interpreter that has it; the Ray venv does).  For each file given,
one PNG with two panels, the 100-episode mean return against env steps and against
wall seconds from process start, one line per (system, seed), a colour per system, the
target as a dashed line and a dot where a run reached it (RLlib runs also get a dotted
line: RLlib's own ``episode_return_mean``, which averages only recent episodes):

* ``--ppo`` (cartpole_solve.py's JSON) -> ``docs/images/rllib_ppo_cartpole.png``
* ``--dqn`` (dqn_cartpole.py's JSON)  -> ``docs/images/rllib_dqn_cartpole.png``
* ``--impala`` (impala_cartpole.py's JSON) -> ``docs/images/rllib_impala_cartpole.png``:
  env steps/s against runners per (system, algorithm), and the solve runs' curves
* ``--sac`` (sac_pendulum.py's JSON) -> ``docs/images/rllib_sac_pendulum.png``: the mean
  return of the last 10 episodes against env steps and wall seconds, per system
* ``--multi-agent`` (multi_agent.py's JSON) -> ``docs/images/rllib_multi_agent.png``
"""

from __future__ import annotations

import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGES = os.path.join(os.path.dirname(os.path.dirname(HERE)), "docs", "images")
COLOURS = {"skate": "tab:blue", "skate-cli": "tab:purple", "sb3": "tab:orange",
           "rllib": "tab:green"}
NAMES = {("ppo", "skate"): "Skate PPO (tuned, in-process)",
         ("ppo", "skate-cli"): "Skate `rllib train` (its defaults)",
         ("ppo", "sb3"): "SB3 PPO (rl-zoo)",
         ("ppo", "rllib"): "RLlib 2.60 PPO (defaults)", ("dqn", "skate"): "Skate DQN (tuned)",
         ("dqn", "sb3"): "SB3 DQN (rl-zoo)"}


def plot(path: str, kind: str, out: str) -> None:
    with open(path) as f:
        data = json.load(f)
    target = data["args"]["target"]
    runs = data["runs"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    for ax, x_i, xlabel in ((axes[0], 0, "env steps"),
                            (axes[1], 1, "wall seconds from process start")):
        seen = set()
        for r in runs:
            pts = [p for p in r["curve"] if p[2] is not None]
            if not pts:
                continue
            s = r["system"]
            label = None
            if s not in seen:
                n_ok = sum(q["solved"] for q in runs if q["system"] == s)
                n = sum(q["system"] == s for q in runs)
                label = f"{NAMES.get((kind, s), s)}: {n_ok}/{n} seeds reached {target:g}"
                seen.add(s)
            ax.plot([p[x_i] for p in pts], [p[2] for p in pts], color=COLOURS.get(s),
                    lw=1.3, alpha=0.85, label=label)
            if r["solved"]:
                ax.plot(pts[-1][x_i], pts[-1][2], "o", color=COLOURS.get(s), ms=4)
            own = [p for p in r.get("own_curve") or [] if p[2] is not None]
            if own:  # RLlib's own episode_return_mean, for comparison
                ax.plot([p[x_i] for p in own], [p[2] for p in own], color=COLOURS.get(s),
                        lw=1, ls=":", alpha=0.8,
                        label=None if "own" in seen else "RLlib's own episode_return_mean "
                                                          "(window of recent episodes)")
                seen.add("own")
        ax.axhline(target, color="grey", ls="--", lw=1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("mean return, last 100 episodes")
        ax.grid(alpha=0.3)
        ax.set_ylim(0, 520)
    axes[0].legend(loc="lower right", fontsize=8)
    seeds = sorted({r["seed"] for r in runs})
    fig.suptitle(f"CartPole-v1, {kind.upper()}: one line per seed ({', '.join(map(str, seeds))})"
                 f"; target {target:g}")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"wrote {out}")


def plot_impala(path: str, out: str) -> None:
    with open(path) as f:
        runs = json.load(f)["runs"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    styles = {"APPO": "-", "IMPALA": "--"}
    for system in ("skate", "rllib"):
        for algo in ("APPO", "IMPALA"):
            pts = sorted((r["runners"], r["steps_per_s"]) for r in runs
                         if r["task"] == "throughput" and r["system"] == system
                         and r["algo"] == algo and r.get("steps_per_s"))
            name = "Skate" if system == "skate" else "RLlib 2.60"
            if pts:
                left.plot([p[0] for p in pts], [p[1] for p in pts], styles[algo], marker="o",
                          color=COLOURS[system], label=f"{name} {algo}")
    left.set_xlabel("env runners (2 cores)")
    left.set_ylabel("env steps / s")
    left.set_yscale("log")
    left.set_xticks(sorted({r["runners"] for r in runs if r["task"] == "throughput"}))
    left.grid(alpha=0.3, which="both")
    left.legend(fontsize=8)
    left.set_title("CartPole-v1 sampling + learning throughput")
    seen = set()
    for r in runs:
        if r["task"] != "solve":
            continue
        pts = [p for p in r["curve"] if p[2] is not None]
        label = None if r["algo"] in seen else f"Skate {r['algo']}, 2 runners"
        seen.add(r["algo"])
        right.plot([p[1] for p in pts], [p[2] for p in pts], styles[r["algo"]],
                   color="tab:blue" if r["algo"] == "APPO" else "tab:purple", lw=1.2,
                   label=label)
    right.axhline(475, color="grey", ls="--", lw=1)
    right.set_xlabel("wall seconds from process start")
    right.set_ylabel("mean return, last 100 episodes")
    right.set_ylim(0, 520)
    right.grid(alpha=0.3)
    right.legend(fontsize=8, loc="lower right")
    right.set_title("to a 100-episode mean of 475, one line per seed")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"wrote {out}")


def plot_sac(path: str, out: str) -> None:
    names = {"skate": "Skate SAC", "sb3": "SB3 SAC"}
    plot_pair(path, out, names, "mean return, last 10 episodes", -200,
              "Pendulum-v1, SAC with rl-zoo's settings")


def plot_multi_agent(path: str, out: str) -> None:
    names = {"skate": "Skate PPO", "rllib": "RLlib 2.60 PPO"}
    plot_pair(path, out, names, "the lower policy's module_episode_returns_mean", 0.5,
              "Two-agent meeting game, a policy per agent, the same settings")


def plot_pair(path: str, out: str, names: dict, ylabel: str, target: float,
              title: str) -> None:
    """Return against env steps and against wall seconds, a colour per system."""
    with open(path) as f:
        runs = json.load(f)["runs"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    colours = {"skate": "tab:blue", "sb3": "tab:orange", "rllib": "tab:green"}
    for ax, x_i, xlabel in ((axes[0], 0, "env steps"),
                            (axes[1], 1, "wall seconds from process start")):
        seen = set()
        for r in runs:
            pts = [p for p in r["curve"] if p[2] is not None]
            label = None if r["system"] in seen else names[r["system"]]
            seen.add(r["system"])
            ax.plot([p[x_i] for p in pts], [p[2] for p in pts], color=colours[r["system"]],
                    lw=1.2, alpha=0.85, label=label)
        ax.axhline(target, color="grey", ls="--", lw=1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right", fontsize=8)
    seeds = sorted({r["seed"] for r in runs})
    fig.suptitle(f"{title}: one line per seed ({', '.join(map(str, seeds))}); "
                 f"target {target:g}")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"wrote {out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ppo", metavar="JSON", help="cartpole_solve.py --json output")
    p.add_argument("--dqn", metavar="JSON", help="dqn_cartpole.py --json output")
    p.add_argument("--impala", metavar="JSON", help="impala_cartpole.py --json output")
    p.add_argument("--sac", metavar="JSON", help="sac_pendulum.py --json output")
    p.add_argument("--multi-agent", metavar="JSON", help="multi_agent.py --json output")
    p.add_argument("--out-dir", default=IMAGES)
    args = p.parse_args()
    if not (args.ppo or args.dqn or args.impala or args.sac or args.multi_agent):
        p.error("give --ppo, --dqn, --impala, --sac and/or --multi-agent")
    if args.multi_agent:
        plot_multi_agent(args.multi_agent, os.path.join(args.out_dir,
                                                        "rllib_multi_agent.png"))
    if args.impala:
        plot_impala(args.impala, os.path.join(args.out_dir, "rllib_impala_cartpole.png"))
    if args.sac:
        plot_sac(args.sac, os.path.join(args.out_dir, "rllib_sac_pendulum.png"))
    if args.ppo:
        plot(args.ppo, "ppo", os.path.join(args.out_dir, "rllib_ppo_cartpole.png"))
    if args.dqn:
        plot(args.dqn, "dqn", os.path.join(args.out_dir, "rllib_dqn_cartpole.png"))


if __name__ == "__main__":
    main()

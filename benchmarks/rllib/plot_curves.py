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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ppo", metavar="JSON", help="cartpole_solve.py --json output")
    p.add_argument("--dqn", metavar="JSON", help="dqn_cartpole.py --json output")
    p.add_argument("--out-dir", default=IMAGES)
    args = p.parse_args()
    if not (args.ppo or args.dqn):
        p.error("give --ppo and/or --dqn")
    if args.ppo:
        plot(args.ppo, "ppo", os.path.join(args.out_dir, "rllib_ppo_cartpole.png"))
    if args.dqn:
        plot(args.dqn, "dqn", os.path.join(args.out_dir, "rllib_dqn_cartpole.png"))


if __name__ == "__main__":
    main()

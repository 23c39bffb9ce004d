"""PPO on CartPole while an env runner is kill -9'd every 10 s: it still solves it.

    python benchmarks/chaos/rllib_runner_kills.py [--kill-every 10] [--target 450]
        [--deadline 300] [--runners 2]

Trains PPO (2 runners x 4 envs, the settings of benchmarks/rllib) until the
mean episode return reaches ``--target`` or ``--deadline`` passes, first
quiet, then with a killer that ``kill -9``s a random live env runner's
process every ``--kill-every`` seconds (the algorithm replaces runners that
die and goes on). Printed per run: iterations, seconds, env steps, runner
restarts, the best mean return and whether it solved. Exit status 1 if the
chaos run did not solve or no runner was killed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import threading
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import skate  # noqa: E402
from skate.rllib import PPOConfig  # noqa: E402
from skate.util import state  # noqa: E402


def config(runners: int, seed: int):
    return (PPOConfig().environment("CartPole-v1")
            .env_runners(num_env_runners=runners, num_envs_per_env_runner=4)
            .training(lr=3e-4, train_batch_size=2048, minibatch_size=256, num_epochs=10,
                      lambda_=0.95, model={"fcnet_hiddens": [64, 64]})
            .debugging(seed=seed))


def kill_runners(every: float, stop: threading.Event, kills: list, seed: int) -> None:
    rng = random.Random(seed)
    while not stop.wait(every):
        alive = [a for a in state.list_actors(filters=[("state", "=", "ALIVE")], limit=1000)
                 if a.class_name == "EnvRunner" and a.pid]
        if alive:
            try:
                os.kill(rng.choice(alive).pid, signal.SIGKILL)
                kills.append(time.monotonic())
            except ProcessLookupError:
                pass


def train(args, chaos: bool) -> dict:
    algo = config(args.runners, args.seed).build()
    stop, kills = threading.Event(), []
    killer = threading.Thread(target=kill_runners, args=(args.kill_every, stop, kills,
                                                         args.seed), daemon=True)
    t0 = time.monotonic()
    best, it, result = float("-inf"), 0, {}
    if chaos:
        killer.start()
    try:
        while time.monotonic() - t0 < args.deadline:
            result = algo.train()
            it += 1
            ret = result["env_runners"]["episode_return_mean"]
            if ret == ret:  # not NaN
                best = max(best, ret)
            if best >= args.target:
                break
    finally:
        stop.set()
        if chaos:
            killer.join(30)
        algo.stop()
    return {"iterations": it, "seconds": round(time.monotonic() - t0, 1),
            "env_steps": result.get("num_env_steps_sampled_lifetime"),
            "runner_restarts": result.get("num_env_runner_restarts"), "kills": len(kills),
            "best_return": round(best, 1), "solved": best >= args.target}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kill-every", type=float, default=10)
    p.add_argument("--target", type=float, default=450)
    p.add_argument("--deadline", type=float, default=300)
    p.add_argument("--runners", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-quiet", action="store_true")
    args = p.parse_args(argv)
    skate.init(num_cpus=2)
    try:
        quiet = None if args.skip_quiet else train(args, chaos=False)
        chaos = train(args, chaos=True)
    finally:
        skate.shutdown()
    print(json.dumps({"date": time.strftime("%Y-%m-%d"), "target": args.target,
                      "quiet": quiet, "chaos": chaos}, indent=2))
    return 0 if chaos["solved"] and chaos["kills"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""One measured run (started by the benchmark scripts through ``_harness.run_child``).

    python _child.py --system skate|sb3|rllib --task solve|iter|dqn --seed S \
        --cap SECONDS --t0 UNIX_TIME [--target R] [--max-steps N] [--iters N]

Times are ``time.time() - t0``, t0 being taken by the parent just before it started
this process, so they include interpreter start-up, imports and building the
algorithm.  Prints ``READY {json}`` once the algorithm is built, ``POINT {json}``
(env steps, wall s, 100-episode mean return, ...) per iteration / rollout, and
``DONE {json}`` at the end.  Skate runs import only skate; SB3 and RLlib runs import
only their library.  Ray is shut down in ``finally``.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import time

A = None  # the parsed arguments
DONE_EXTRA: dict = {}  # added to the DONE line (RLlib: when its own metric crossed)


def now() -> float:
    return time.time() - A.t0


def emit(kind: str, **d) -> None:
    print(kind, json.dumps(d), flush=True)


def set_threads() -> int:
    """``--torch-threads N``: torch.set_num_threads(N) here, after building; the count."""
    import torch

    if A.torch_threads:
        torch.set_num_threads(A.torch_threads)
    return torch.get_num_threads()


def _num(x):
    x = None if x is None else float(x)
    return None if x is None or math.isnan(x) else x


def train_loop(train, point_every: int = 0) -> None:
    """Call ``train() -> (env steps so far, return mean, extra)`` until solved / cap."""
    i, last_point, reason, steps, ret = 0, -math.inf, "cap", 0, None
    while True:
        t = time.perf_counter()
        steps, ret, extra = train()
        took = time.perf_counter() - t
        i += 1
        ret = _num(ret)
        solved = A.target is not None and ret is not None and ret >= A.target
        over = A.max_steps and steps >= A.max_steps
        if solved or over or steps - last_point >= point_every:
            emit("POINT", iter=i, steps=steps, wall_s=now(), ret=ret, iter_s=took, **extra)
            last_point = steps
        if solved:
            emit("DONE", solved=True, wall_s=now(), steps=steps, ret=ret, iters=i,
                 reason="solved", **DONE_EXTRA)
            return
        if A.iters and i >= A.iters:
            reason = "iters"
            break
        if over:
            reason = "max_steps"
            break
        if now() >= A.cap:
            break
    emit("DONE", solved=False, wall_s=now(), steps=steps, ret=ret, iters=i, reason=reason,
         **DONE_EXTRA)


# ----------------------------------------------------------------------------- skate
def run_skate() -> None:
    import skate
    from skate.rllib import DQN, PPO, PPOConfig

    if A.task == "iter":
        skate.init(num_cpus=max(2, os.cpu_count() or 1))
        cfg = PPOConfig().environment("CartPole-v1").env_runners(num_env_runners=2)
    elif A.task == "solve":
        cfg = PPO.default_config_for("CartPole-v1")
    else:
        cfg = DQN.default_config_for("CartPole-v1")
    algo = cfg.debugging(seed=A.seed).build()  # sets torch threads to CPUs - runners
    emit("READY", wall_s=now(), torch_threads=set_threads(),
         config=json.loads(algo.algo_config.to_json()))

    def train():
        r = algo.train()
        return (r["num_env_steps_sampled_lifetime"], r["env_runners"]["episode_return_mean"],
                {})
    try:
        train_loop(train, point_every=500 if A.task == "dqn" else 0)
    finally:
        algo.stop()
        if A.task == "iter":
            skate.shutdown()


def run_skate_cli() -> None:
    """``rllib train --algo PPO --env CartPole-v1 --seed S`` as a user types it (its
    default config and default stop: the 100-episode mean reaching 475), timed from this
    process's start to the command's exit; the curve is read from the trial's
    progress.csv afterwards (wall times placed back from the exit by the trial's own
    clock)."""
    import csv
    import glob
    import shutil
    import subprocess
    import sys
    import tempfile

    storage = tempfile.mkdtemp(prefix="skate-rllib-bench-")
    rllib = os.path.join(os.path.dirname(sys.executable), "rllib")
    command = [rllib, "train", "--algo", "PPO", "--env", "CartPole-v1", "--seed",
               str(A.seed), "--storage-path", storage]
    emit("READY", wall_s=now(), command=" ".join(command[1:]))
    try:
        try:
            proc = subprocess.run(command, capture_output=True, text=True,
                                  timeout=max(1.0, A.cap - now()))
            rc, reason = proc.returncode, "exited"
        except subprocess.TimeoutExpired:
            rc, reason = None, "cap"
        end = now()
        rows = []
        for path in glob.glob(os.path.join(storage, "*", "*", "progress.csv")):
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
        total = float(rows[-1]["time_total_s"]) if rows else 0.0
        steps, ret = 0, None
        for i, r in enumerate(rows, 1):
            steps = int(float(r["num_env_steps_sampled_lifetime"]))
            ret = _num(r["env_runners/episode_return_mean"] or None)
            emit("POINT", iter=i, steps=steps, wall_s=end - (total - float(r["time_total_s"])),
                 ret=ret, iter_s=float(r["time_this_iter_s"]))
        solved = rc == 0 and ret is not None and ret >= (A.target or 475.0)
        emit("DONE", solved=solved, wall_s=end, steps=steps, ret=ret, iters=len(rows),
             reason="solved" if solved else f"{reason} {rc}")
    finally:
        shutil.rmtree(storage, ignore_errors=True)


# ----------------------------------------------------------------------------- RLlib
def run_rllib() -> None:
    """RLlib PPO, judged on the last 100 finished episodes (RLlib's own
    ``episode_return_mean`` averages a window of recent episodes per env runner, in
    practice about one iteration's worth: ~8 episodes once they last 500 steps).  A
    callback logs every finished episode's return; RLlib's own metric is kept too."""
    import ray
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.callbacks.callbacks import RLlibCallback

    class EpisodeReturns(RLlibCallback):
        def on_episode_end(self, *, episode, prev_episode_chunks=None, metrics_logger=None,
                           **kwargs):
            ret = episode.get_return() + sum(c.get_return() for c in prev_episode_chunks or [])
            metrics_logger.log_value("bench_episode_returns", float(ret), reduce="item_series")

    ray.init(num_cpus=max(2, os.cpu_count() or 1), include_dashboard=False,
             logging_level="ERROR", log_to_driver=False)
    algo = None
    try:
        cfg = (PPOConfig().environment("CartPole-v1").env_runners(num_env_runners=2)
               .debugging(seed=A.seed, log_level="ERROR").callbacks(EpisodeReturns))
        algo = cfg.build_algo() if hasattr(cfg, "build_algo") else cfg.build()
        emit("READY", wall_s=now(), torch_threads=set_threads(), ray=ray.__version__,
             config={k: getattr(cfg, k) for k in (
                 "train_batch_size", "minibatch_size", "num_epochs", "lr", "gamma", "lambda_",
                 "num_env_runners", "num_envs_per_env_runner")},
             model=str(getattr(cfg, "model_config", None)))

        last100: collections.deque = collections.deque(maxlen=100)

        def train():
            r = algo.train()
            er = r.get("env_runners", {})
            steps = int(r.get("num_env_steps_sampled_lifetime")
                        or er.get("num_env_steps_sampled_lifetime") or 0)
            last100.extend(er.get("bench_episode_returns") or [])
            own = _num(er.get("episode_return_mean"))
            if (A.target is not None and own is not None and own >= A.target
                    and "own_metric_wall_s" not in DONE_EXTRA):
                DONE_EXTRA.update(own_metric_wall_s=now(), own_metric_steps=steps)
            mean = sum(last100) / len(last100) if last100 else None
            return steps, mean, {"rllib_episode_return_mean": own}
        train_loop(train)
    finally:
        if algo is not None:
            algo.stop()
        ray.shutdown()


# ----------------------------------------------------------------------------- SB3
def linear(start: float):
    return lambda progress_remaining: progress_remaining * start  # rl-zoo's lin_<start>


def run_sb3() -> None:
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    if A.task == "solve":  # rl-zoo hyperparams/ppo.yml, CartPole-v1
        env = make_vec_env("CartPole-v1", n_envs=8, seed=A.seed)
        model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
                    n_epochs=20, ent_coef=0.0, learning_rate=linear(1e-3),
                    clip_range=linear(0.2), seed=A.seed, device="cpu", verbose=0)
        total, every = 100_000, 0
    else:  # rl-zoo hyperparams/dqn.yml, CartPole-v1 (its 5e4 steps: epsilon over 8,000)
        env = make_vec_env("CartPole-v1", n_envs=1, seed=A.seed)
        total, every = A.max_steps or 100_000, 500
        model = DQN("MlpPolicy", env, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000,
                    learning_starts=1000, gamma=0.99, target_update_interval=10,
                    train_freq=256, gradient_steps=128,
                    exploration_fraction=8000 / total, exploration_final_eps=0.04,
                    policy_kwargs=dict(net_arch=[256, 256]), seed=A.seed, device="cpu",
                    verbose=0)
    emit("READY", wall_s=now(), torch_threads=set_threads(), total_timesteps=total)
    state = {"reason": "max_steps", "last_point": -math.inf}
    returns: collections.deque = collections.deque(maxlen=100)

    def mean():
        return sum(returns) / len(returns) if returns else None

    def point():
        emit("POINT", steps=model.num_timesteps, wall_s=now(), ret=mean())
        state["last_point"] = model.num_timesteps

    class Track(BaseCallback):
        """The last 100 Monitor episode returns; stops at the target or the cap."""

        def _on_step(self) -> bool:
            new = [i["episode"]["r"] for i in self.locals["infos"] if "episode" in i]
            if new:
                returns.extend(float(r) for r in new)
                if A.target is not None and len(returns) and mean() >= A.target:
                    state["reason"] = "solved"
                    return False
            if now() >= A.cap:
                state["reason"] = "cap"
                return False
            return True

        def _on_rollout_end(self) -> None:
            if model.num_timesteps - state["last_point"] >= every:
                point()

    model.learn(total_timesteps=total, callback=Track())
    point()
    emit("DONE", solved=state["reason"] == "solved", wall_s=now(), steps=model.num_timesteps,
         ret=mean(), reason=state["reason"])
    env.close()


def main() -> None:
    global A
    p = argparse.ArgumentParser()
    p.add_argument("--system", choices=("skate", "skate-cli", "sb3", "rllib"), required=True)
    p.add_argument("--task", choices=("solve", "iter", "dqn"), required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cap", type=float, required=True, help="wall seconds from process start")
    p.add_argument("--t0", type=float, required=True, help="time.time() at process start")
    p.add_argument("--target", type=float, default=None)
    p.add_argument("--max-steps", type=int, default=0)
    p.add_argument("--iters", type=int, default=0)
    p.add_argument("--torch-threads", type=int, default=0, help="0: the library's default")
    A = p.parse_args()
    {"skate": run_skate, "skate-cli": run_skate_cli, "sb3": run_sb3,
     "rllib": run_rllib}[A.system]()


if __name__ == "__main__":
    main()

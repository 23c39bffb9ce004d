"""One IMPALA/APPO run on CartPole-v1 for ``impala_cartpole.py``, in Skate's or Ray's
interpreter.

    python _child_async.py --system skate|rllib --algo APPO|IMPALA --runners R \
        --task throughput|solve --seconds S --cap C --t0 T

Both use 8 envs per runner and 32-step fragments. ``throughput``: after one warm-up
``train()``, env steps sampled per second over ``--seconds``; ``solve``: ``train()``
until the mean of the last 100 finished episodes reaches 475 (Skate's tuned settings;
RLlib's defaults for the rest). Prints READY, POINTs and DONE.
"""

from __future__ import annotations

import argparse
import collections
import json
import time

A = None


def now() -> float:
    return time.time() - A.t0


def emit(kind: str, **d) -> None:
    print(kind, json.dumps(d), flush=True)


def measure(train) -> None:
    """Run ``train() -> (steps so far, last-100 mean)`` for the task; emit the outcome."""
    if A.task == "throughput":
        steps0, _ = train()  # warm-up: runners started, first weights out
        t0 = time.perf_counter()
        steps = steps0
        while time.perf_counter() - t0 < A.seconds:
            steps, ret = train()
            emit("POINT", steps=steps, wall_s=now(), ret=ret)
        took = time.perf_counter() - t0
        emit("DONE", steps_per_s=(steps - steps0) / took, steps=steps, wall_s=now(),
             reason="seconds")
        return
    steps, ret = 0, None
    while now() < A.cap:
        steps, ret = train()
        emit("POINT", steps=steps, wall_s=now(), ret=ret)
        if ret is not None and ret >= 475:
            emit("DONE", solved=True, steps=steps, wall_s=now(), ret=ret, reason="solved")
            return
    emit("DONE", solved=False, steps=steps, wall_s=now(), ret=ret, reason="cap")


def run_skate() -> None:
    import skate
    from skate.rllib.registry import algorithm_class

    skate.init(num_cpus=2)
    cls = algorithm_class(A.algo)
    algo = (cls.default_config_for("CartPole-v1").env_runners(num_env_runners=A.runners)
            .debugging(seed=A.seed).build())
    emit("READY", wall_s=now())
    last100: collections.deque = collections.deque(maxlen=100)

    def train():
        r = algo.train()
        last100.extend(ret for ret, _ in list(algo._episodes)[-r["env_runners"]["num_episodes"]:]
                       if r["env_runners"]["num_episodes"])
        return r["num_env_steps_sampled_lifetime"], (sum(last100) / len(last100)
                                                     if len(last100) == 100 else None)
    try:
        measure(train)
    finally:
        algo.stop()
        skate.shutdown()


def run_rllib() -> None:
    import ray
    from ray.rllib.algorithms.appo import APPOConfig
    from ray.rllib.algorithms.impala import IMPALAConfig
    from ray.rllib.callbacks.callbacks import RLlibCallback

    class EpisodeReturns(RLlibCallback):
        def on_episode_end(self, *, episode, prev_episode_chunks=None, metrics_logger=None,
                           **kwargs):
            ret = episode.get_return() + sum(c.get_return() for c in prev_episode_chunks or [])
            metrics_logger.log_value("bench_episode_returns", float(ret), reduce="item_series")

    ray.init(num_cpus=A.runners + 2, include_dashboard=False, logging_level="ERROR",
             log_to_driver=False)
    algo = None
    try:
        cfg = ({"APPO": APPOConfig, "IMPALA": IMPALAConfig}[A.algo]()
               .environment("CartPole-v1")
               .env_runners(num_env_runners=A.runners, num_envs_per_env_runner=8,
                            rollout_fragment_length=32)
               .debugging(seed=A.seed, log_level="ERROR").callbacks(EpisodeReturns))
        algo = cfg.build_algo() if hasattr(cfg, "build_algo") else cfg.build()
        emit("READY", wall_s=now(), ray=ray.__version__)
        last100: collections.deque = collections.deque(maxlen=100)

        def train():
            r = algo.train()
            er = r.get("env_runners", {})
            last100.extend(er.get("bench_episode_returns") or [])
            steps = int(r.get("num_env_steps_sampled_lifetime")
                        or er.get("num_env_steps_sampled_lifetime") or 0)
            return steps, sum(last100) / len(last100) if len(last100) == 100 else None
        measure(train)
    finally:
        if algo is not None:
            algo.stop()
        ray.shutdown()


def main() -> None:
    global A
    p = argparse.ArgumentParser()
    p.add_argument("--system", choices=("skate", "rllib"), required=True)
    p.add_argument("--algo", choices=("APPO", "IMPALA"), required=True)
    p.add_argument("--task", choices=("throughput", "solve"), required=True)
    p.add_argument("--runners", type=int, default=2)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cap", type=float, required=True)
    p.add_argument("--t0", type=float, required=True)
    p.add_argument("--torch-threads", type=int, default=0)
    A = p.parse_args()
    {"skate": run_skate, "rllib": run_rllib}[A.system]()


if __name__ == "__main__":
    main()

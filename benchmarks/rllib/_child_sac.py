"""One SAC run on Pendulum-v1 for ``sac_pendulum.py``, in Skate's or SB3's interpreter.

    python _child_sac.py --system skate|sb3 --seed S --steps 20000 --cap C --t0 T

Both use rl-zoo's Pendulum-v1 settings, SB3's defaults otherwise: learning rate 1e-3
(actor, critic and temperature), 100 uniform random steps, a 1e6 replay buffer, one
update of a 256-row minibatch per env step, tau 0.005, gamma 0.99, the temperature
learned towards -1 (minus the action dimensions), two [256, 256] ReLU Q networks and
a [256, 256] policy. Prints READY, a POINT every 1,000 env steps (the mean of the last
10 training episodes) and DONE with the wall time of the ``--steps`` steps and the
mean return of 10 greedy episodes after them.
"""

from __future__ import annotations

import argparse
import json
import time

A = None


def now() -> float:
    return time.time() - A.t0


def emit(kind: str, **d) -> None:
    print(kind, json.dumps(d), flush=True)


def greedy_return(act, seed: int, episodes: int = 10) -> float:
    import gymnasium as gym
    import numpy as np

    env = gym.make("Pendulum-v1")
    total = []
    for k in range(episodes):
        obs, _ = env.reset(seed=10_000 + seed * 100 + k)
        done, ret = False, 0.0
        while not done:
            obs, r, term, trunc, _ = env.step(act(obs))
            ret += float(r)
            done = term or trunc
        total.append(ret)
    return float(np.mean(total))


def run_skate() -> None:
    import skate
    from skate.rllib.sac import SAC

    skate.init(num_cpus=2)
    algo = SAC.default_config_for("Pendulum-v1").debugging(seed=A.seed).build()
    import torch

    emit("READY", wall_s=now(), torch_threads=torch.get_num_threads())
    t_start = now()
    while True:
        r = algo.train()
        steps = r["num_env_steps_sampled_lifetime"]
        recent = [ret for ret, _ in list(algo._episodes)[-10:]]
        emit("POINT", steps=steps, wall_s=now(), ret=sum(recent) / max(1, len(recent)))
        if steps >= A.steps or now() >= A.cap:
            break
    train_s = now() - t_start
    ret = greedy_return(lambda o: algo.compute_single_action(o), A.seed)
    emit("DONE", steps=steps, wall_s=now(), train_s=train_s, eval_return=ret,
         reason="steps" if steps >= A.steps else "cap")
    algo.stop()
    skate.shutdown()


def run_sb3() -> None:
    import gymnasium as gym
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor

    env = Monitor(gym.make("Pendulum-v1"))
    model = SAC("MlpPolicy", env, learning_rate=1e-3, learning_starts=100, batch_size=256,
                buffer_size=1_000_000, tau=0.005, gamma=0.99, train_freq=1, gradient_steps=1,
                seed=A.seed, device="cpu", verbose=0)
    emit("READY", wall_s=now(), torch_threads=torch.get_num_threads())

    class Points(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % 1000 == 0:
                recent = env.get_episode_rewards()[-10:]
                emit("POINT", steps=self.num_timesteps, wall_s=now(),
                     ret=sum(recent) / max(1, len(recent)))
            return now() < A.cap

    t_start = now()
    model.learn(total_timesteps=A.steps, callback=Points())
    train_s = now() - t_start
    ret = greedy_return(lambda o: model.predict(o, deterministic=True)[0], A.seed)
    emit("DONE", steps=model.num_timesteps, wall_s=now(), train_s=train_s, eval_return=ret,
         reason="steps" if model.num_timesteps >= A.steps else "cap")


def main() -> None:
    global A
    p = argparse.ArgumentParser()
    p.add_argument("--system", choices=("skate", "sb3"), required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--cap", type=float, required=True)
    p.add_argument("--t0", type=float, required=True)
    p.add_argument("--torch-threads", type=int, default=0)
    A = p.parse_args()
    if A.torch_threads:
        import torch

        torch.set_num_threads(A.torch_threads)
    {"skate": run_skate, "sb3": run_sb3}[A.system]()


if __name__ == "__main__":
    main()

"""One multi-agent PPO run for ``multi_agent.py``, in Skate's or Ray's interpreter.

    python _child_multi_agent.py --system skate|rllib --cap C --t0 T [--seed S]

The env is examples/rllib/multi_agent.py's ``Rendezvous`` (two agents on a line of 9
cells; -0.1 a step each until they meet, then +1 each; cut off at 20 steps), written
again here on each library's own ``MultiAgentEnv``. Two policies, "left" and "right",
one per agent; the same PPO settings for both systems: 1 env runner x 8 envs (RLlib:
as many as its multi-agent runner takes), train batch 800, minibatch 200, 5 epochs,
lr 3e-3, gamma 0.95, [256, 256] tanh (both defaults). ``train()`` until both policies'
own ``module_episode_returns_mean`` reach 0.5 (the best possible is 0.7), up to the cap.
Prints READY, POINTs and DONE.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

A = None
CELLS, MAX_STEPS, TARGET = 9, 20, 0.5


def now() -> float:
    return time.time() - A.t0


def emit(kind: str, **d) -> None:
    print(kind, json.dumps(d), flush=True)


def rendezvous(base):
    import gymnasium as gym

    class Rendezvous(base):
        def __init__(self, config=None):
            super().__init__()
            self.possible_agents = ["left", "right"]
            self.agents = list(self.possible_agents)
            box = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
            self.observation_spaces = {a: box for a in self.possible_agents}
            self.action_spaces = {a: gym.spaces.Discrete(3) for a in self.possible_agents}

        def _obs(self):
            left, right = self.pos["left"] / (CELLS - 1), self.pos["right"] / (CELLS - 1)
            return {"left": np.array([left, right], np.float32),
                    "right": np.array([right, left], np.float32)}

        def reset(self, *, seed=None, options=None):
            self.pos, self.t = {"left": 0, "right": CELLS - 1}, 0
            return self._obs(), {}

        def step(self, actions):
            for agent, move in actions.items():
                self.pos[agent] = int(np.clip(self.pos[agent] + int(move) - 1, 0, CELLS - 1))
            self.t += 1
            met = self.pos["left"] == self.pos["right"]
            reward = 1.0 if met else -0.1
            return (self._obs(), {a: reward for a in self.possible_agents}, {"__all__": met},
                    {"__all__": self.t >= MAX_STEPS and not met}, {})

    return Rendezvous


def measure(train) -> None:
    steps, rets = 0, {}
    t_first = None
    while now() < A.cap:
        steps, rets = train()
        if t_first is None:
            t_first = (now(), steps)
        emit("POINT", steps=steps, wall_s=now(), ret=min(rets.values()) if rets else None,
             per_policy=rets)
        if rets and min(rets.values()) >= TARGET:
            emit("DONE", solved=True, steps=steps, wall_s=now(), per_policy=rets,
                 steps_per_s=(steps - t_first[1]) / max(1e-9, now() - t_first[0]))
            return
    emit("DONE", solved=False, steps=steps, wall_s=now(), per_policy=rets)


def run_skate() -> None:
    import skate
    from skate.rllib import MultiAgentEnv, PPOConfig

    skate.init(num_cpus=2)
    algo = (PPOConfig().environment(rendezvous(MultiAgentEnv))
            .env_runners(num_env_runners=1, num_envs_per_env_runner=8)
            .training(train_batch_size=800, lr=3e-3, num_epochs=5, minibatch_size=200,
                      gamma=0.95)
            .multi_agent(policies={"left", "right"},
                         policy_mapping_fn=lambda agent_id, episode, **kw: agent_id)
            .debugging(seed=A.seed).build())
    emit("READY", wall_s=now())

    def train():
        r = algo.train()
        return (r["num_env_steps_sampled_lifetime"],
                r["env_runners"].get("module_episode_returns_mean", {}))
    try:
        measure(train)
    finally:
        algo.stop()
        skate.shutdown()


def run_rllib() -> None:
    import ray
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.env.multi_agent_env import MultiAgentEnv

    ray.init(num_cpus=3, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    algo = None
    try:
        cfg = (PPOConfig().environment(rendezvous(MultiAgentEnv))
               .env_runners(num_env_runners=1, num_envs_per_env_runner=A.rllib_envs)
               .training(train_batch_size_per_learner=800, lr=3e-3, num_epochs=5,
                         minibatch_size=200, gamma=0.95)
               .multi_agent(policies={"left", "right"},
                            policy_mapping_fn=lambda agent_id, episode, **kw: agent_id)
               .debugging(seed=A.seed, log_level="ERROR"))
        algo = cfg.build_algo() if hasattr(cfg, "build_algo") else cfg.build()
        emit("READY", wall_s=now(), ray=ray.__version__)

        def train():
            r = algo.train()
            er = r.get("env_runners", {})
            steps = int(r.get("num_env_steps_sampled_lifetime")
                        or er.get("num_env_steps_sampled_lifetime") or 0)
            rets = {k: float(v) for k, v in (er.get("module_episode_returns_mean") or {}).items()}
            return steps, rets
        measure(train)
    finally:
        if algo is not None:
            algo.stop()
        ray.shutdown()


def main() -> None:
    global A
    p = argparse.ArgumentParser()
    p.add_argument("--system", choices=("skate", "rllib"), required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rllib-envs", type=int, default=8)
    p.add_argument("--cap", type=float, required=True)
    p.add_argument("--t0", type=float, required=True)
    p.add_argument("--torch-threads", type=int, default=0)
    A = p.parse_args()
    {"skate": run_skate, "rllib": run_rllib}[A.system]()


if __name__ == "__main__":
    main()

"""Two agents, two policies: a cooperative meeting game written here, trained with PPO.

``Rendezvous``: two agents start at the ends of a line of 9 cells and each step move
left, stay or move right. Both pay 0.1 per step until they stand on the same cell,
then both get 1 and the episode ends (or it is cut off after 20 steps). The left agent
is trained by policy "left", the right one by "right"; each policy's mean return is in
``env_runners/module_episode_returns_mean/<policy>``.

Run: python examples/rllib/multi_agent.py
"""

import gymnasium as gym
import numpy as np

import skate
from skate.rllib import MultiAgentEnv, PPOConfig

CELLS, MAX_STEPS = 9, 20


class Rendezvous(MultiAgentEnv):
    def __init__(self, config=None):
        self.possible_agents = ["left", "right"]
        # each agent sees its own cell and the other's, scaled to [0, 1]
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


def main():
    skate.init(num_cpus=2)
    algo = (PPOConfig().environment(Rendezvous)
            .env_runners(num_env_runners=1, num_envs_per_env_runner=8)
            .training(train_batch_size=800, lr=3e-3, num_epochs=5, minibatch_size=200,
                      gamma=0.95)
            .multi_agent(policies={"left", "right"},
                         policy_mapping_fn=lambda agent_id, episode, **kw: agent_id)
            .debugging(seed=0).build())
    for i in range(12):
        result = algo.train()
        per_policy = result["env_runners"]["module_episode_returns_mean"]
        print(f"iteration {i}: episode length {result['env_runners']['episode_len_mean']:.1f}, "
              + ", ".join(f"{p} {r:+.2f}" for p, r in per_policy.items()))
    algo.stop()
    skate.shutdown()


if __name__ == "__main__":
    main()

"""DQN on CartPole: prioritized replay, double + dueling Q, 3-step returns.

Run: python examples/rllib/dqn_cartpole.py
"""

import time

import skate
from skate.rllib import DQN


def main():
    skate.init(num_cpus=2)
    algo = DQN.default_config_for("CartPole-v1").debugging(seed=0).build()
    t0 = time.perf_counter()
    while algo.steps_lifetime < 15_000:
        result = algo.train()
    runners, learner = result["env_runners"], result["learners"]["default_policy"]
    print(f"{algo.steps_lifetime} env steps in {time.perf_counter() - t0:.0f} s: mean return "
          f"{runners['episode_return_mean']:.1f}, epsilon {learner['epsilon']:.2f}, "
          f"replay buffer {learner['replay_buffer_size']}")
    algo.stop()
    skate.shutdown()


if __name__ == "__main__":
    main()

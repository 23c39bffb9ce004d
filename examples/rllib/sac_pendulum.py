"""SAC on Pendulum: a squashed Gaussian policy, twin Q networks, a learned temperature.

A short run here (3,000 env steps, ~30 s on 2 cores); about 20,000 steps bring the
greedy return above -200 (see docs/performance.md#rllib).

Run: python examples/rllib/sac_pendulum.py
"""

import time

import skate
from skate.rllib import SACConfig


def main():
    skate.init(num_cpus=2)
    algo = (SACConfig().environment("Pendulum-v1")
            .training(actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3,
                      num_steps_sampled_before_learning_starts=100,
                      min_sample_timesteps_per_iteration=1000,
                      model={"fcnet_hiddens": [64, 64], "fcnet_activation": "relu"})
            .debugging(seed=0).build())
    t0 = time.perf_counter()
    for _ in range(3):
        result = algo.train()
    learner = result["learners"]["default_policy"]
    print(f"{result['num_env_steps_sampled_lifetime']} env steps in "
          f"{time.perf_counter() - t0:.0f} s: mean return "
          f"{result['env_runners']['episode_return_mean']:.0f}, alpha "
          f"{learner['alpha_value']:.3f}, action for the upright state "
          f"{algo.compute_single_action([1.0, 0.0, 0.0])}")
    algo.stop()
    skate.shutdown()


if __name__ == "__main__":
    main()

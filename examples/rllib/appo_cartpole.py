"""APPO on CartPole: two env runners sample without pause while the learner trains.

Batches go from the runners to the learner through the object store; the learner's
weights go back as refs, and a batch more than ``max_staleness`` updates old is dropped.

Run: python examples/rllib/appo_cartpole.py
"""

import time

import skate
from skate.rllib import APPO


def main():
    skate.init(num_cpus=2)
    algo = (APPO.default_config_for("CartPole-v1")  # 2 runners x 8 envs, 32-step fragments
            .learners(num_learners=1)  # the learner in its own process
            .debugging(seed=0).build())
    t0 = time.perf_counter()
    for _ in range(8):
        result = algo.train()
    learner = result["learners"]["default_policy"]
    print(f"{result['num_env_steps_sampled_lifetime']} env steps in "
          f"{time.perf_counter() - t0:.1f} s ({result['weights_version']} updates): mean return "
          f"{result['env_runners']['episode_return_mean']:.1f}, staleness "
          f"<= {learner['max_staleness']} updates, {result['num_batches_dropped_stale']} "
          f"batches dropped as too stale")
    algo.stop()
    skate.shutdown()


if __name__ == "__main__":
    main()

"""PPO on CartPole with RLlib's config builder, env runners as actors.

Run: python examples/rllib/ppo_cartpole.py
"""

import skate
from skate.rllib import PPOConfig


def main():
    skate.init(num_cpus=2)
    config = (PPOConfig()
              .environment("CartPole-v1")
              .env_runners(num_env_runners=2, num_envs_per_env_runner=8)
              .training(lr=1e-3, gamma=0.98, lambda_=0.8, clip_param=0.2, num_epochs=10,
                        minibatch_size=256, train_batch_size=1024,
                        model={"fcnet_hiddens": [64, 64]})
              .debugging(seed=0))
    algo = config.build()
    for _ in range(25):
        result = algo.train()
        runners = result["env_runners"]
        print(f"iter {result['training_iteration']:2d}  return "
              f"{runners['episode_return_mean']:6.1f}  steps "
              f"{result['num_env_steps_sampled_lifetime']}")
    print("greedy action for an upright pole:", algo.compute_single_action([0, 0, 0.01, 0]))
    algo.stop()
    skate.shutdown()


if __name__ == "__main__":
    main()

"""PPO with two data-parallel learner actors (DistributedDataParallel over gloo): each
trains on half of every minibatch and the gradients are averaged.

Run: python examples/rllib/two_learners.py
"""

import skate
from skate.rllib import PPOConfig


def main():
    skate.init(num_cpus=2)
    algo = (PPOConfig()
            .environment("CartPole-v1")
            .env_runners(num_env_runners=0, num_envs_per_env_runner=16)
            .training(lr=1e-3, gamma=0.98, lambda_=0.8, train_batch_size=1024,
                      minibatch_size=256, num_epochs=10, use_kl_loss=False,
                      model={"fcnet_hiddens": [64, 64]})
            .learners(num_learners=2)
            .debugging(seed=0)
            .build())
    for _ in range(8):
        result = algo.train()
    print(f"{result['training_iteration']} iterations on 2 learners: mean return "
          f"{result['env_runners/episode_return_mean']:.1f}, policy loss "
          f"{result['learners/default_policy/policy_loss']:.4f}")
    algo.stop()
    skate.shutdown()


if __name__ == "__main__":
    main()

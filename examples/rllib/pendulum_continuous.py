"""PPO with continuous (Gaussian) actions on Pendulum-v1, observations normalized, and an
evaluation every 5 iterations on two evaluation runner actors.

Run: python examples/rllib/pendulum_continuous.py
"""

import skate
from skate.rllib import PPOConfig


def main():
    skate.init(num_cpus=2)
    algo = (PPOConfig()
            .environment("Pendulum-v1", normalize_observations=True)
            .env_runners(num_env_runners=0, num_envs_per_env_runner=8)
            .training(lr=1e-3, gamma=0.9, lambda_=0.95, train_batch_size=2048,
                      minibatch_size=256, num_epochs=10, use_kl_loss=False,
                      model={"fcnet_hiddens": [64, 64]})
            .evaluation(evaluation_interval=5, evaluation_duration=4,
                        evaluation_num_env_runners=2)
            .debugging(seed=0)
            .build())
    for _ in range(10):
        result = algo.train()
        line = (f"iteration {result['training_iteration']:2d}: mean return "
                f"{result['env_runners/episode_return_mean']:8.1f}")
        if "evaluation" in result:
            line += f"   evaluation {result['evaluation/env_runners/episode_return_mean']:8.1f}"
        print(line)
    std = algo.get_module().log_std.detach().exp()
    print(f"action std now {std.tolist()}; observation mean {algo.obs_filter.mean.round(2)}")
    algo.stop()
    skate.shutdown()


if __name__ == "__main__":
    main()

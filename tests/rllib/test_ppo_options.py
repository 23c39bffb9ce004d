"""PPO's options end to end: continuous actions learn, evaluation runs on its own runners
every N iterations (and survives one being killed), observation normalization counts
every observation and travels in checkpoints, and a format-1 checkpoint still loads."""

import json
import os
import signal

import gymnasium as gym
import numpy as np
import pytest
import torch

import skate
from skate.rllib import Algorithm, PPOConfig
from tests.conftest import _start_cluster

pytestmark = pytest.mark.skate_only


@pytest.fixture
def cluster():
    return _start_cluster(num_cpus=2)


class MatchTarget(gym.Env):
    """Continuous control in one step: the reward is -(action - target)^2 for a target
    in the observation; a uniform-ish random policy scores about -1.3 per step."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)

    def __init__(self, config=None):
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.target = self.np_random.uniform(-1, 1, (1,)).astype(np.float32)
        return self.target, {}

    def step(self, action):
        reward = -float((action[0] - self.target[0]) ** 2)
        self.t += 1
        self.target = self.np_random.uniform(-1, 1, (1,)).astype(np.float32)
        return self.target, reward, False, self.t >= 10, {}


def test_continuous_actions_learn_a_gaussian_policy(cluster):
    algo = (PPOConfig().environment(MatchTarget)
            .env_runners(num_env_runners=0, num_envs_per_env_runner=8)
            .training(lr=3e-3, train_batch_size=1024, minibatch_size=256, num_epochs=10,
                      gamma=0.0, lambda_=1.0, model={"fcnet_hiddens": [32]})
            .debugging(seed=0).build())
    try:
        first = algo.train()["env_runners"]["episode_return_mean"]
        best = first
        for _ in range(30):
            best = max(best, algo.train()["env_runners"]["episode_return_mean"])
            if best > -1.5:
                break
        assert first < -5 and best > -1.5, (first, best)
        assert float(algo.get_module().log_std.detach()[0]) < 0  # exploration narrowed
        act = algo.compute_single_action(np.array([0.5], np.float32))
        assert act.shape == (1,) and abs(float(act[0]) - 0.5) < 0.4
    finally:
        algo.stop()


def test_evaluation_every_n_iterations_on_its_own_runners(cluster):
    algo = (PPOConfig().environment("CartPole-v1")
            .env_runners(num_env_runners=0, num_envs_per_env_runner=4)
            .training(train_batch_size=256, num_epochs=1, model={"fcnet_hiddens": [16]})
            .evaluation(evaluation_interval=2, evaluation_duration=5,
                        evaluation_num_env_runners=2).build())
    try:
        assert "evaluation" not in algo.train()
        second = algo.train()
        assert second["evaluation"]["env_runners"]["num_episodes"] == 5
        assert second["evaluation/env_runners/episode_return_mean"] == \
            second["evaluation"]["env_runners"]["episode_return_mean"]
        os.kill(skate.get(algo.eval_runners[1].pid.remote()), signal.SIGKILL)
        algo.train()
        assert algo.train()["evaluation"]["env_runners"]["num_episodes"] == 5
    finally:
        algo.stop()
    with pytest.raises(ValueError, match="evaluation_interval must be"):
        PPOConfig().evaluation(evaluation_interval="often")


def test_observation_normalization_counts_every_observation_and_is_checkpointed(
        cluster, tmp_path):
    algo = (PPOConfig().environment("CartPole-v1")
            .env_runners(num_env_runners=2, num_envs_per_env_runner=2,
                         observation_filter="MeanStdFilter")
            .training(train_batch_size=400, num_epochs=1, model={"fcnet_hiddens": [16]})
            .debugging(seed=0).build())
    try:
        algo.train()
        algo.train()
        f = algo.obs_filter
        assert f.count == 2 * 400  # every raw observation the runners stepped to
        assert np.all(f.var > 0) and np.all(np.abs(f.mean) < 1)
        path = algo.save(str(tmp_path / "ckpt"))
        obs = np.array([0.5, 1.0, -0.1, -1.0], np.float32)
        action = algo.compute_single_action(obs)
        mean, var = f.mean.copy(), f.var.copy()
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(path)
    try:
        np.testing.assert_allclose(restored.obs_filter.mean, mean)
        np.testing.assert_allclose(restored.obs_filter.var, var)
        assert restored.compute_single_action(obs) == action
    finally:
        restored.stop()


def test_a_format_1_checkpoint_loads_with_the_same_policy(cluster, tmp_path):
    algo = (PPOConfig().environment("CartPole-v1").env_runners(num_env_runners=0)
            .training(train_batch_size=256, num_epochs=1, model={"fcnet_hiddens": [16]})
            .build())
    try:
        algo.train()
        path = algo.save(str(tmp_path / "ckpt"))
        obs = np.array([0.01, -0.02, 0.03, 0.04], np.float32)
        logits = algo.get_module()._heads(torch.as_tensor(obs[None]))[0]
    finally:
        algo.stop()
    # rewrite it as format 1 wrote it: separate pi/vf nn.Sequential nets, the optimizer
    # state beside the algorithm's
    stacked = torch.load(os.path.join(path, "module.pt"))
    old = {}
    for i in range(2):
        w, b = stacked[f"net.weights.{i}"], stacked[f"net.biases.{i}"]
        for j, (name, cols) in enumerate((("pi", 16 if i == 0 else 2), ("vf", 16 if i == 0
                                                                         else 1))):
            old[f"{name}.{2 * i}.weight"] = w[j, :, :cols].T.clone()
            old[f"{name}.{2 * i}.bias"] = b[j, 0, :cols].clone()
    torch.save(old, os.path.join(path, "module.pt"))
    torch.save({"optimizer": {}, "kl_coeff": 0.35}, os.path.join(path, "learner.pt"))
    state_file = os.path.join(path, "algorithm_state.json")
    with open(state_file) as fh:
        state = json.load(fh)
    state["format_version"] = 1
    with open(state_file, "w") as fh:
        json.dump(state, fh)
    restored = Algorithm.from_checkpoint(path)
    try:
        again = restored.get_module()._heads(torch.as_tensor(obs[None]))[0]
        torch.testing.assert_close(again, logits)
        assert restored.kl_coeffs == {"default_policy": 0.35}
        restored.train()
    finally:
        restored.stop()
    state["format_version"] = 7
    with open(state_file, "w") as fh:
        json.dump(state, fh)
    with pytest.raises(ValueError, match="format 7; this Skate reads formats 1, 2"):
        Algorithm.from_checkpoint(path)

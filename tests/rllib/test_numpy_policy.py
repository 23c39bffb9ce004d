"""The numpy policy env runners step with computes what the torch module computes:
values, greedy actions, log-probabilities of its samples, sampling frequencies; it reads
the module's weights in place; it steps aside where torch is the better choice."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from skate.rllib.module import RLModule
from skate.rllib.numpy_policy import NUMPY_MAX_MACS, NumpyPolicy

pytestmark = pytest.mark.skate_only


@pytest.mark.parametrize("activation", ["tanh", "relu", "elu", "silu", "linear"])
@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1", "Pendulum-v1"])
def test_outputs_equal_the_torch_modules(env_id, activation):
    torch.manual_seed(0)
    env = gym.make(env_id)
    m = RLModule(env.observation_space, env.action_space,
                 {"fcnet_hiddens": [32, 16], "fcnet_activation": activation})
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    p = NumpyPolicy.of(m, rows=8)
    obs = np.random.default_rng(1).normal(size=(8,) + env.observation_space.shape)
    obs = obs.astype(np.float32)
    t_obs = torch.from_numpy(obs)
    np.testing.assert_allclose(p.value(obs), m.value(t_obs).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p.greedy(obs), m.forward_inference({"obs": t_obs})["actions"],
                               rtol=1e-5, atol=1e-6)
    actions, logp, values = p.explore(obs, np.random.default_rng(2))
    np.testing.assert_allclose(values, m.value(t_obs).numpy(), rtol=1e-5, atol=1e-6)
    ref = m.forward_train({"obs": t_obs, "actions": torch.from_numpy(actions)})
    np.testing.assert_allclose(logp, ref["action_logp"].detach().numpy(), rtol=1e-4, atol=1e-5)
    assert actions.shape == (8,) + env.action_space.shape
    if not m.discrete:
        np.testing.assert_array_equal(p.env_actions(np.array([[5.0], [-5.0], [0.5]])),
                                      [[2.0], [-2.0], [0.5]])


def test_categorical_samples_follow_the_policy():
    env = gym.make("Acrobot-v1")
    m = RLModule(env.observation_space, env.action_space, {"fcnet_hiddens": [8]})
    with torch.no_grad():
        m.net.biases[-1][0, 0, :3] = torch.tensor([0.0, 1.0, 2.0])  # logits 0, 1, 2
        m.net.weights[-1].zero_()
    p = NumpyPolicy(m)
    actions, logp, _ = p.explore(np.zeros((20_000, 6), np.float32), np.random.default_rng(0))
    want = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()
    np.testing.assert_allclose(np.bincount(actions, minlength=3) / 20_000, want, atol=0.015)
    np.testing.assert_allclose(logp, np.log(want)[actions], rtol=1e-5)


def test_it_reads_the_modules_weights_in_place():
    env = gym.make("CartPole-v1")
    m = RLModule(env.observation_space, env.action_space, {"fcnet_hiddens": [8]})
    p = NumpyPolicy.of(m, rows=1)
    other = RLModule(env.observation_space, env.action_space, {"fcnet_hiddens": [8]})
    m.set_state(other.get_state())  # what a runner does with each batch's weights
    obs = np.ones((1, 4), np.float32)
    np.testing.assert_allclose(p.value(obs), other.value(torch.from_numpy(obs)).numpy(),
                               rtol=1e-6)


def test_torch_steps_where_numpy_would_not_pay():
    env = gym.make("CartPole-v1")
    spaces = (env.observation_space, env.action_space)
    m = RLModule(*spaces, {"fcnet_hiddens": [256, 256]})
    assert NumpyPolicy.of(m, rows=1) is not None
    assert NumpyPolicy.of(m, rows=NUMPY_MAX_MACS // (256 * 256) + 1) is None
    assert NumpyPolicy.of(RLModule(*spaces, {"vf_share_layers": True}), rows=1) is None
    assert NumpyPolicy.of(RLModule(*spaces, {}).double(), rows=1) is None

"""The written-out PPO gradient (stacked_loss.py) against autograd's over the module's
forward_train and ppo.ppo_loss: same loss, same metrics, same gradients, for categorical
and Gaussian policies, every activation it takes, and minibatches where the ratio is
clipped on both sides, the value loss is clipped and the entropy and KL terms are on."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from skate.rllib import stacked_loss
from skate.rllib.module import RLModule
from skate.rllib.ppo import ppo_loss

pytestmark = pytest.mark.skate_only

COEFFS = {"clip_param": 0.2, "vf_clip_param": 4.0, "vf_loss_coeff": 0.7,
          "entropy_coeff": 0.05, "kl_coeff": 0.3}


def _case(env_id: str, activation: str, rows: int = 64, seed: int = 0):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    env = gym.make(env_id)
    m = RLModule(env.observation_space, env.action_space,
                 {"fcnet_hiddens": [32, 16], "fcnet_activation": activation})
    with torch.no_grad():  # move off the initialisation: sizeable logits, ratios far from 1
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    obs = torch.from_numpy(rng.normal(size=(rows, env.observation_space.shape[0]))
                           .astype(np.float32))
    if m.discrete:
        actions = rng.integers(0, env.action_space.n, rows)
    else:
        actions = rng.normal(size=(rows, env.action_space.shape[0])).astype(np.float32)
    with torch.no_grad():
        now = m.forward_train({"obs": obs, "actions": torch.from_numpy(actions)})
    # old log-probabilities spread so that some ratios clip low, some high, some not
    old = (now["action_logp"].numpy() + rng.normal(0, 0.4, rows)).astype(np.float32)
    adv = rng.normal(size=rows).astype(np.float32)
    targets = (now["vf_preds"].numpy() + rng.normal(0, 2.5, rows)).astype(np.float32)
    return m, obs, actions, old, adv, targets


def _autograd(m, obs, actions, old, adv, targets):
    m.zero_grad()
    out = m.forward_train({"obs": obs, "actions": torch.from_numpy(actions)})
    loss, metrics = ppo_loss(out["action_logp"], torch.from_numpy(old), torch.from_numpy(adv),
                             out["vf_preds"], torch.from_numpy(targets), out["entropy"],
                             **COEFFS)
    (2.5 * loss).backward()  # a scaled loss, as a learner's share scales it
    return loss.detach(), torch.stack(list(metrics.values())), \
        [p.grad.clone() for p in m.parameters()]


def _written_out(m, obs, actions, old, adv, targets):
    m.zero_grad()
    loss, metrics = stacked_loss.ppo_stacked_loss(m, obs, actions, old, adv, targets, **COEFFS)
    (2.5 * loss).backward()
    return loss.detach(), metrics, [p.grad.clone() for p in m.parameters()]


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1", "Pendulum-v1"])
@pytest.mark.parametrize("activation", ["tanh", "relu", "elu", "linear"])
def test_loss_metrics_and_gradients_equal_autograds(env_id, activation):
    case = _case(env_id, activation)
    m, obs, actions, old, adv, targets = case
    ratio = np.exp(m.forward_train({"obs": obs, "actions": torch.from_numpy(actions)})
                   ["action_logp"].detach().numpy() - old)
    assert (ratio < 0.8).any() and (ratio > 1.2).any() and ((ratio > 0.8) & (ratio < 1.2)).any()
    ref_loss, ref_metrics, ref_grads = _autograd(*case)
    loss, metrics, grads = _written_out(*case)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.tensor(metrics), ref_metrics, rtol=1e-5, atol=1e-5)
    names = [n for n, _ in m.named_parameters()]
    assert len(grads) == len(ref_grads)
    for name, g, ref in zip(names, grads, ref_grads):
        torch.testing.assert_close(g, ref, rtol=1e-4, atol=1e-5, msg=name)


def test_which_modules_take_the_written_out_gradient():
    env = gym.make("CartPole-v1")
    spaces = (env.observation_space, env.action_space)
    assert stacked_loss.supports(RLModule(*spaces, {}))
    assert not stacked_loss.supports(RLModule(*spaces, {"vf_share_layers": True}))
    assert not stacked_loss.supports(RLModule(*spaces, {"fcnet_activation": "silu"}))
    assert not stacked_loss.supports(RLModule(*spaces, {}).double())

    class Custom(RLModule):
        pass

    assert not stacked_loss.supports(Custom(*spaces, {}))

"""The RLModule's pure pieces: the stacked policy/value MLP equals two separate nets, the
written-out log-probabilities and entropies equal torch.distributions', and a format-1
state dict (separate nets) loads into today's layout with the same outputs."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from skate.rllib.module import RLModule, StackedMLP, mlp, upgrade_state_v1

pytestmark = pytest.mark.skate_only


def test_stacked_mlp_is_two_mlps_side_by_side():
    torch.manual_seed(0)
    net = StackedMLP(3, [8, 8], [2, 1], "tanh", out_gains=[0.01, 1.0])
    x = torch.randn(5, 3)
    out = net(x)
    for j, n_out in enumerate((2, 1)):
        h = x
        for layer, (w, b) in enumerate(zip(net.weights, net.biases)):
            h = h @ w[j] + b[j]
            if layer < 2:
                h = torch.tanh(h)
        torch.testing.assert_close(out[j, :, :n_out], h[:, :n_out])
    # the value net's unused output column stays zero
    assert torch.count_nonzero(net.weights[2][1, :, 1]) == 0


def test_discrete_logp_and_entropy_match_torch_distributions():
    env = gym.make("CartPole-v1")
    m = RLModule(env.observation_space, env.action_space, {"fcnet_hiddens": [8]})
    obs, actions = torch.randn(6, 4), torch.tensor([0, 1, 1, 0, 1, 0])
    out = m.forward_train({"obs": obs, "actions": actions})
    logits, _ = m._heads(obs)
    ref = torch.distributions.Categorical(logits=logits)
    torch.testing.assert_close(out["action_logp"], ref.log_prob(actions))
    torch.testing.assert_close(out["entropy"], ref.entropy())


def test_gaussian_logp_and_entropy_match_torch_distributions():
    env = gym.make("Pendulum-v1")
    m = RLModule(env.observation_space, env.action_space, {"fcnet_hiddens": [8]})
    with torch.no_grad():
        m.log_std.fill_(-0.3)
    obs, actions = torch.randn(6, 3), torch.randn(6, 1)
    out = m.forward_train({"obs": obs, "actions": actions})
    mean, _ = m._heads(obs)
    ref = torch.distributions.Normal(mean, torch.full_like(mean, np.exp(-0.3)))
    torch.testing.assert_close(out["action_logp"], ref.log_prob(actions).sum(-1))
    torch.testing.assert_close(out["entropy"], ref.entropy().sum(-1))
    clipped = m.env_actions(torch.tensor([[5.0], [-5.0], [0.5]]))
    np.testing.assert_array_equal(clipped, [[2.0], [-2.0], [0.5]])


def test_a_format_1_state_dict_loads_with_the_same_outputs():
    torch.manual_seed(0)
    pi, vf = mlp(4, [8, 8], 2, "tanh", 0.01), mlp(4, [8, 8], 1, "tanh", 1.0)
    old = {**{f"pi.{k}": v for k, v in pi.state_dict().items()},
           **{f"vf.{k}": v for k, v in vf.state_dict().items()}}
    env = gym.make("CartPole-v1")
    m = RLModule(env.observation_space, env.action_space, {"fcnet_hiddens": [8, 8]})
    m.load_state_dict(upgrade_state_v1(old))
    obs = torch.randn(5, 4)
    logits, values = m._heads(obs)
    torch.testing.assert_close(logits, pi(obs))
    torch.testing.assert_close(values, vf(obs)[:, 0])


def test_a_copied_stacked_mlp_uses_its_own_parameters():
    import copy
    import pickle

    net = StackedMLP(3, [4], [2, 1], "tanh", out_gains=[0.01, 1.0])
    x = torch.randn(2, 3)
    net(x)  # lists its parameters
    for twin in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        with torch.no_grad():
            twin.biases[1].add_(1.0)
        assert not torch.equal(twin(x), net(x))


def test_configuring_an_algorithm_does_not_import_torch():
    """The driver of a run (the rllib CLI, tune.run("PPO")) only configures: torch loads
    in the trial, not here (it costs the trial 1.5-2 s of CPU on a small machine)."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from skate.rllib import PPOConfig\n"
            "from skate.rllib.config import check_model\n"
            "from skate.tune.registry import get_trainable_cls\n"
            "import gymnasium as gym\n"
            "cfg = PPOConfig().environment('CartPole-v1').training(lr=1e-3)\n"
            "env = gym.make('CartPole-v1')\n"
            "check_model(cfg.model, env.observation_space, env.action_space)\n"
            "assert get_trainable_cls('PPO').__name__ == 'PPO'\n"
            "print('torch._C' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"

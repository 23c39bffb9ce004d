"""SAC: the squashed Gaussian against torch.distributions, the losses on a fixed batch
against a reference written out here, Polyak averaging and the temperature's direction,
learning a small continuous task, checkpoints and bad settings."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from skate.rllib import SACConfig
from skate.rllib.sac import SAC, SACLearner, SACModule, sac_losses, squashed_sample
from tests.conftest import _start_cluster

pytestmark = pytest.mark.skate_only


class Reach(gym.Env):
    """Move a point on a line to 0: actions in [-1, 1] move it by 0.25 a; reward -|x|."""

    observation_space = gym.spaces.Box(-5.0, 5.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, config=None):
        self.x, self.t = 0.0, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = float(self.np_random.uniform(-3, 3)), 0
        return np.array([self.x], np.float32), {}

    def step(self, action):
        self.x = float(np.clip(self.x + 0.25 * float(np.asarray(action).reshape(-1)[0]), -5, 5))
        self.t += 1
        return np.array([self.x], np.float32), -abs(self.x), False, self.t >= 20, {}


def spaces():
    return Reach.observation_space, Reach.action_space


def test_squashed_gaussian_matches_torch_distributions():
    torch.manual_seed(0)
    mean, log_std = torch.randn(64, 2), torch.randn(64, 2).clamp(-2, 1)
    noise = torch.randn(64, 2)
    a, logp = squashed_sample(mean, log_std, noise)
    dist = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.exp()),
        [torch.distributions.TanhTransform(cache_size=1)])
    u = mean + log_std.exp() * noise
    want = dist.log_prob(torch.tanh(u)).sum(-1)
    assert torch.allclose(a, torch.tanh(u))
    # TanhTransform's inverse of a tanh near +-1 loses digits; compare where it is exact
    ok = a.abs().max(-1).values < 0.99
    assert ok.sum() > 30
    assert torch.allclose(logp[ok], want[ok], atol=1e-4)


def test_module_acts_inside_the_bounds():
    space = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 10.0], np.float32))
    m = SACModule(gym.spaces.Box(-1, 1, (3,), np.float32), space, {"fcnet_hiddens": [8]})
    obs = torch.randn(500, 3)
    for out in (m.forward_exploration({"obs": obs}), m.forward_inference({"obs": obs}),
                m.forward_exploration({"obs": obs, "epsilon": 1.0})):
        env = m.env_actions(out["actions"])
        assert env.shape == (500, 2)
        assert (env >= space.low).all() and (env <= space.high).all()
    uniform = m.env_actions(m.forward_exploration({"obs": obs, "epsilon": 1.0})["actions"])
    assert 3.5 < uniform[:, 1].mean() < 6.5 and uniform[:, 1].std() > 2  # uniform on [0, 10]
    greedy = m.forward_inference({"obs": obs[:1]})["actions"]
    assert torch.equal(greedy, torch.tanh(m.dist(obs[:1])[0]))


def fixed_batch(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return {"obs": torch.tensor(rng.normal(size=(n, 1)), dtype=torch.float32),
            "actions": torch.tensor(rng.uniform(-1, 1, (n, 1)), dtype=torch.float32),
            "rewards": torch.tensor(rng.normal(size=n), dtype=torch.float32),
            "next_obs": torch.tensor(rng.normal(size=(n, 1)), dtype=torch.float32),
            "terminateds": torch.tensor(rng.random(n) < 0.3, dtype=torch.float32)}


def test_losses_on_a_fixed_batch_match_a_reference():
    torch.manual_seed(1)
    m = SACModule(*spaces(), {"fcnet_hiddens": [8, 8]})
    target = SACModule(*spaces(), {"fcnet_hiddens": [8, 8]})
    log_alpha = torch.nn.Parameter(torch.tensor(math.log(0.2)))
    d = fixed_batch()
    torch.manual_seed(5)
    critic, actor, alpha_loss, metrics = sac_losses(m, target, log_alpha, d, 0.9, -1.0)
    # the reference draws the same noise, in the same order: next actions, then actions
    torch.manual_seed(5)

    def sample(obs):
        mean, log_std = m.dist(obs)
        noise = torch.randn_like(mean)
        u = mean + log_std.exp() * noise
        dist = torch.distributions.Normal(mean, log_std.exp())
        logp = dist.log_prob(u).sum(-1) - torch.log(1 - torch.tanh(u) ** 2 + 1e-12).sum(-1)
        return torch.tanh(u), logp

    def q(net, obs, a, k):
        x = torch.cat([obs, a], 1)
        return net.q(x)[k, :, 0]

    with torch.no_grad():
        na, nlogp = sample(d["next_obs"])
        nq = torch.minimum(q(target, d["next_obs"], na, 0), q(target, d["next_obs"], na, 1))
        y = d["rewards"] + 0.9 * (1 - d["terminateds"]) * (nq - 0.2 * nlogp)
        want_critic = 0.5 * (((q(m, d["obs"], d["actions"], 0) - y) ** 2).mean()
                             + ((q(m, d["obs"], d["actions"], 1) - y) ** 2).mean())
        a, logp = sample(d["obs"])
        qpi = torch.minimum(q(m, d["obs"], a, 0), q(m, d["obs"], a, 1))
        want_actor = (0.2 * logp - qpi).mean()
        want_alpha = -(math.log(0.2) * (logp + -1.0)).mean()
    assert float(critic.detach()) == pytest.approx(float(want_critic), rel=1e-4)
    assert float(actor.detach()) == pytest.approx(float(want_actor), rel=1e-4, abs=1e-5)
    assert float(alpha_loss.detach()) == pytest.approx(float(want_alpha), rel=1e-4)
    assert float(metrics["entropy"]) == pytest.approx(float(-logp.mean()), rel=1e-4)


def learner(**training):
    cfg = SACConfig().environment(Reach).training(model={"fcnet_hiddens": [8]}, **training)
    m = SACModule(*spaces(), cfg.model)
    return SACLearner({"config": cfg, "spaces": spaces(), "model": cfg.model, "module": m,
                       "threads": 1})


def as_batch(d):
    return {k: v.numpy()[None] for k, v in d.items()}


def test_targets_move_tau_of_the_way_each_update():
    L = learner(tau=0.25)
    with torch.no_grad():
        for p in L.target.q.parameters():
            p.add_(1.0)  # the target differs from the online critic
    before = [p.clone() for p in L.target.q.parameters()]
    L.update(as_batch(fixed_batch()))
    for t, old, online in zip(L.target.q.parameters(), before, L.module.q.parameters()):
        assert torch.allclose(t, 0.75 * old + 0.25 * online, atol=1e-6)
    policy = [p.clone() for p in L.target.pi.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(policy, L.target.pi.parameters()))


def test_temperature_rises_when_the_policy_is_too_sure():
    L = learner(target_entropy=5.0)  # far more entropy wanted than one action dim has
    start = L.log_alpha.item()
    for _ in range(5):
        L.update(as_batch(fixed_batch()))
    assert L.log_alpha.item() > start
    L = learner(target_entropy=-20.0)  # far less wanted: alpha falls
    for _ in range(5):
        L.update(as_batch(fixed_batch()))
    assert L.log_alpha.item() < math.log(1.0)


def greedy_return(algo, episodes=10):
    env, total = Reach(), []
    for k in range(episodes):
        obs, _ = env.reset(seed=100 + k)
        done, ret = False, 0.0
        while not done:
            obs, r, _, trunc, _ = env.step(algo.compute_single_action(obs))
            ret += r
            done = trunc
        total.append(ret)
    return float(np.mean(total))


@pytest.fixture
def cluster():
    return _start_cluster(num_cpus=2)


def small_sac(seed=0):
    return (SACConfig().environment(Reach)
            .training(model={"fcnet_hiddens": [32, 32]}, actor_lr=3e-3, critic_lr=3e-3,
                      alpha_lr=3e-3, train_batch_size=64,
                      num_steps_sampled_before_learning_starts=200,
                      min_sample_timesteps_per_iteration=400)
            .debugging(seed=seed))


def test_sac_learns_a_small_continuous_task(cluster):
    algo = small_sac().build()
    try:
        # a policy that does nothing scores about -30 (the mean |start| of 1.5 for 20 steps)
        untrained = greedy_return(algo)
        for _ in range(5):
            result = algo.train()
        learned = greedy_return(algo)
        assert learned > -12, f"greedy return {learned} (untrained {untrained})"
        m = result["learners"]["default_policy"]
        assert m["num_updates"] == 400 and 0 < m["alpha_value"] < 1
        assert result["num_env_steps_sampled_lifetime"] == 2000
    finally:
        algo.stop()


def test_checkpoint_keeps_policy_critic_and_temperature(cluster, tmp_path):
    algo = small_sac().build()
    try:
        algo.train()
        algo.train()
        path = algo.save(str(tmp_path / "sac"))
        obs = np.array([1.5], np.float32)
        action = algo.compute_single_action(obs)
        state = algo.learner_group.get_state()
    finally:
        algo.stop()
    restored = SAC.from_checkpoint(getattr(path, "path", path), env=Reach)
    try:
        assert np.allclose(restored.compute_single_action(obs), action)
        got = restored.learner_group.get_state()
        assert got["log_alpha"] == pytest.approx(state["log_alpha"])
        assert got["updates"] == state["updates"]
        for k, v in state["target"].items():
            assert torch.equal(got["target"][k], v)
    finally:
        restored.stop()


class Unbounded(Reach):
    action_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)


def test_bad_settings_say_what_is_wrong(cluster):
    with pytest.raises(ValueError, match="must be finite"):
        SACConfig().environment(Unbounded).build()
    with pytest.raises(ValueError, match="SAC needs a Box"):
        SACConfig().environment("CartPole-v1").build()
    with pytest.raises(ValueError, match="n_step must be 1"):
        SACConfig().training(n_step=3)
    with pytest.raises(ValueError, match=r"tau must be in \(0, 1\]"):
        SACConfig().training(tau=0)
    with pytest.raises(ValueError, match="target_entropy must be 'auto' or a number"):
        SACConfig().training(target_entropy="high")
    with pytest.raises(ValueError, match="actor_lr must be a number > 0"):
        SACConfig().training(actor_lr=-1)

"""GAE, value targets, the PPO loss and normalization against hand-computed references."""

import math

import numpy as np
import pytest
import torch

from skate.rllib.postprocessing import RunningMeanStd, compute_gae, explained_variance
from skate.rllib.ppo import ppo_loss

pytestmark = pytest.mark.skate_only


def test_gae_by_hand_with_termination_truncation_and_bootstrap():
    # 2 envs x 3 steps. env 0: terminates at t=1, a new episode runs at t=2 (bootstrap from
    # next_values at the batch end). env 1: truncated at t=0 (bootstraps its final obs).
    g, lam = 0.9, 0.5
    r = np.array([[1.0, 2.0], [1.0, 0.0], [1.0, 1.0]])
    v = np.array([[0.5, 1.0], [0.4, 0.2], [0.3, 0.1]])
    nv = np.array([[0.4, 3.0], [9.9, 0.1], [0.2, 0.6]])
    term = np.array([[False, False], [True, False], [False, False]])
    trunc = np.array([[False, True], [False, False], [False, False]])
    adv, targets = compute_gae(r, v, nv, term, trunc, g, lam)
    d = {  # deltas
        (2, 0): 1 + g * 0.2 - 0.3, (1, 0): 1 + 0 - 0.4, (0, 0): 1 + g * 0.4 - 0.5,
        (2, 1): 1 + g * 0.6 - 0.1, (1, 1): 0 + g * 0.1 - 0.2, (0, 1): 2 + g * 3.0 - 1.0}
    want = np.zeros((3, 2))
    want[2, 0] = d[2, 0]
    want[1, 0] = d[1, 0]                      # terminal: the trace stops
    want[0, 0] = d[0, 0] + g * lam * want[1, 0]
    want[2, 1] = d[2, 1]
    want[1, 1] = d[1, 1] + g * lam * want[2, 1]
    want[0, 1] = d[0, 1]                      # truncated: no trace into the next episode
    np.testing.assert_allclose(adv, want, rtol=1e-6)
    np.testing.assert_allclose(targets, want + v, rtol=1e-6)


def test_gae_lambda_one_is_discounted_return_minus_value():
    r = np.ones((4, 1))
    v = np.full((4, 1), 0.5)
    term = np.array([[False], [False], [False], [True]])
    nv = np.array([[0.5], [0.5], [0.5], [0.0]])  # each step's next value: v[t + 1]
    adv, targets = compute_gae(r, v, nv, term, np.zeros((4, 1), bool), 0.5, 1.0)
    returns = [1 + 0.5 + 0.25 + 0.125, 1 + 0.5 + 0.25, 1 + 0.5, 1.0]
    np.testing.assert_allclose(targets[:, 0], returns, rtol=1e-6)
    np.testing.assert_allclose(adv[:, 0], np.array(returns) - 0.5, rtol=1e-6)


def test_ppo_loss_terms_by_hand():
    logp = torch.tensor([math.log(0.5), math.log(0.2)])
    old = torch.tensor([math.log(0.25), math.log(0.4)])  # ratios 2.0 and 0.5
    adv = torch.tensor([1.0, -1.0])
    vf = torch.tensor([1.0, 0.0])
    targets = torch.tensor([4.0, 0.5])
    ent = torch.tensor([0.7, 0.3])
    total, m = ppo_loss(logp, old, adv, vf, targets, ent, clip_param=0.2, vf_clip_param=5.0,
                        vf_loss_coeff=0.5, entropy_coeff=0.01, kl_coeff=0.2)
    surrogate = [min(2.0 * 1, 1.2 * 1), min(0.5 * -1, 0.8 * -1)]   # [1.2, -0.8]
    assert float(m["policy_loss"]) == pytest.approx(-np.mean(surrogate))
    assert float(m["vf_loss"]) == pytest.approx(np.mean([min(9.0, 5.0), 0.25]))
    kl = np.mean([math.log(0.25) - math.log(0.5), math.log(0.4) - math.log(0.2)])
    assert float(m["mean_kl_loss"]) == pytest.approx(kl)
    assert float(total) == pytest.approx(-np.mean(surrogate) + 0.5 * 2.625 - 0.01 * 0.5
                                         + 0.2 * kl, rel=1e-5)


def test_running_mean_std_matches_numpy_and_explained_variance():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=(1000, 2))
    rms = RunningMeanStd(shape=(2,))
    for chunk in np.split(data, 10):
        rms.update(chunk)
    np.testing.assert_allclose(rms.mean, data.mean(0), rtol=1e-9)
    np.testing.assert_allclose(rms.var, data.var(0), rtol=1e-9)
    y = rng.normal(size=100)
    assert explained_variance(y, y) == 1.0
    assert explained_variance(y, np.full(100, y.mean())) == pytest.approx(0.0, abs=1e-12)


def test_running_mean_std_merge_is_the_statistics_of_all_samples():
    rng = np.random.default_rng(1)
    a, b = rng.normal(1.0, 3.0, (50, 3)), rng.normal(-2.0, 0.5, (70, 3))
    left, right = RunningMeanStd((3,)), RunningMeanStd((3,))
    left.update(a)
    right.update(b)
    left.merge(right.get_state())
    both = np.concatenate([a, b])
    np.testing.assert_allclose(left.mean, both.mean(0), rtol=1e-12)
    np.testing.assert_allclose(left.var, both.var(0), rtol=1e-12)
    assert left.count == 120
    normed = left(both)
    np.testing.assert_allclose(normed.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(normed.std(0), 1, rtol=1e-6)

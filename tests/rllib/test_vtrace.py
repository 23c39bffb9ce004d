"""V-trace against a hand-computed batch and against its definition as a sum (not the
recursion the code uses), and IMPALA's loss on a fixed batch."""

import numpy as np
import pytest
import torch

from skate.rllib.impala import concat_fragments, impala_loss
from skate.rllib.postprocessing import compute_gae, vtrace

pytestmark = pytest.mark.skate_only


def test_vtrace_by_hand_with_clipped_ratios():
    # one env, 3 steps, no episode end; ratios pi/mu = 2, 0.5, 1 (log-ratios below)
    g = 0.9
    mu = np.zeros((3, 1))
    pi = np.log(np.array([[2.0], [0.5], [1.0]]))
    r = np.array([[1.0], [0.0], [2.0]])
    v = np.array([[0.5], [1.0], [0.2]])
    nv = np.array([[1.0], [0.2], [0.4]])  # V of each successor; the last bootstraps
    no = np.zeros((3, 1), bool)
    vs, adv = vtrace(mu, pi, r, v, nv, no, no, g, clip_rho=1.0, clip_pg_rho=1.0, clip_c=1.0)
    rho = [1.0, 0.5, 1.0]  # min(1, ratio)
    c = [1.0, 0.5, 1.0]
    delta = [rho[0] * (1 + g * 1.0 - 0.5), rho[1] * (0 + g * 0.2 - 1.0),
             rho[2] * (2 + g * 0.4 - 0.2)]
    want_vs = [0.0, 0.0, 0.0]
    want_vs[2] = 0.2 + delta[2]
    want_vs[1] = 1.0 + delta[1] + g * c[1] * (want_vs[2] - 0.2)
    want_vs[0] = 0.5 + delta[0] + g * c[0] * (want_vs[1] - 1.0)
    np.testing.assert_allclose(vs[:, 0], want_vs, rtol=1e-6)
    want_adv = [rho[0] * (1 + g * want_vs[1] - 0.5), rho[1] * (0 + g * want_vs[2] - 1.0),
                rho[2] * (2 + g * 0.4 - 0.2)]
    np.testing.assert_allclose(adv[:, 0], want_adv, rtol=1e-6)
    # without the importance weight (APPO's surrogate applies its own ratio)
    _, raw = vtrace(mu, pi, r, v, nv, no, no, g, clip_pg_rho=None)
    np.testing.assert_allclose(raw[1, 0], 0 + g * want_vs[2] - 1.0, rtol=1e-6)


def _vtrace_by_definition(log_rhos, r, v, nv, ends, terms, g, rho_bar, c_bar):
    """vs_s = V_s + sum_{t>=s, same episode} g^(t-s) (prod_{s<=i<t} c_i) delta_t."""
    T, N = r.shape
    rho = np.minimum(rho_bar, np.exp(log_rhos))
    c = np.minimum(c_bar, np.exp(log_rhos))
    disc = g * (1 - terms)
    delta = rho * (r + disc * nv - v)
    vs = np.zeros((T, N))
    for n in range(N):
        for s in range(T):
            total, weight = 0.0, 1.0
            for t in range(s, T):
                total += weight * delta[t, n]
                if ends[t, n]:
                    break
                weight *= g * c[t, n]
            vs[s, n] = v[s, n] + total
    return vs


@pytest.mark.parametrize("seed", range(5))
def test_vtrace_matches_its_definition_across_episode_ends(seed):
    rng = np.random.default_rng(seed)
    T, N, g = 12, 3, 0.95
    mu, pi = rng.normal(size=(T, N)) * 0.5, rng.normal(size=(T, N)) * 0.5
    r, v, nv = rng.normal(size=(T, N)), rng.normal(size=(T, N)), rng.normal(size=(T, N))
    terms = rng.random((T, N)) < 0.15
    truncs = (rng.random((T, N)) < 0.1) & ~terms
    vs, _ = vtrace(mu, pi, r, v, nv, terms, truncs, g, clip_rho=1.2, clip_c=0.9)
    want = _vtrace_by_definition(pi - mu, r, v, nv, terms | truncs, terms, g, 1.2, 0.9)
    np.testing.assert_allclose(vs, want, rtol=1e-5, atol=1e-5)


def test_on_policy_vtrace_is_gae_with_lambda_one():
    rng = np.random.default_rng(7)
    T, N = 10, 2
    lp = rng.normal(size=(T, N))
    r, v, nv = rng.normal(size=(T, N)), rng.normal(size=(T, N)), rng.normal(size=(T, N))
    terms = np.zeros((T, N), bool)
    terms[4, 0] = True
    truncs = np.zeros((T, N), bool)
    truncs[6, 1] = True
    vs, adv = vtrace(lp, lp, r, v, nv, terms, truncs, 0.9)
    gae_adv, targets = compute_gae(r, v, nv, terms, truncs, 0.9, 1.0)
    np.testing.assert_allclose(vs, targets, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(adv, gae_adv, rtol=1e-5, atol=1e-6)


def test_impala_loss_on_a_fixed_batch():
    logp = torch.tensor([-0.5, -1.0, -2.0], requires_grad=True)
    values = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    entropy = torch.tensor([0.6, 0.6, 0.6])
    vs, adv = torch.tensor([2.0, 2.0, 0.0]), torch.tensor([1.0, -1.0, 5.0])
    mask = torch.tensor([1.0, 1.0, 0.0])  # the last step only reset an env
    total, m = impala_loss(logp, values, entropy, vs, adv, mask, vf_loss_coeff=0.5,
                           entropy_coeff=0.1)
    pi = -(-0.5 * 1.0 + -1.0 * -1.0) / 2
    vf = 0.5 * ((1 - 2) ** 2 + 0) / 2
    assert float(m["policy_loss"]) == pytest.approx(pi)
    assert float(m["vf_loss"]) == pytest.approx(vf)
    assert float(m["entropy"]) == pytest.approx(0.6)
    assert float(total.detach()) == pytest.approx(pi + 0.5 * vf - 0.1 * 0.6)
    total.backward()
    assert logp.grad.tolist() == pytest.approx([-0.5, 0.5, 0.0])  # -adv * mask / n
    assert values.grad.tolist() == pytest.approx([0.5 * (1 - 2) / 2, 0.0, 0.0])


def test_fragments_sit_side_by_side():
    def frag(n, fill):
        T = 4
        return {"obs": np.full((T, n, 3), fill, np.float32),
                "actions": np.full((T, n), fill), "action_logp": np.zeros((T, n)),
                "rewards": np.zeros((T, n)), "terminateds": np.zeros((T, n), bool),
                "truncateds": np.zeros((T, n), bool), "valid": np.ones((T, n), bool),
                "next_obs": np.zeros((T, n, 3)), "vf_preds": np.zeros((T, n))}

    batch = concat_fragments([frag(2, 1), frag(3, 2)])
    assert batch["obs"].shape == (4, 5, 3)
    assert batch["actions"][0].tolist() == [1, 1, 2, 2, 2]
    assert "vf_preds" not in batch  # the runner's values are not the learner's

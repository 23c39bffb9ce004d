"""DQN: replay buffers, n-step transitions, the TD loss, and learning CartPole."""

import numpy as np
import pytest
import torch

from skate.rllib.dqn import DQN, dqn_loss, epsilon_at
from skate.rllib.replay_buffer import PrioritizedReplayBuffer, ReplayBuffer
from tests.conftest import _start_cluster

pytestmark = pytest.mark.skate_only
pytest.importorskip("gymnasium")


def test_uniform_buffer_is_a_ring_and_samples_what_it_holds():
    b = ReplayBuffer(capacity=5, seed=0)
    b.add({"x": np.arange(3.0), "y": np.arange(3)})
    b.add({"x": np.arange(3.0, 8.0), "y": np.arange(3, 8)})
    assert len(b) == 5 and sorted(b.columns["x"].tolist()) == [3.0, 4.0, 5.0, 6.0, 7.0]
    s = b.sample(100)
    assert set(s["x"].tolist()) <= {3.0, 4.0, 5.0, 6.0, 7.0}
    np.testing.assert_array_equal(s["x"], s["y"].astype(float))  # rows stay together
    assert (s["weights"] == 1).all()


def test_prioritized_buffer_samples_in_proportion_and_weights_correct_it():
    b = PrioritizedReplayBuffer(capacity=4, alpha=1.0, seed=0)
    b.add({"x": np.arange(4.0)})
    b.update_priorities(np.arange(4), np.array([1.0, 1.0, 1.0, 7.0]))
    s = b.sample(10_000, beta=1.0)
    share = np.mean(s["x"] == 3.0)
    assert share == pytest.approx(0.7, abs=0.02)
    w = dict(zip(s["x"].tolist(), s["weights"].tolist()))
    assert w[0.0] == pytest.approx(1.0) and w[3.0] == pytest.approx(1 / 7, rel=1e-3)
    assert b.tree[1] == pytest.approx(10.0 + 4e-6)  # the root holds the total


def test_epsilon_schedule_and_td_loss():
    assert epsilon_at([(0, 1.0), (100, 0.1)], 0) == 1.0
    assert epsilon_at([(0, 1.0), (100, 0.1)], 1000) == pytest.approx(0.1)
    q = torch.tensor([1.0, 2.0, 0.0])
    target = torch.tensor([1.5, 0.0, 0.0])
    loss, td = dqn_loss(q, target, torch.tensor([1.0, 0.5, 1.0]), "huber")
    # huber: 0.5 * 0.5^2 = 0.125 ; |2| > 1 -> 2 - 0.5 = 1.5, weighted 0.75 ; 0
    assert float(loss) == pytest.approx((0.125 + 0.75 + 0.0) / 3)
    assert td.tolist() == [-0.5, 2.0, 0.0]


def _cluster():
    return _start_cluster(num_cpus=2)


def test_n_step_transitions_by_hand():
    _cluster()
    algo = DQN.default_config_for("CartPole-v1").training(n_step=3, gamma=0.5) \
        .env_runners(num_env_runners=0).build()
    try:
        T, N = 4, 1
        b = {"obs": np.arange(T, dtype=np.float32).reshape(T, N, 1).repeat(4, axis=2),
             "next_obs": np.arange(1, T + 1, dtype=np.float32).reshape(T, N, 1).repeat(4, 2),
             "actions": np.zeros((T, N), np.int64), "rewards": np.ones((T, N), np.float32),
             "terminateds": np.array([[False], [False], [True], [False]]),
             "truncateds": np.zeros((T, N), bool), "valid": np.ones((T, N), bool),
             "runner": 0}
        before = len(algo.buffer)
        assert algo._store(b) == 3  # 3 transitions of the ended episode; t=3 still pending
        rows = {k: v[before:before + 3] for k, v in algo.buffer.columns.items()}
        assert rows["returns"].tolist() == [1.75, 1.5, 1.0]  # 3-, 2- and 1-step, cut at the end
        assert rows["terminateds"].tolist() == [1.0, 1.0, 1.0]
        assert rows["next_obs"][:, 0].tolist() == [3.0, 3.0, 3.0]
    finally:
        algo.stop()


def test_dqn_learns_cartpole():
    _cluster()
    algo = DQN.default_config_for("CartPole-v1").debugging(seed=0).build()
    try:
        best = 0.0
        while algo.steps_lifetime < 20_000:
            best = max(best, algo.train()["env_runners"]["episode_return_mean"])
            if best >= 100:
                break
        assert best >= 100, f"mean return only reached {best} in {algo.steps_lifetime} steps"
    finally:
        algo.stop()


def test_sum_tree_sums_and_finds_like_a_cumulative_sum():
    rng = np.random.default_rng(3)
    b = PrioritizedReplayBuffer(capacity=100, alpha=1.0, seed=0)
    b.add({"x": np.arange(100.0)})
    slots = rng.integers(0, 100, 300)  # repeats: the last priority of a slot wins
    prios = rng.random(300) + 0.01
    b.update_priorities(slots, prios - b.eps)
    expect = np.ones(100)  # rows never updated keep the first (max) priority
    for s, p in zip(slots, prios):
        expect[s] = p
    leaves = b.tree[b.tree_size:b.tree_size + 100]
    np.testing.assert_allclose(leaves, expect, rtol=1e-12)
    internal = np.arange(1, b.tree_size)
    np.testing.assert_allclose(b.tree[internal], b.tree[2 * internal] + b.tree[2 * internal + 1],
                               rtol=1e-12)
    masses = rng.random(50) * b.tree[1]
    np.testing.assert_array_equal(b._find(masses),
                                  np.searchsorted(np.cumsum(expect), masses))

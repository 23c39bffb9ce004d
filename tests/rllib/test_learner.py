"""Learners: N data-parallel learner actors make the update one learner makes on the same
batch (PPO and DQN), and PPO trains end to end with two of them."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import skate
from skate.rllib import DQNConfig, PPOConfig
from skate.rllib.dqn import DQNLearner, QModule
from skate.rllib.learner import LearnerGroup
from skate.rllib.module import RLModule
from skate.rllib.ppo import PPOLearner
from tests.conftest import _start_cluster

pytestmark = pytest.mark.skate_only

ENV = gym.make("CartPole-v1")
SPACES = (ENV.observation_space, ENV.action_space)


@pytest.fixture
def cluster():
    return _start_cluster(num_cpus=2)


def ppo_batch(n=96, seed=0):
    rng = np.random.default_rng(seed)
    return {"obs": rng.normal(size=(n, 4)).astype(np.float32),
            "actions": rng.integers(0, 2, n), "action_logp": np.full(n, -0.69, np.float32),
            "advantages": rng.normal(size=n).astype(np.float32),
            "value_targets": rng.normal(size=n).astype(np.float32)}


def group(learner_class, module_class, config, module, num_learners):
    config = config.copy().learners(num_learners=num_learners)
    copy = module_class(*SPACES, config.model)
    copy.set_state(module.get_state())
    return LearnerGroup(learner_class, {"config": config, "spaces": SPACES,
                                        "module_class": module_class, "model": config.model,
                                        "module": copy, "threads": 1})


def assert_same_weights(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-6, err_msg=k)


def test_two_ppo_learners_make_the_update_one_learner_makes(cluster):
    cfg = PPOConfig().training(lr=1e-3, minibatch_size=32, num_epochs=2, grad_clip=0.5,
                               model={"fcnet_hiddens": [16]})
    torch.manual_seed(0)
    module = RLModule(*SPACES, cfg.model)
    one = group(PPOLearner, RLModule, cfg, module, 0)
    two = group(PPOLearner, RLModule, cfg, module, 2)
    try:
        batch = ppo_batch()
        m1 = one.update(batch, seed=7, kl_coeff=0.2)[0]
        m2 = two.update(batch, seed=7, kl_coeff=0.2)
        w1, w2 = one.get_weights(), two.get_weights()
        assert_same_weights(w1, w2)
        assert not np.allclose(w1["net.weights.0"], module.get_state()["net.weights.0"])
        # each rank saw half of every minibatch: the halves' means average to the whole's
        assert np.mean([m["policy_loss"] for m in m2]) == pytest.approx(m1["policy_loss"],
                                                                      rel=1e-4, abs=1e-6)
        # and both ranks hold the same weights afterwards
        ranks = skate.get([a.call.remote("get_weights") for a in two.actors])
        assert_same_weights(ranks[0], ranks[1])
    finally:
        two.stop()


def test_two_dqn_learners_make_the_update_one_learner_makes(cluster):
    cfg = DQNConfig().training(lr=1e-3, model={"fcnet_hiddens": [16]})
    torch.manual_seed(0)
    module = QModule(*SPACES, cfg.model)
    one = group(DQNLearner, QModule, cfg, module, 0)
    two = group(DQNLearner, QModule, cfg, module, 2)
    rng = np.random.default_rng(1)
    k, mb = 3, 10  # 10 rows: ranks train on 5 each
    batch = {"obs": rng.normal(size=(k, mb, 4)).astype(np.float32),
             "next_obs": rng.normal(size=(k, mb, 4)).astype(np.float32),
             "actions": rng.integers(0, 2, (k, mb)), "returns": np.ones((k, mb), np.float32),
             "discounts": np.full((k, mb), 0.99, np.float32),
             "terminateds": (rng.random((k, mb)) < 0.2).astype(np.float32),
             "weights": np.ones((k, mb), np.float32)}
    try:
        r1 = one.update(batch, sync_target=True)[0]
        r2 = two.update(batch, sync_target=True)
        assert_same_weights(one.get_weights(), two.get_weights())
        np.testing.assert_allclose(r1["td_errors"],
                                   np.concatenate([r["td_errors"] for r in r2], axis=1),
                                   rtol=1e-4, atol=1e-6)
        target = one.get_state()["target"]
        assert_same_weights({k: v.numpy() for k, v in target.items()}, one.get_weights())
    finally:
        two.stop()


def test_ppo_trains_on_two_learner_actors(cluster, tmp_path):
    algo = (PPOConfig().environment("CartPole-v1")
            .env_runners(num_env_runners=0, num_envs_per_env_runner=4)
            .training(lr=1e-3, train_batch_size=512, minibatch_size=128, num_epochs=2,
                      model={"fcnet_hiddens": [32]})
            .learners(num_learners=2).debugging(seed=0).build())
    try:
        before = algo.get_module().get_state()
        result = algo.train()
        after = algo.get_module().get_state()
        assert not np.allclose(before["net.weights.0"], after["net.weights.0"])
        assert_same_weights(after, algo.learner_group.get_weights())
        assert result["learners/default_policy/entropy"] > 0
        path = algo.save(str(tmp_path / "ckpt"))
        algo.train()
        algo.restore(path)
        assert_same_weights(algo.learner_group.get_weights(), after)
    finally:
        algo.stop()
    assert skate.util.list_named_actors() == []


def test_a_gpu_learner_without_a_gpu_is_refused_before_anything_starts(cluster):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="num_gpus_per_learner=1 .* no GPU"):
        PPOConfig().environment("CartPole-v1").learners(num_gpus_per_learner=1).build()
    with pytest.raises(ValueError, match="num_learners must be a number >= 0"):
        PPOConfig().learners(num_learners=-1)

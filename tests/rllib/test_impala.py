"""IMPALA and APPO end to end: they learn CartPole, sampling never waits for an iteration's
end, staleness stays within its bound, a killed runner is replaced, checkpoints keep the
policy, and bad settings say what is wrong."""

import os
import signal

import numpy as np
import pytest

import skate
from skate.rllib import APPOConfig, IMPALAConfig
from skate.rllib.appo import APPO
from skate.rllib.impala import IMPALA
from tests.conftest import _start_cluster

pytestmark = pytest.mark.skate_only
pytest.importorskip("gymnasium")


@pytest.fixture
def cluster():
    return _start_cluster(num_cpus=2)


def tuned(cls, runners=2, learners=0, seed=0):
    return (cls.default_config_for("CartPole-v1")
            .env_runners(num_env_runners=runners).learners(num_learners=learners)
            .debugging(seed=seed))


def train_until(algo, target, iterations):
    best, result = 0.0, None
    for _ in range(iterations):
        result = algo.train()
        best = max(best, result["env_runners"]["episode_return_mean"])
        if best >= target:
            break
    return best, result


def test_appo_learns_cartpole(cluster):
    algo = tuned(APPO).build()
    try:
        # 12-33 iterations of ~2,000 env steps reach 200 on 2 quiet cores (6 seeds)
        best, result = train_until(algo, 150, 100)
        assert best >= 150, f"mean return only reached {best}"
        learner = result["learners"]["default_policy"]
        assert learner["num_updates"] >= 1 and learner["entropy"] > 0
        assert 0 <= learner["max_staleness"] <= algo.algo_config.max_staleness
        assert result["num_env_steps_trained_lifetime"] <= \
            result["num_env_steps_sampled_lifetime"]
    finally:
        algo.stop()


def test_impala_learns_with_a_learner_actor(cluster):
    algo = tuned(IMPALA, learners=1).build()
    try:
        best, result = train_until(algo, 150, 120)
        assert best >= 150, f"mean return only reached {best}"
        assert result["weights_version"] >= 10
    finally:
        algo.stop()


def test_runners_go_on_sampling_between_iterations(cluster):
    algo = tuned(IMPALA).training(max_requests_in_flight_per_env_runner=2).build()
    try:
        for _ in range(3):
            algo.train()
            # no barrier: when train() returns, every runner still has its requests queued
            owners = sorted(i for i, _ in algo._inflight.values())
            assert owners == [0, 0, 1, 1]
        assert algo.weights_version > 3
    finally:
        algo.stop()


def test_staleness_never_exceeds_its_bound(cluster):
    # four requests queued per runner: a batch's weights are often updates behind
    algo = (tuned(IMPALA).env_runners(num_envs_per_env_runner=1, rollout_fragment_length=16)
            .training(max_requests_in_flight_per_env_runner=4, train_batch_size=16,
                      max_staleness=1, min_sample_timesteps_per_iteration=400).build())
    try:
        dropped, seen = 0, []
        for _ in range(3):
            result = algo.train()
            seen.append(result["learners"]["default_policy"]["max_staleness"])
            dropped = result["num_batches_dropped_stale"]
        assert max(seen) <= 1
        assert dropped > 0  # the staler ones were left out, not trained on
    finally:
        algo.stop()


def test_killed_runner_is_replaced(cluster):
    algo = tuned(APPO).build()
    try:
        algo.train()
        os.kill(skate.get(algo.runners[0].pid.remote()), signal.SIGKILL)
        result = algo.train()
        result = algo.train() if result["num_env_runner_restarts"] == 0 else result
        assert result["num_env_runner_restarts"] == 1
        after = algo.train()
        assert after["env_runners"]["num_env_steps_sampled"] > 0
        assert len({i for i, _ in algo._inflight.values()}) == 2  # both sample again
    finally:
        algo.stop()


def test_checkpoint_round_trip_with_a_learner_actor(cluster, tmp_path):
    algo = tuned(APPO, learners=1).build()
    try:
        for _ in range(3):
            algo.train()
        path = algo.save(str(tmp_path / "ckpt"))
        obs = np.array([0.01, -0.02, 0.03, 0.04], np.float32)
        logits_before = [algo.compute_single_action(obs) for _ in range(3)]
    finally:
        algo.stop()
    restored = APPO.from_checkpoint(getattr(path, "path", path))
    try:
        assert [restored.compute_single_action(obs) for _ in range(3)] == logits_before
        assert restored.get_module().state_dict().keys() == algo.module.state_dict().keys()
        for k, v in restored.get_module().state_dict().items():
            assert np.allclose(v.numpy(), algo.module.state_dict()[k].numpy())
        assert restored.train()["training_iteration"] == 4
    finally:
        restored.stop()


def test_bad_settings_say_what_is_wrong(cluster):
    with pytest.raises(ValueError, match="max_staleness must be an int >= 0"):
        IMPALAConfig().training(max_staleness=-1)
    with pytest.raises(ValueError, match="learner_queue_size must be an int >= 1"):
        APPOConfig().training(learner_queue_size=0)
    with pytest.raises(TypeError, match="unknown setting 'vtrace_clip'"):
        IMPALAConfig().training(vtrace_clip=1.0)
    cfg = IMPALAConfig().environment("CartPole-v1").env_runners(
        num_env_runners=0, rollout_fragment_length="auto")
    with pytest.raises(ValueError, match="rollout_fragment_length"):
        cfg.build()

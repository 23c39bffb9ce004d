"""PPO end to end on CartPole: it learns, runs under tune, checkpoints, survives a killed
runner, repeats itself with a seed, and says clearly what is wrong with a config."""

import os
import signal

import numpy as np
import pytest

import skate
from skate import tune
from skate.rllib import Algorithm, PPOConfig
from tests.conftest import _start_cluster

pytestmark = pytest.mark.skate_only
pytest.importorskip("gymnasium")


def fast_config(runners=2, seed=0):
    return (PPOConfig().environment("CartPole-v1")
            .env_runners(num_env_runners=runners, num_envs_per_env_runner=4)
            .training(lr=3e-4, train_batch_size=2048, minibatch_size=256, num_epochs=10,
                      lambda_=0.95, model={"fcnet_hiddens": [64, 64]})
            .debugging(seed=seed))


@pytest.fixture
def cluster():
    return _start_cluster(num_cpus=2)


def test_ppo_learns_cartpole(cluster):
    algo = fast_config().build()
    try:
        best = 0.0
        sampled = 0
        for _ in range(25):
            result = algo.train()
            sampled += result["env_runners"]["num_env_steps_sampled"]
            best = max(best, result["env_runners"]["episode_return_mean"])
            if best >= 150:
                break
        assert best >= 150, f"mean return only reached {best}"
        for key in ("episode_return_max", "episode_return_min", "episode_len_mean",
                    "num_episodes"):
            assert key in result["env_runners"]
        assert result["learners"]["default_policy"]["entropy"] > 0
        # every step counted once; steps that only reset an env are not counted
        assert result["num_env_steps_sampled_lifetime"] == sampled
        assert 0.9 * 2048 * result["training_iteration"] < sampled <= \
            2048 * result["training_iteration"]
    finally:
        algo.stop()


def test_checkpoint_round_trip_keeps_the_policy(cluster, tmp_path):
    algo = fast_config(runners=0).build()
    try:
        for _ in range(3):
            algo.train()
        path = algo.save(str(tmp_path / "ckpt"))
        obs = np.array([0.01, -0.02, 0.03, 0.04], np.float32)
        action = algo.compute_single_action(obs)
        steps = algo.steps_lifetime
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(path)
    try:
        assert restored.compute_single_action(obs) == action
        assert restored.iteration == 3 and restored.steps_lifetime == steps
        restored.train()
        assert restored.iteration == 4
    finally:
        restored.stop()
    with pytest.raises(ValueError, match="not an rllib checkpoint"):
        Algorithm.from_checkpoint(str(tmp_path))


def test_same_seed_same_returns(cluster):
    steps = []

    def run():
        algo = fast_config(runners=2, seed=7).build()
        try:
            results = [algo.train() for _ in range(2)]
            steps.extend(r["env_runners"]["num_env_steps_sampled"] for r in results)
            return [r["env_runners"]["episode_return_mean"] for r in results]
        finally:
            algo.stop()
    assert run() == run()

    from skate.util import metrics
    from tests.core.utils import wait_for_condition

    def sampled():  # this test's steps, and those of earlier tests of the module
        fam = next((f for f in metrics.snapshot() if f["name"] == "rllib_env_steps_sampled"))
        (s,) = [s for s in fam["samples"] if s["tags"]["algorithm"] == "PPO"]
        return s["value"] >= sum(steps) > 0

    wait_for_condition(sampled, timeout=15)


def test_killed_runner_is_replaced_and_training_goes_on(cluster):
    algo = fast_config(runners=2).build()
    try:
        algo.train()
        os.kill(skate.get(algo.runners[0].pid.remote()), signal.SIGKILL)
        before = algo.train()
        assert before["num_env_runner_restarts"] == 1
        result = algo.train()
        assert result["num_env_runner_restarts"] == 1
        got = result["env_runners"]["num_env_steps_sampled"]
        assert result["num_env_steps_sampled_lifetime"] - \
            before["num_env_steps_sampled_lifetime"] == got
        assert got > 0.9 * 2048  # both runners sampled again
    finally:
        algo.stop()


def test_tune_runs_ppo_by_name(cluster, tmp_path):
    config = fast_config(runners=0).training(lr=tune.grid_search([1e-3, 3e-4]),
                                             train_batch_size=512)
    analysis = tune.run("PPO", config=config, stop={"training_iteration": 2}, verbose=0,
                        storage_path=str(tmp_path))
    assert len(analysis.trials) == 2
    assert all(t.last_result["training_iteration"] == 2 for t in analysis.trials)
    assert {t.config["lr"] for t in analysis.trials} == {1e-3, 3e-4}


def test_bad_configs_say_what_is_wrong(cluster):
    with pytest.raises(TypeError, match="unknown setting 'learning_rate'"):
        PPOConfig().training(learning_rate=1)
    with pytest.raises(ValueError, match="unknown environment 'CartPol-v1'.*CartPole-v1"):
        PPOConfig().environment("CartPol-v1").env_runners(num_env_runners=0).build()
    with pytest.raises(ValueError, match="no environment"):
        PPOConfig().env_runners(num_env_runners=0).build()
    with pytest.raises(ValueError, match="num_env_runners"):
        PPOConfig().env_runners(num_env_runners=-1)
    with pytest.raises(ValueError, match="framework"):
        PPOConfig().framework("tf2")

"""PB2: PBT whose explore step is a GP bandit over hyperparam_bounds."""

from dataclasses import dataclass, field

import pytest

from skate.tune.schedulers import PB2, Exploit

pytestmark = pytest.mark.skate_only


@dataclass
class FakeTrial:
    trial_id: str
    config: dict
    status: str = "RUNNING"
    last_result: dict = field(default_factory=dict)
    checkpoint: object = None


def test_bounds_are_validated():
    for bad in (None, {}, {"lr": [1, 1]}, {"lr": [2, 1]}, {"lr": "x"}, {"a": {"b": [0, 1]}}):
        with pytest.raises(ValueError, match="hyperparam_bounds|PB2 needs"):
            PB2(metric="m", mode="max", hyperparam_bounds=bad)


def test_missing_keys_are_sampled_inside_the_bounds():
    pb2 = PB2(metric="m", mode="max", hyperparam_bounds={"lr": [0.1, 0.2], "bs": [8, 64]},
              seed=0)
    trial = FakeTrial("a", {})
    pb2.on_trial_add(trial)
    assert 0.1 <= trial.config["lr"] <= 0.2 and isinstance(trial.config["bs"], int)
    assert 8 <= trial.config["bs"] <= 64


def test_the_bandit_steers_towards_what_improved_the_metric():
    # Improvement per interval grows with lr: the model should propose a high lr.
    pb2 = PB2(time_attr="training_iteration", metric="score", mode="max",
              perturbation_interval=1, hyperparam_bounds={"lr": [0.0, 1.0]},
              quantile_fraction=0.25, seed=3)
    lrs = [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 0.95]
    trials = [FakeTrial(str(i), {"lr": lr}) for i, lr in enumerate(lrs)]
    for t in trials:
        pb2.on_trial_add(t)
    scores = {t.trial_id: 0.0 for t in trials}
    exploits = []
    for step in range(1, 6):
        for t in trials:
            scores[t.trial_id] += t.config["lr"]
            decision = pb2.on_trial_result(t, {"training_iteration": step,
                                               "score": scores[t.trial_id]})
            if isinstance(decision, Exploit):
                exploits.append(decision)
                assert 0.0 <= decision.config["lr"] <= 1.0
                assert decision.source.config["lr"] >= 0.65  # copied from the top quantile
    assert exploits, "no trial exploited"
    proposed = [d.config["lr"] for d in exploits[2:]]  # once the model has data
    assert proposed and sum(proposed) / len(proposed) > 0.6


def test_save_restore_keeps_the_observations(tmp_path):
    pb2 = PB2(time_attr="training_iteration", metric="score", mode="max",
              perturbation_interval=1, hyperparam_bounds={"lr": [0.0, 1.0]}, seed=0)
    trial = FakeTrial("a", {"lr": 0.5})
    pb2.on_trial_add(trial)
    for step in range(1, 4):
        pb2.on_trial_result(trial, {"training_iteration": step, "score": float(step)})
    pb2.save(str(tmp_path / "pb2.pkl"))
    fresh = PB2(time_attr="training_iteration", metric="score", mode="max",
                perturbation_interval=1, hyperparam_bounds={"lr": [0.0, 1.0]}, seed=0)
    fresh.restore(str(tmp_path / "pb2.pkl"))
    assert fresh._y == pb2._y and len(fresh._y) == 2

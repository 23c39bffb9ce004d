"""PopulationBasedTraining: quantiles, exploit decisions, explore, validation."""

from __future__ import annotations

import dataclasses
import random

import pytest
from scheduler_fakes import result as _result

from skate.tune.schedulers import Exploit, PopulationBasedTraining
from skate.tune.schedulers.pbt import explore

pytestmark = pytest.mark.skate_only


@dataclasses.dataclass(eq=False)
class FakeTrial:
    trial_id: str
    config: dict = dataclasses.field(default_factory=dict)
    status: str = "RUNNING"
    last_result: dict = dataclasses.field(default_factory=dict)
    checkpoint: object = "ckpt"


class FakeDomain:
    """Stands in for a tune search-space object: anything with ``.sample()``."""

    def __init__(self, value):
        self.value = value

    def sample(self):
        return self.value



def _pbt(**kwargs):
    kwargs = {"time_attr": "training_iteration", "metric": "acc", "mode": "max",
              "perturbation_interval": 4, "resample_probability": 0.0,
              "hyperparam_mutations": {"lr": lambda: 0.5, "batch": [16, 32, 64, 128]},
              "seed": 0, **kwargs}
    return PopulationBasedTraining(**kwargs)


def _population(pbt, n=4):
    trials = [FakeTrial(f"t{i}", config={"lr": 0.1 * (i + 1), "batch": 32}) for i in range(n)]
    for t in trials:
        pbt.on_trial_add(t)
    return trials


def test_bottom_quantile_trial_exploits_a_top_quantile_trial():
    pbt = _pbt()
    t0, t1, t2, t3 = _population(pbt)  # quantile 0.25 of 4: one at the top, one at the bottom
    accs = {"t0": 0.1, "t1": 0.5, "t2": 0.6, "t3": 0.9}
    for t in (t1, t2, t3):
        for it in range(1, 5):
            assert pbt.on_trial_result(t, _result(it, accs[t.trial_id])) == "CONTINUE"
    for it in range(1, 4):
        assert pbt.on_trial_result(t0, _result(it, 0.1)) == "CONTINUE"  # before the interval
    decision = pbt.on_trial_result(t0, _result(4, 0.1))
    assert isinstance(decision, Exploit)
    assert decision.source is t3
    assert decision.config["lr"] in (pytest.approx(0.4 * 1.2), pytest.approx(0.4 * 0.8))
    assert decision.config["batch"] in (16, 64)  # a neighbour of 32
    assert t3.config == {"lr": pytest.approx(0.4), "batch": 32}  # the source is untouched
    [record] = pbt.perturbations
    assert (record.target, record.source) == ("t0", "t3")
    assert record.old_config == {"lr": 0.1, "batch": 32}
    assert record.new_config == decision.config


def test_the_exploiting_trial_inherits_the_source_clock():
    pbt = _pbt()
    t0, t1, t2, t3 = _population(pbt)
    for t, acc in ((t1, 0.5), (t2, 0.6), (t3, 0.9)):
        pbt.on_trial_result(t, _result(4, acc))
    assert isinstance(pbt.on_trial_result(t0, _result(6, 0.1)), Exploit)
    # t0 restarts from t3's checkpoint at iteration 4: its next perturbation is due at 8
    # (with its own clock it would be due at 10).
    assert pbt.on_trial_result(t0, _result(5, 0.0)) == "CONTINUE"
    assert isinstance(pbt.on_trial_result(t0, _result(8, 0.0)), Exploit)


def test_burn_in_and_interval():
    pbt = _pbt(burn_in_period=10, perturbation_interval=1)
    t0, t1 = _population(pbt, 2)
    assert pbt.on_trial_result(t1, _result(5, 0.9)) == "CONTINUE"
    assert pbt.on_trial_result(t0, _result(5, 0.1)) == "CONTINUE"  # still burning in
    pbt.on_trial_result(t1, _result(10, 0.9))
    assert isinstance(pbt.on_trial_result(t0, _result(10, 0.1)), Exploit)


def test_finished_trials_leave_the_ranking():
    pbt = _pbt(quantile_fraction=0.5)
    t0, t1 = _population(pbt, 2)
    pbt.on_trial_result(t1, _result(4, 0.9))
    t1.status = "TERMINATED"
    pbt.on_trial_complete(t1, _result(4, 0.9))
    assert pbt.on_trial_result(t0, _result(4, 0.1)) == "CONTINUE"


def test_others_waiting_makes_the_trial_yield_and_least_trained_runs_first():
    pbt = _pbt()
    t0, t1 = _population(pbt, 2)
    t1.status = "PENDING"
    assert pbt.on_trial_result(t0, _result(4, 0.5)) == "PAUSE"
    t0.status = "PAUSED"
    assert pbt.choose_trial_to_run([t0, t1]) is t1


def test_explore_perturbs_numbers_and_keeps_ints():
    rng = random.Random(0)
    for _ in range(50):
        new = explore({"lr": 0.1, "layers": 10, "name": "x"},
                      {"lr": FakeDomain(0.5), "layers": lambda: 3}, rng,
                      resample_probability=0.0, perturbation_factors=(1.2, 0.8))
        assert new["lr"] in (pytest.approx(0.12), pytest.approx(0.08))
        assert new["layers"] in (12, 8) and isinstance(new["layers"], int)
        assert new["name"] == "x"


def test_explore_list_moves_to_a_neighbour_clamped_at_the_ends():
    rng = random.Random(0)
    seen = {explore({"b": 16}, {"b": [16, 32, 64]}, rng, 0.0, (1.2,))["b"] for _ in range(50)}
    assert seen == {16, 32}
    seen = {explore({"b": 32}, {"b": [16, 32, 64]}, rng, 0.0, (1.2,))["b"] for _ in range(50)}
    assert seen == {16, 64}


def test_explore_resamples_lists_callables_and_domains():
    rng = random.Random(0)
    mutations = {"a": [1, 2, 3], "b": lambda: "fresh", "c": FakeDomain(7.0)}
    for _ in range(20):
        new = explore({"a": 1, "b": 1.0, "c": 1.0}, mutations, rng, 1.0, (1.2,))
        assert new["a"] in (1, 2, 3) and new["b"] == "fresh" and new["c"] == 7.0
    # a value not among the list's values is always resampled
    assert explore({"a": 99}, {"a": [1, 2]}, rng, 0.0, (1.2,))["a"] in (1, 2)


def test_explore_nested_mutations_and_custom_explore_fn():
    rng = random.Random(0)

    def clip(config):
        config["opt"]["lr"] = min(config["opt"]["lr"], 0.11)
        return config

    old = {"opt": {"lr": 0.1, "beta": 0.9}, "other": 1}
    new = explore(old, {"opt": {"lr": lambda: 1.0, "beta": [0.9, 0.99]}}, rng, 0.0, (1.2,),
                  custom_explore_fn=clip)
    assert new == {"opt": {"lr": 0.11, "beta": 0.99}, "other": 1}
    assert old == {"opt": {"lr": 0.1, "beta": 0.9}, "other": 1}
    with pytest.raises(TypeError, match="return the new config"):
        explore(old, {}, rng, 0.0, (1.2,), custom_explore_fn=lambda c: None)


def test_custom_explore_fn_alone_is_enough():
    pbt = PopulationBasedTraining(time_attr="training_iteration", metric="acc", mode="max",
                                  perturbation_interval=1, quantile_fraction=0.5, seed=0,
                                  custom_explore_fn=lambda c: {**c, "lr": c["lr"] / 2})
    t0, t1 = FakeTrial("t0", config={"lr": 1.0}), FakeTrial("t1", config={"lr": 0.4})
    pbt.on_trial_add(t0)
    pbt.on_trial_add(t1)
    pbt.on_trial_result(t1, _result(1, 0.9))
    decision = pbt.on_trial_result(t0, _result(1, 0.1))
    assert decision.source is t1 and decision.config == {"lr": 0.2}


def test_missing_mutated_keys_are_sampled_into_the_config_on_add():
    pbt = _pbt(hyperparam_mutations={"lr": FakeDomain(0.3), "opt": {"beta": [0.5]}})
    trial = FakeTrial("t", config={"other": 1})
    pbt.on_trial_add(trial)
    assert trial.config == {"other": 1, "lr": 0.3, "opt": {"beta": 0.5}}


def test_missing_attrs_raise_unless_require_attrs_is_false():
    pbt = _pbt()
    [t] = _population(pbt, 1)
    with pytest.raises(ValueError, match=r"'acc'.*reported only \['training_iteration'\]"):
        pbt.on_trial_result(t, {"training_iteration": 1})
    lenient = _pbt(require_attrs=False)
    [t] = _population(lenient, 1)
    assert lenient.on_trial_result(t, {"training_iteration": 9}) == "CONTINUE"


@pytest.mark.parametrize("kwargs, error, match", [
    ({"hyperparam_mutations": None}, ValueError, "hyperparam_mutations.*custom_explore_fn"),
    ({"hyperparam_mutations": {}}, ValueError, "hyperparam_mutations.*custom_explore_fn"),
    ({"hyperparam_mutations": [("lr", [1])]}, TypeError, "must be a dict"),
    ({"hyperparam_mutations": {"lr": 0.1}}, TypeError, r"\['lr'\] must be a list"),
    ({"hyperparam_mutations": {"opt": {"lr": "x"}}}, TypeError, r"\['opt'\]\['lr'\]"),
    ({"hyperparam_mutations": {"lr": []}}, ValueError, "empty list"),
    ({"quantile_fraction": 0.6}, ValueError, "quantile_fraction"),
    ({"perturbation_interval": 0}, ValueError, "perturbation_interval"),
    ({"resample_probability": 1.5}, ValueError, "resample_probability"),
    ({"perturbation_factors": ()}, ValueError, "perturbation_factors"),
    ({"synch": True}, NotImplementedError, "synch"),
])
def test_validation(kwargs, error, match):
    base = {"metric": "acc", "mode": "max", "hyperparam_mutations": {"lr": [0.1, 0.2]}}
    with pytest.raises(error, match=match):
        PopulationBasedTraining(**{**base, **kwargs})


def test_seeded_runs_are_reproducible():
    def run():
        pbt = _pbt(quantile_fraction=0.5, resample_probability=0.5)
        trials = _population(pbt, 6)
        decisions = []
        for it in range(4, 40, 4):
            for i, t in enumerate(trials):
                d = pbt.on_trial_result(t, _result(it, (i * 7919 % 13) / 13 + it / 100))
                if isinstance(d, Exploit):
                    t.config = d.config
                    decisions.append((t.trial_id, d.source.trial_id, sorted(d.config.items())))
        return decisions

    first = run()
    assert first and first == run()

"""OptunaSearch (skate/tune/search/optuna.py): space conversion, define-by-run,
warm starts, failure states, save/restore, and a differential test against
Optuna used directly."""

import math

import pytest

optuna = pytest.importorskip("optuna")

from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from skate.tune.search.optuna import OptunaSearch
from skate.tune.search.sample import (
    choice,
    grid_search,
    lograndint,
    loguniform,
    qlograndint,
    qloguniform,
    qrandint,
    quniform,
    randint,
    randn,
    sample_from,
    uniform,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def quadratic(config):
    return (config["x"] - 1.5) ** 2 + (config["y"] + 0.5) ** 2 + 0.1 * config["x"] * config["y"]


def run(search, n, objective=quadratic, start=0):
    configs = []
    for i in range(start, start + n):
        config = search.suggest(f"t{i}")
        configs.append(config)
        search.on_trial_complete(f"t{i}", {"loss": objective(config)})
    return configs


@pytest.mark.parametrize(
    "domain, expected",
    [
        (uniform(-1, 2), FloatDistribution(-1, 2)),
        (quniform(0, 1, 0.25), FloatDistribution(0, 1, step=0.25)),
        (loguniform(1e-4, 1e-1), FloatDistribution(1e-4, 1e-1, log=True)),
        (qloguniform(1, 100, 1), FloatDistribution(1, 100, log=True)),  # Optuna: no log + step
        (randint(0, 10), IntDistribution(0, 9)),  # Tune's upper bound is exclusive
        (qrandint(0, 10, 5), IntDistribution(0, 10, step=5)),  # qrandint's is inclusive
        (qrandint(1, 9, 3), IntDistribution(3, 9, step=3)),
        (lograndint(1, 100), IntDistribution(1, 99, log=True)),
        (qlograndint(10, 100, 10), IntDistribution(10, 100, log=True)),
        (choice(["a", 1, None]), CategoricalDistribution(["a", 1, None])),
    ],
)
def test_each_domain_converts(domain, expected):
    assert OptunaSearch.convert_search_space({"p": domain}) == {"p": expected}


def test_nested_spaces_use_flat_names_and_unflatten_back_with_constants():
    space = {"opt": {"lr": loguniform(1e-4, 1e-1), "name": "adam"}, "n": randint(1, 4), "k": [1]}
    assert set(OptunaSearch.convert_search_space(space)) == {"opt/lr", "n"}
    search = OptunaSearch(space, metric="loss", mode="min", seed=0)
    for config in run(search, 15, objective=lambda c: c["opt"]["lr"] * c["n"]):
        assert set(config) == {"opt", "n", "k"} and config["opt"]["name"] == "adam"
        assert 1e-4 <= config["opt"]["lr"] <= 1e-1 and config["n"] in (1, 2, 3)
        assert config["k"] == [1]


def test_suggestions_stay_in_their_domains():
    space = {"q": quniform(0, 1, 0.25), "i": qrandint(0, 10, 5), "c": choice(["a", "b"])}
    search = OptunaSearch(space, metric="loss", mode="max", seed=1)
    for config in run(search, 20, objective=lambda c: c["q"] + c["i"]):
        assert config["q"] in (0, 0.25, 0.5, 0.75, 1.0)
        assert config["i"] in (0, 5, 10) and isinstance(config["i"], int)
        assert config["c"] in ("a", "b")


@pytest.mark.parametrize(
    "space, match",
    [
        ({"g": grid_search([1, 2])}, "grid"),
        ({"a": {"g": grid_search([1, 2])}}, "grid at `a/g`"),
        ({"n": randn(0, 1)}, "normal"),
        ({"f": sample_from(lambda spec: 1)}, "sample_from"),
        ({"l": [uniform(0, 1)]}, "inside a list"),
        ({"a/b": uniform(0, 1)}, "delimiter"),
    ],
)
def test_unconvertible_spaces_raise_clear_errors(space, match):
    with pytest.raises(ValueError, match=match):
        OptunaSearch(space, metric="loss", mode="min")
    search = OptunaSearch(metric="loss", mode="min")
    with pytest.raises(ValueError, match=match):
        search.set_search_properties(None, None, space)


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        OptunaSearch({"x": uniform(0, 1)}, metric="loss", mode="minimize")
    with pytest.raises(ValueError, match="mode"):
        OptunaSearch(metric="loss").set_search_properties(None, "best", {"x": uniform(0, 1)})
    with pytest.raises(TypeError, match="sampler"):
        OptunaSearch(sampler="tpe")
    with pytest.raises(TypeError, match="space"):
        OptunaSearch(space=5)
    with pytest.raises(ValueError, match="evaluated_rewards"):
        OptunaSearch(points_to_evaluate=[{"x": 1}], evaluated_rewards=[1, 2])


def test_missing_space_or_mode_say_what_to_do():
    with pytest.raises(RuntimeError, match="search space"):
        OptunaSearch(metric="loss", mode="min").suggest("t")
    with pytest.raises(RuntimeError, match="TuneConfig"):
        OptunaSearch({"x": uniform(0, 1)}, metric="loss").suggest("t")


def test_space_from_set_search_properties():
    search = OptunaSearch(seed=0)
    assert search.set_search_properties("loss", "max", {"x": uniform(0, 1), "c": 1}) is True
    assert search.metric == "loss" and search.mode == "max"
    assert search._study.direction == optuna.study.StudyDirection.MAXIMIZE
    config = search.suggest("t0")
    assert set(config) == {"x", "c"}


def test_a_searcher_with_a_space_keeps_it_but_adopts_a_missing_metric_and_mode():
    search = OptunaSearch({"x": uniform(0, 1)}, seed=0)
    assert search.set_search_properties("loss", "min", {"y": uniform(0, 1)}) is False
    assert search.metric == "loss" and search.mode == "min"
    assert set(search.suggest("t0")) == {"x"}


def test_mode_without_metric_uses_rays_default_metric():
    search = OptunaSearch({"x": uniform(0, 1)}, mode="min")
    assert search.metric == "_metric"


def test_dict_of_optuna_distributions():
    space = {"x": FloatDistribution(-2, 2), "n": IntDistribution(1, 3)}
    search = OptunaSearch(space, metric="loss", mode="min", seed=0)
    for config in run(search, 5, objective=lambda c: c["x"] ** 2 + c["n"]):
        assert -2 <= config["x"] <= 2 and config["n"] in (1, 2, 3)


def test_define_by_run_function_with_constants():
    def space(trial):
        kind = trial.suggest_categorical("kind", ["lin", "quad"])
        if kind == "quad":
            trial.suggest_float("model/a", -1, 1)
        return {"fixed": 3, "model/b": 2}

    search = OptunaSearch(space, metric="loss", mode="min", seed=0)
    configs = run(search, 12, objective=lambda c: c["model"].get("a", 0) ** 2)
    for config in configs:
        assert config["fixed"] == 3 and config["model"]["b"] == 2
        assert ("a" in config["model"]) == (config["kind"] == "quad")
    assert {c["kind"] for c in configs} == {"lin", "quad"}


def test_define_by_run_must_return_a_dict_or_none():
    search = OptunaSearch(lambda trial: 5, metric="loss", mode="min")
    with pytest.raises(TypeError, match="None or a dict"):
        search.suggest("t0")
    with pytest.raises(TypeError, match="define-by-run"):
        OptunaSearch(lambda trial: None, metric="loss", mode="min").add_evaluated_point({}, 1.0)


def test_points_to_evaluate_are_suggested_first():
    points = [{"x": 0.25, "opt": {"lr": 0.01}}, {"x": 0.75, "opt": {"lr": 0.001}}]
    space = {"x": uniform(0, 1), "opt": {"lr": loguniform(1e-4, 1e-1)}}
    search = OptunaSearch(space, metric="loss", mode="min", points_to_evaluate=points, seed=0)
    configs = run(search, 3, objective=lambda c: c["x"])
    assert configs[:2] == points and configs[2] not in points


def test_evaluated_rewards_become_finished_trials():
    points = [{"x": 0.2}, {"x": 0.4}]
    search = OptunaSearch(
        {"x": uniform(0, 1)},
        metric="loss",
        mode="min",
        points_to_evaluate=points,
        evaluated_rewards=[3.0, 1.0],
    )
    trials = search._study.trials
    assert [t.params for t in trials] == points and [t.value for t in trials] == [3.0, 1.0]
    assert search._study.best_value == 1.0
    search.add_evaluated_point({"x": 0.9}, 0.5, intermediate_values=[2.0, 1.0])
    assert search._study.best_value == 0.5
    assert search._study.trials[-1].intermediate_values == {0: 2.0, 1: 1.0}
    with pytest.raises(ValueError, match="lacks"):
        search.add_evaluated_point({"y": 1}, 1.0)


def test_completion_states_and_intermediate_results():
    search = OptunaSearch({"x": uniform(0, 1)}, metric="loss", mode="min", seed=0)
    for i in range(5):
        search.suggest(f"t{i}")
    search.on_trial_result("t0", {"loss": 2.0, "training_iteration": 1})
    search.on_trial_result("t0", {"loss": 1.0})  # no training_iteration: counted
    search.on_trial_complete("t0", {"loss": 1.0})
    search.on_trial_complete("t1", None, error=True)
    search.on_trial_complete("t2", {"other": 1.0})  # metric missing: pruned
    search.on_trial_complete("t3", {"loss": math.nan})
    search.on_trial_complete("t4", {"loss": 5.0}, error=True)
    search.on_trial_complete("t4", {"loss": 5.0})  # twice: ignored
    search.on_trial_complete("never", {"loss": 5.0})  # unknown: ignored
    states = [t.state for t in search._study.trials]
    assert states == [
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.PRUNED,
        TrialState.FAIL,
        TrialState.FAIL,
    ]
    assert search._study.trials[0].intermediate_values == {1: 2.0, 2: 1.0}


def test_multi_objective():
    search = OptunaSearch({"x": uniform(0, 1)}, metric=["a", "b"], mode=["min", "max"], seed=0)
    search.suggest("m")
    search.on_trial_complete("m", {"a": 1.0, "b": 2.0})
    assert search._study.trials[-1].values == [1.0, 2.0]
    with pytest.raises(ValueError, match="same length"):
        OptunaSearch(metric="a", mode=["min", "max"])


def test_save_and_restore_continue_the_same_study(tmp_path):
    space = {"x": uniform(-3, 3), "y": uniform(-3, 3)}
    search = OptunaSearch(space, metric="loss", mode="min", seed=3)
    run(search, 12)
    live = search.suggest("live")  # suggested before the save, completed after
    search.save(str(tmp_path / "optuna.pkl"))
    restored = OptunaSearch(space, metric="loss", mode="min", seed=99)
    restored.restore(str(tmp_path / "optuna.pkl"))
    for s in (search, restored):
        s.on_trial_complete("live", {"loss": quadratic(live)})
    assert run(restored, 8, start=20) == run(search, 8, start=20)
    assert len(restored._study.trials) == 21
    assert restored._study.best_value == search._study.best_value


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_differential_against_optuna_used_directly(seed):
    n_trials = 25  # past TPE's 10 random start-up trials
    # OptunaSearch's default sampler, TPE seeded with `seed`
    search = OptunaSearch(
        {"x": uniform(-4, 4), "y": uniform(-4, 4)}, metric="loss", mode="min", seed=seed
    )
    ours = run(search, n_trials)

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(
        lambda t: quadratic({"x": t.suggest_float("x", -4, 4), "y": t.suggest_float("y", -4, 4)}),
        n_trials=n_trials,
    )
    assert [t.params for t in study.trials] == ours
    assert search._study.best_value == study.best_value
    assert search._study.best_params == study.best_params


def test_default_sampler_is_tpe_seeded_with_seed():
    a = run(
        OptunaSearch({"x": uniform(0, 1)}, metric="loss", mode="min", seed=5),
        12,
        objective=lambda c: c["x"],
    )
    b = run(
        OptunaSearch({"x": uniform(0, 1)}, metric="loss", mode="min", seed=5),
        12,
        objective=lambda c: c["x"],
    )
    assert a == b
    search = OptunaSearch({"x": uniform(0, 1)}, metric="loss", mode="min")
    assert isinstance(search._study.sampler, optuna.samplers.TPESampler)

"""skate.tune.stopper: every stopper, make_stopper, and their errors."""

from __future__ import annotations

import datetime
import doctest

import pytest

from skate.tune import stopper as stopper_module
from skate.tune.stopper import (
    CombinedStopper,
    DictStopper,
    ExperimentPlateauStopper,
    FunctionStopper,
    MaximumIterationStopper,
    NoopStopper,
    Stopper,
    TimeoutStopper,
    TrialPlateauStopper,
    make_stopper,
)

pytestmark = pytest.mark.skate_only


def _result(it, **metrics):
    return {"training_iteration": it, "time_total_s": float(it), "time_this_iter_s": 1.0,
            "trial_id": "t", **metrics}


class Counting(Stopper):
    def __init__(self, stop_at=None):
        self.calls = 0
        self.stop_all_calls = 0
        self.stop_at = stop_at

    def __call__(self, trial_id, result):
        self.calls += 1
        return self.calls == self.stop_at

    def stop_all(self):
        self.stop_all_calls += 1
        return False


def test_base_stopper_must_be_implemented():
    with pytest.raises(NotImplementedError):
        Stopper()("t", {})
    with pytest.raises(NotImplementedError):
        Stopper().stop_all()


def test_dict_stopper_stops_when_any_threshold_is_reached():
    stop = DictStopper({"training_iteration": 5, "mean_accuracy": 0.9})
    assert stop("t", _result(1, mean_accuracy=0.5)) is False
    assert stop("t", _result(5, mean_accuracy=0.5)) is True
    assert stop("t", _result(1, mean_accuracy=0.9)) is True
    assert stop.stop_all() is False


def test_dict_stopper_missing_key_names_it_and_the_reported_keys():
    stop = DictStopper({"mean_acuracy": 0.9})  # a typo
    with pytest.raises(ValueError, match=r"'mean_acuracy'.*trial t1.*\['mean_accuracy', "
                                         r"'time_this_iter_s', 'time_total_s', "
                                         r"'training_iteration', 'trial_id'\]"):
        stop("t1", _result(1, mean_accuracy=0.5))


def test_dict_stopper_nested_keys_use_slashes():
    stop = DictStopper({"eval/acc": 0.9})
    assert stop("t", {"eval": {"acc": 0.95}}) is True
    assert stop("t", {"eval/acc": 0.5}) is False  # an already flattened result works too
    with pytest.raises(TypeError, match="slashes"):
        DictStopper({"eval": {"acc": 0.9}})


def test_function_stopper_and_its_checks():
    stop = FunctionStopper(lambda trial_id, result: result["loss"] < 0.1)
    assert stop("t", {"loss": 0.05}) is True
    assert stop("t", {"loss": 0.5}) is False
    assert stop.stop_all() is False
    with pytest.raises(TypeError, match=r"two\s+arguments"):
        FunctionStopper(lambda result: True)
    with pytest.raises(TypeError, match="needs a function"):
        FunctionStopper(3)


def test_maximum_iteration_stopper_counts_results_per_trial():
    stop = MaximumIterationStopper(max_iter=3)
    assert [stop("a", {}) for _ in range(3)] == [False, False, True]
    assert stop("b", {}) is False
    with pytest.raises(ValueError, match="max_iter"):
        MaximumIterationStopper(0)


def test_trial_plateau_stopper():
    stop = TrialPlateauStopper("loss", std=0.01, num_results=3, grace_period=4)
    values = [0.9, 0.5, 0.5, 0.5, 0.5]
    # Plateaued from the 4th result, but the grace period lasts until the 4th.
    assert [stop("a", {"loss": v}) for v in values] == [False, False, False, True, True]
    assert stop("b", {"loss": 0.5}) is False  # per trial
    with pytest.raises(ValueError, match=r"'loss'.*\['acc'\]"):
        stop("a", {"acc": 1})


def test_trial_plateau_stopper_threshold():
    stop = TrialPlateauStopper("loss", std=0.01, num_results=2, grace_period=1,
                               metric_threshold=0.1, mode="min")
    assert [stop("a", {"loss": v}) for v in (0.5, 0.5, 0.05, 0.05)] == [
        False, False, False, True]
    with pytest.raises(ValueError, match="mode"):
        TrialPlateauStopper("loss", metric_threshold=0.1)


def test_experiment_plateau_stopper_with_patience():
    # As in Ray, patience counts consecutive plateaued results, this one included.
    stop = ExperimentPlateauStopper("loss", std=0.01, top=3, mode="min", patience=2)
    assert stop("a", {"loss": 0.5}) is False
    assert stop("b", {"loss": 0.2}) is False
    assert stop("c", {"loss": 0.21}) is False  # top 3: .2 .21 .5 — spread too wide
    assert stop("a", {"loss": 0.2}) is False  # top 3: .2 .2 .21 plateaued, 1 of 2
    assert stop.stop_all() is False
    assert stop("b", {"loss": 0.9}) is True  # still plateaued, 2 of 2
    assert stop.stop_all() is True
    eager = ExperimentPlateauStopper("loss", std=0.01, top=2, mode="max")
    assert [eager("a", {"loss": v}) for v in (0.1, 0.5, 0.5)] == [False, False, True]


@pytest.mark.parametrize("kwargs, match", [
    ({"mode": "up"}, "mode"), ({"top": 1}, "top"), ({"patience": -1}, "patience"),
    ({"std": 0}, "std")])
def test_experiment_plateau_stopper_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ExperimentPlateauStopper("loss", **kwargs)


def test_timeout_stopper_with_a_fake_clock():
    now = [100.0]
    stop = TimeoutStopper(10, _time_fn=lambda: now[0])
    assert stop("t", {}) is False
    now[0] = 500.0  # setup time before the first check does not count
    assert stop.stop_all() is False
    now[0] = 509.0
    assert stop.stop_all() is False
    now[0] = 510.0
    assert stop.stop_all() is True
    assert stop.stop_all() is True


def test_timeout_stopper_accepts_timedelta_and_rejects_other_types():
    now = [0.0]
    stop = TimeoutStopper(datetime.timedelta(minutes=1), _time_fn=lambda: now[0])
    stop.stop_all()
    now[0] = 59.0
    assert stop.stop_all() is False
    now[0] = 60.0
    assert stop.stop_all() is True
    with pytest.raises(TypeError, match="timedelta"):
        TimeoutStopper("60")


def test_combined_stopper_asks_every_stopper():
    first, second = Counting(stop_at=1), Counting()
    stop = CombinedStopper(first, second)
    assert stop("t", {}) is True
    assert second.calls == 1  # not short-circuited: counting stoppers stay right
    assert stop.stop_all() is False
    assert (first.stop_all_calls, second.stop_all_calls) == (1, 1)
    with pytest.raises(TypeError, match="FunctionStopper"):
        CombinedStopper(lambda trial_id, result: True)


def test_noop_stopper():
    assert NoopStopper()("t", {}) is False
    assert NoopStopper().stop_all() is False


def test_make_stopper():
    assert isinstance(make_stopper(None), NoopStopper)
    custom = Counting()
    assert make_stopper(custom) is custom
    assert isinstance(make_stopper({"training_iteration": 2}), DictStopper)
    fn_stop = make_stopper(lambda trial_id, result: result["training_iteration"] >= 2)
    assert isinstance(fn_stop, FunctionStopper)
    assert fn_stop("t", _result(2)) is True
    combined = make_stopper([MaximumIterationStopper(1), Counting()])
    assert isinstance(combined, CombinedStopper) and combined("t", {}) is True


@pytest.mark.parametrize("bad, error, match", [
    (5, TypeError, "stop must be None, a dict"),
    ("training_iteration", TypeError, "stop must be None, a dict"),
    ([{"training_iteration": 1}], TypeError, "Stopper instances only"),
    (type("Almost", (), {"__call__": lambda s, t, r: False, "stop_all": lambda s: False})(),
     ValueError, "subclass"),
])
def test_make_stopper_errors(bad, error, match):
    with pytest.raises(error, match=match):
        make_stopper(bad)


def test_docstring_examples_run():
    result = doctest.testmod(stopper_module)
    assert result.attempted > 0 and result.failed == 0

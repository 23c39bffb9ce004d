"""AsyncHyperBandScheduler / ASHAScheduler: rungs, cutoffs, max_t, brackets."""

from __future__ import annotations

import collections

import pytest
from scheduler_fakes import FakeTrial
from scheduler_fakes import result as _result

from skate.tune.schedulers import ASHAScheduler, AsyncHyperBandScheduler

pytestmark = pytest.mark.skate_only




def _milestones(scheduler, bracket=0):
    return [m for m, _ in scheduler._brackets[bracket].rungs]


def test_alias_and_rungs():
    assert ASHAScheduler is AsyncHyperBandScheduler
    assert _milestones(ASHAScheduler(metric="a", mode="max")) == [64, 16, 4, 1]
    s = ASHAScheduler(metric="a", mode="max", max_t=81, grace_period=1, reduction_factor=3,
                      brackets=3)
    assert _milestones(s, 0) == [81, 27, 9, 3, 1]  # float-safe: log(81)/log(3) is not exact
    assert _milestones(s, 1) == [81, 27, 9, 3]
    assert _milestones(s, 2) == [81, 27, 9]


def test_exactly_the_trials_below_the_top_quantile_stop_at_each_rung():
    # rf=2: a newcomer at a rung must reach the median of those recorded there so far.
    s = ASHAScheduler(metric="acc", mode="max", max_t=8, grace_period=1, reduction_factor=2)
    curves = {"a": 0.9, "b": 0.5, "c": 0.6, "d": 0.1, "e": 0.8}
    trials = {name: FakeTrial(name) for name in curves}
    for t in trials.values():
        s.on_trial_add(t)

    def report(name, it):
        return s.on_trial_result(trials[name], _result(it, curves[name] + it / 100))

    # Rung 1, arrivals in order a b c d e: cutoffs None, .91, .71, .61, .56
    assert [report(n, 1) for n in "abcde"] == [
        "CONTINUE", "STOP", "STOP", "STOP", "CONTINUE"]
    # Rung 2: only a and e reached it; e (0.82) is below a (0.92).
    assert report("a", 2) == "CONTINUE"
    assert report("e", 2) == "STOP"
    # Between rungs nothing is judged again.
    assert report("a", 3) == "CONTINUE"
    assert report("a", 4) == "CONTINUE"  # first at rung 4
    assert report("a", 7) == "CONTINUE"
    assert report("a", 8) == "STOP"  # max_t


def test_min_mode_inverts_the_comparison():
    s = ASHAScheduler(metric="loss", mode="min", max_t=10, grace_period=1, reduction_factor=2)
    good, bad = FakeTrial("good"), FakeTrial("bad")
    s.on_trial_add(good)
    s.on_trial_add(bad)
    assert s.on_trial_result(good, {**_result(1, 0), "loss": 0.1}) == "CONTINUE"
    assert s.on_trial_result(bad, {**_result(1, 0), "loss": 5.0}) == "STOP"


def test_a_trial_jumping_past_rungs_is_judged_at_the_highest_one_reached():
    s = ASHAScheduler(metric="acc", mode="max", max_t=100, grace_period=1, reduction_factor=4)
    a, b = FakeTrial("a"), FakeTrial("b")
    s.on_trial_add(a)
    s.on_trial_add(b)
    assert s.on_trial_result(a, _result(20, 0.9)) == "CONTINUE"  # recorded at 16 only
    assert s.on_trial_result(b, _result(1, 0.1)) == "CONTINUE"  # rung 1 is empty
    assert s.on_trial_result(b, _result(16, 0.1)) == "STOP"  # judged against a at 16


def test_completed_trials_results_count_at_their_rung():
    s = ASHAScheduler(metric="acc", mode="max", max_t=10, grace_period=1, reduction_factor=2)
    a, b = FakeTrial("a"), FakeTrial("b")
    s.on_trial_add(a)
    s.on_trial_add(b)
    s.on_trial_complete(a, {**_result(1, 0.9), "done": True})  # finished before reporting
    assert s.on_trial_result(b, _result(1, 0.5)) == "STOP"


def test_stop_last_trials_false_lets_trials_run_past_max_t():
    s = ASHAScheduler(metric="acc", mode="max", max_t=4, grace_period=1, reduction_factor=2,
                      stop_last_trials=False)
    a = FakeTrial("a")
    s.on_trial_add(a)
    for it in range(1, 10):
        assert s.on_trial_result(a, _result(it, 0.5)) == "CONTINUE"


def test_brackets_are_drawn_with_softmax_weights_and_seeded():
    def draw(seed):
        s = ASHAScheduler(metric="a", mode="max", max_t=81, grace_period=1,
                          reduction_factor=3, brackets=3, seed=seed)
        for i in range(3000):
            s.on_trial_add(FakeTrial(str(i)))
        return collections.Counter(s._bracket_of.values())

    counts = draw(0)
    assert counts == draw(0)
    # weights e**0 : e**-1 : e**-2 for 5, 4, 3 rungs
    assert counts[0] > counts[1] > counts[2] > 0
    assert abs(counts[0] / 3000 - 0.665) < 0.05


def test_argument_validation():
    for kwargs, match in [({"max_t": 0}, "max_t"), ({"grace_period": 0}, "grace_period"),
                          ({"reduction_factor": 1}, "reduction_factor"),
                          ({"brackets": 0}, "brackets")]:
        with pytest.raises(ValueError, match=match):
            ASHAScheduler(metric="a", mode="max", **kwargs)


def test_missing_time_attr_is_named():
    s = ASHAScheduler(time_attr="epoch", metric="acc", mode="max")
    t = FakeTrial("a")
    s.on_trial_add(t)
    with pytest.raises(ValueError, match=r"'epoch' \(its time_attr\).*\['acc', 'time_"):
        s.on_trial_result(t, _result(1, 0.5))

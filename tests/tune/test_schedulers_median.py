"""MedianStoppingRule: grace period, min samples, best-vs-median, yielding, soft stop."""

from __future__ import annotations

import pytest
from scheduler_fakes import FakeTrial
from scheduler_fakes import result as _result

from skate.tune.schedulers import MedianStoppingRule

pytestmark = pytest.mark.skate_only




def _rule(**kwargs):
    kwargs = {"time_attr": "training_iteration", "metric": "acc", "mode": "max",
              "grace_period": 3, "min_samples_required": 2, **kwargs}
    return MedianStoppingRule(**kwargs)


def _add(rule, *names, status="RUNNING"):
    trials = [FakeTrial(n, status=status) for n in names]
    for t in trials:
        rule.on_trial_add(t)
    return trials


def test_a_clearly_bad_trial_stops_after_the_grace_period_not_before():
    rule = _rule()
    good1, good2, bad = _add(rule, "g1", "g2", "bad")
    for it in range(1, 6):
        assert rule.on_trial_result(good1, _result(it, 0.8)) == "CONTINUE"
        assert rule.on_trial_result(good2, _result(it, 0.9)) == "CONTINUE"
    assert rule.on_trial_result(bad, _result(1, 0.1)) == "CONTINUE"
    assert rule.on_trial_result(bad, _result(2, 0.1)) == "CONTINUE"  # in the grace period
    assert rule.on_trial_result(bad, _result(3, 0.1)) == "STOP"


def test_no_judgement_before_min_samples_other_trials_reached_the_same_time():
    rule = _rule(min_samples_required=2)
    good, bad = _add(rule, "g", "bad")
    for it in range(1, 6):
        rule.on_trial_result(good, _result(it, 0.9))
    for it in range(1, 6):  # only one other trial to compare with
        assert rule.on_trial_result(bad, _result(it, 0.1)) == "CONTINUE"


def test_best_so_far_is_compared_with_the_others_running_averages():
    rule = _rule(grace_period=1)
    a, b, c = _add(rule, "a", "b", "c")
    for it, (va, vb) in enumerate([(0.2, 0.3), (0.4, 0.5), (0.6, 0.7)], start=1):
        rule.on_trial_result(a, _result(it, va))
        rule.on_trial_result(b, _result(it, vb))
    # At t=3 the running averages are 0.4 and 0.5: median 0.45. c's best is 0.5.
    assert rule.on_trial_result(c, _result(1, 0.5)) == "CONTINUE"
    assert rule.on_trial_result(c, _result(2, 0.1)) == "CONTINUE"
    assert rule.on_trial_result(c, _result(3, 0.1)) == "CONTINUE"  # best 0.5 >= 0.45
    # At t=3 the running averages of a, b, c are 0.4, 0.5, 0.233: median 0.4.
    d = _add(rule, "d")[0]
    assert rule.on_trial_result(d, _result(3, 0.41)) == "CONTINUE"
    e = _add(rule, "e")[0]
    assert rule.on_trial_result(e, _result(3, 0.39)) == "STOP"


def test_trials_without_results_in_the_window_are_not_samples():
    # a jumped from before the grace period to past t: it has no average at t.
    rule = _rule(grace_period=2, min_samples_required=1)
    a, b = _add(rule, "a", "b")
    rule.on_trial_result(a, _result(1, 0.9))
    rule.on_trial_result(a, _result(5, 0.9))
    assert rule.on_trial_result(b, _result(3, 0.1)) == "CONTINUE"


def test_min_mode():
    rule = _rule(metric="loss", mode="min", grace_period=1)
    a, b, bad = _add(rule, "a", "b", "bad")
    rule.on_trial_result(a, {**_result(1, 0), "loss": 1.0})
    rule.on_trial_result(b, {**_result(1, 0), "loss": 1.5})
    assert rule.on_trial_result(bad, {**_result(1, 0), "loss": 9.0}) == "STOP"


def test_completed_trials_keep_counting():
    rule = _rule(grace_period=1)
    a, b, bad = _add(rule, "a", "b", "bad")
    for it in range(1, 4):
        rule.on_trial_result(a, _result(it, 0.9))
        rule.on_trial_result(b, _result(it, 0.8))
    rule.on_trial_complete(a, {**_result(4, 0.9), "done": True})
    rule.on_trial_complete(b, {**_result(4, 0.8), "done": True})
    assert rule.on_trial_result(bad, _result(2, 0.1)) == "STOP"


def test_soft_stop_pauses_once_then_runs_fifo():
    rule = _rule(hard_stop=False, grace_period=1)
    a, b, bad = _add(rule, "a", "b", "bad")
    for it in range(1, 4):
        rule.on_trial_result(a, _result(it, 0.9))
        rule.on_trial_result(b, _result(it, 0.9))
    assert rule.on_trial_result(bad, _result(1, 0.1)) == "PAUSE"
    bad.status = "PAUSED"
    assert rule.choose_trial_to_run([bad]) is bad  # resumed when nothing else waits
    bad.status = "RUNNING"
    assert rule.on_trial_result(bad, _result(2, 0.1)) == "CONTINUE"


def test_yields_to_waiting_trials_while_it_cannot_be_judged():
    rule = _rule(grace_period=1, min_time_slice=2)
    runner = _add(rule, "runner")[0]
    waiting = _add(rule, "waiting", status="PENDING")[0]
    assert rule.on_trial_result(runner, _result(1, 0.5)) == "PAUSE"
    assert rule.on_trial_result(runner, _result(2, 0.5)) == "CONTINUE"  # within the slice
    assert rule.on_trial_result(runner, _result(3, 0.5)) == "CONTINUE"
    assert rule.on_trial_result(runner, _result(4, 0.5)) == "PAUSE"
    waiting.status = "TERMINATED"
    assert rule.on_trial_result(runner, _result(8, 0.5)) == "CONTINUE"  # nobody waits


def test_argument_validation():
    with pytest.raises(ValueError, match="min_samples_required"):
        _rule(min_samples_required=0)
    with pytest.raises(ValueError, match="grace_period"):
        _rule(grace_period=-1)

"""HyperBandScheduler: bracket filling, pausing at milestones, halving, promotion."""

from __future__ import annotations

import dataclasses

import pytest
from scheduler_fakes import result as _result

from skate.tune.schedulers import HyperBandScheduler

pytestmark = pytest.mark.skate_only


@dataclasses.dataclass(eq=False)
class FakeTrial:
    trial_id: str
    config: dict = dataclasses.field(default_factory=dict)
    status: str = "PENDING"
    last_result: dict = dataclasses.field(default_factory=dict)
    checkpoint: object = None



def _scheduler(**kwargs):
    # max_t=9, eta=3: a band is bracket s=0 (3 trials, to 9), s=1 (5 trials, first
    # judged at 3), s=2 (9 trials, first judged at 1).
    return HyperBandScheduler(metric="acc", mode="max", max_t=9, reduction_factor=3, **kwargs)


def _add(s, names):
    trials = {n: FakeTrial(n) for n in names}
    for t in trials.values():
        s.on_trial_add(t)
    return trials


def _second_bracket(s, scores):
    """Fill bracket s=0 with fillers, then bracket s=1 with trials scoring ``scores``."""
    fillers = _add(s, ["f0", "f1", "f2"])
    trials = _add(s, list(scores))
    return fillers, trials


def _run_to(s, trial, scores, start, stop):
    """Report iterations start..stop; return the decisions."""
    trial.status = "RUNNING"
    decisions = [s.on_trial_result(trial, _result(it, scores[trial.trial_id]))
                 for it in range(start, stop + 1)]
    if decisions[-1] == "PAUSE":
        trial.status = "PAUSED"
    elif decisions[-1] == "STOP":
        trial.status = "TERMINATED"
    return decisions


def test_brackets_fill_in_order_and_bands_repeat():
    s = _scheduler()
    _add(s, [f"t{i}" for i in range(3 + 5 + 9 + 1)])
    shape = [[(len(b.live), b.n, b.r) for b in band] for band in s._bands]
    assert shape == [[(3, 3, 9), (5, 5, 3), (9, 9, 1)], [(1, 3, 9)]]
    big = HyperBandScheduler(metric="acc", mode="max")  # Ray's defaults: max_t=81, eta=3
    _add(big, [str(i) for i in range(5 + 8 + 15 + 34 + 81)])
    assert [(b.n, b.r) for b in big._bands[0]] == [(5, 81), (8, 27), (15, 9), (34, 3), (81, 1)]


def test_trials_pause_at_the_milestone_then_the_bracket_halves():
    s = _scheduler()
    scores = {"t0": 0.1, "t1": 0.9, "t2": 0.3, "t3": 0.4, "t4": 0.8}
    _, trials = _second_bracket(s, scores)
    for name in ["t0", "t1", "t2", "t3"]:
        assert _run_to(s, trials[name], scores, 1, 3) == ["CONTINUE", "CONTINUE", "PAUSE"]
    # Waiting for t4: a paused trial is not handed back.
    assert s.choose_trial_to_run([trials[n] for n in ["t0", "t1", "t2", "t3"]]) is None
    assert s.pop_trials_to_stop() == []
    # t4 arrives last: the best ceil(5/3)=2 (t1, t4) go on to 9, the others stop.
    assert _run_to(s, trials["t4"], scores, 1, 3) == ["CONTINUE", "CONTINUE", "CONTINUE"]
    assert sorted(s.pop_trials_to_stop()) == ["t0", "t2", "t3"]
    assert s.pop_trials_to_stop() == []  # handed out once
    for name in ["t0", "t2", "t3"]:
        trials[name].status = "TERMINATED"
        s.on_trial_complete(trials[name], {**_result(3, scores[name]), "done": True})
    assert s.choose_trial_to_run([trials["t1"]]) is trials["t1"]
    # After the last halving, reaching the milestone (max_t) stops a trial.
    assert _run_to(s, trials["t1"], scores, 4, 9) == ["CONTINUE"] * 5 + ["STOP"]
    assert _run_to(s, trials["t4"], scores, 4, 9) == ["CONTINUE"] * 5 + ["STOP"]


def test_the_reporting_trial_itself_stops_when_it_loses():
    s = _scheduler()
    scores = {"t0": 0.9, "t1": 0.8, "t2": 0.3, "t3": 0.4, "t4": 0.1}
    _, trials = _second_bracket(s, scores)
    for name in ["t0", "t1", "t2", "t3"]:
        _run_to(s, trials[name], scores, 1, 3)
    assert _run_to(s, trials["t4"], scores, 1, 3)[-1] == "STOP"
    assert sorted(s.pop_trials_to_stop()) == ["t2", "t3"]  # t4 got its STOP directly
    assert s.choose_trial_to_run([trials["t0"], trials["t2"]]) is trials["t0"]
    # A late result from a trial already judged is answered with STOP.
    assert s.on_trial_result(trials["t2"], _result(4, 0.3)) == "STOP"


def test_min_mode_keeps_the_smallest():
    s = HyperBandScheduler(metric="loss", mode="min", max_t=9, reduction_factor=3)
    scores = {"t0": 0.1, "t1": 0.9, "t2": 0.3, "t3": 0.4, "t4": 0.8}
    _add(s, ["f0", "f1", "f2"])
    trials = _add(s, list(scores))
    for name, loss in scores.items():
        trials[name].status = "RUNNING"
        for it in (1, 2, 3):
            decision = s.on_trial_result(trials[name], {**_result(it, 0), "loss": loss})
        if decision == "PAUSE":
            trials[name].status = "PAUSED"
    assert decision == "STOP"  # t4 (0.8) is not among the 2 smallest
    assert sorted(s.pop_trials_to_stop()) == ["t1", "t3"]


def test_a_failed_trial_no_longer_holds_its_bracket_back():
    s = _scheduler()
    scores = {"t0": 0.1, "t1": 0.9, "t2": 0.3, "t3": 0.4, "t4": 0.8}
    _, trials = _second_bracket(s, scores)
    for name in ["t0", "t1", "t2", "t3"]:
        _run_to(s, trials[name], scores, 1, 3)
    _run_to(s, trials["t4"], scores, 1, 1)
    trials["t4"].status = "ERROR"
    s.on_trial_error(trials["t4"])
    # The four paused trials are now the whole bracket: keep ceil(5/3)=2 of them.
    assert sorted(s.pop_trials_to_stop()) == ["t0", "t2"]
    paused = [trials[n] for n in ["t1", "t3"]]
    assert s.choose_trial_to_run(paused) in paused


def test_stopped_trials_are_not_left_paused_if_the_controller_does_not_drain_them():
    s = _scheduler()
    scores = {"t0": 0.1, "t1": 0.9, "t2": 0.3, "t3": 0.4, "t4": 0.8}
    _, trials = _second_bracket(s, scores)
    for name in scores:
        _run_to(s, trials[name], scores, 1, 3)
    # No pop_trials_to_stop() call. t1 (promoted) goes first; a loser only as a last resort.
    losers = [trials[n] for n in ["t0", "t2", "t3"]]
    assert s.choose_trial_to_run([trials["t1"], *losers]) is trials["t1"]
    chosen = s.choose_trial_to_run(losers)
    assert chosen in losers
    chosen.status = "RUNNING"
    assert s.on_trial_result(chosen, _result(4, scores[chosen.trial_id])) == "STOP"


def test_pending_trials_run_before_paused_ones_and_least_complete_bracket_first():
    s = _scheduler()
    scores = {"t0": 0.5, "t1": 0.5, "t2": 0.5, "t3": 0.5, "t4": 0.5}
    fillers, trials = _second_bracket(s, scores)
    _run_to(s, trials["t0"], scores, 1, 3)
    waiting = [trials["t0"], trials["t1"], fillers["f0"]]
    # Bracket s=0 has made no progress yet, so its PENDING trial goes first.
    assert s.choose_trial_to_run(waiting) is fillers["f0"]
    assert s.choose_trial_to_run([trials["t0"], trials["t1"]]) is trials["t1"]


def test_first_bracket_stops_trials_at_max_t_without_pausing():
    s = _scheduler()
    trials = _add(s, ["a", "b", "c"])
    scores = {"a": 0.5, "b": 0.6, "c": 0.7}
    assert _run_to(s, trials["a"], scores, 1, 9) == ["CONTINUE"] * 8 + ["STOP"]
    assert s.pop_trials_to_stop() == []


def test_stop_last_trials_false_lets_the_survivors_run_on():
    s = _scheduler(stop_last_trials=False)
    scores = {"t0": 0.1, "t1": 0.9, "t2": 0.3, "t3": 0.4, "t4": 0.8}
    _, trials = _second_bracket(s, scores)
    for name in scores:
        _run_to(s, trials[name], scores, 1, 3)
    assert sorted(s.pop_trials_to_stop()) == ["t0", "t2", "t3"]
    assert _run_to(s, trials["t4"], scores, 4, 20) == ["CONTINUE"] * 17


def test_adding_a_known_trial_again_keeps_its_place():
    s = _scheduler()
    trials = _add(s, ["a", "b"])
    s.on_trial_add(trials["a"])
    assert [len(b.live) for b in s._bands[0]] == [2]


def test_argument_validation():
    with pytest.raises(ValueError, match="max_t"):
        HyperBandScheduler(metric="a", mode="max", max_t=0)
    with pytest.raises(ValueError, match="reduction_factor"):
        HyperBandScheduler(metric="a", mode="max", reduction_factor=1)

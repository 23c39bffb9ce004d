"""The TrialScheduler contract, checked for every scheduler.

A small fake controller drives each scheduler with random result streams
(seeded), applying its decisions the way the real controller does; the
checks are the spec in ``TrialScheduler``'s docstring: decisions are always
valid, lifecycle calls in any order never raise, the experiment always
finishes (nobody is left PAUSED forever), and save/restore round-trips.
"""

from __future__ import annotations

import dataclasses
import doctest
import importlib
import pickle
import random
import threading

import cloudpickle
import pytest

from skate.tune.schedulers import (
    PB2,
    AsyncHyperBandScheduler,
    Exploit,
    FIFOScheduler,
    HyperBandScheduler,
    MedianStoppingRule,
    PopulationBasedTraining,
    TrialScheduler,
)

pytestmark = pytest.mark.skate_only

DECISIONS = (TrialScheduler.CONTINUE, TrialScheduler.PAUSE, TrialScheduler.STOP,
             TrialScheduler.NOOP)


@dataclasses.dataclass(eq=False)
class FakeTrial:
    trial_id: str
    config: dict = dataclasses.field(default_factory=dict)
    status: str = "PENDING"
    last_result: dict = dataclasses.field(default_factory=dict)
    checkpoint: object = None
    # Real trials may hold things that do not pickle; a scheduler must not pickle trials.
    lock: object = dataclasses.field(default_factory=threading.Lock)


# name -> factory building the scheduler *without* metric/mode (set_search_properties adds them)
FACTORIES = {
    "fifo": lambda: FIFOScheduler(),
    "asha": lambda: AsyncHyperBandScheduler(max_t=10, grace_period=1, reduction_factor=2),
    "asha_brackets": lambda: AsyncHyperBandScheduler(
        max_t=10, grace_period=1, reduction_factor=2, brackets=3, seed=1),
    "asha_no_stop_last": lambda: AsyncHyperBandScheduler(
        max_t=8, grace_period=1, reduction_factor=2, stop_last_trials=False),
    "hyperband": lambda: HyperBandScheduler(max_t=9, reduction_factor=3),
    "hyperband_no_stop_last": lambda: HyperBandScheduler(
        max_t=9, reduction_factor=3, stop_last_trials=False),
    "median": lambda: MedianStoppingRule(time_attr="training_iteration", grace_period=2,
                                         min_samples_required=2),
    "median_soft": lambda: MedianStoppingRule(time_attr="time_total_s", grace_period=2,
                                              min_samples_required=2, hard_stop=False,
                                              min_time_slice=3),
    "pbt": lambda: PopulationBasedTraining(
        time_attr="training_iteration", perturbation_interval=2,
        hyperparam_mutations={"lr": [0.001, 0.01, 0.1], "momentum": lambda: 0.5,
                              "opt": {"beta": [0.9, 0.99]}},
        quantile_fraction=0.5, seed=3),
    "pb2": lambda: PB2(
        time_attr="training_iteration", perturbation_interval=2,
        hyperparam_bounds={"lr": [0.001, 0.1], "batch": [8, 64]}, quantile_fraction=0.5,
        seed=3),
}
NEEDS_METRIC = [name for name in FACTORIES if name != "fifo"]


class Driver:
    """A fake controller: runs ``capacity`` trials at a time, applies decisions."""

    def __init__(self, scheduler, rng: random.Random, n_trials=8, max_iter=12, capacity=3,
                 error_rate=0.03):
        self.s = scheduler
        self.rng = rng
        self.max_iter = max_iter
        self.capacity = capacity
        self.error_rate = error_rate
        self.trials = [FakeTrial(f"t{i}", config={"lr": rng.choice([0.001, 0.01, 0.1]),
                                                 "momentum": 0.9, "opt": {"beta": 0.9}})
                       for i in range(n_trials)]
        self.by_id = {t.trial_id: t for t in self.trials}
        self.quality = {t.trial_id: rng.random() for t in self.trials}
        self.progress = {t.trial_id: 0 for t in self.trials}
        self.log: list = []  # (trial_id, decision) in order
        for t in self.trials:
            self.s.on_trial_add(t)

    def finished(self) -> bool:
        return all(t.status in ("TERMINATED", "ERROR") for t in self.trials)

    def complete(self, trial, result) -> None:
        trial.status = "TERMINATED"
        trial.last_result = {**result, "done": True}
        self.s.on_trial_complete(trial, trial.last_result)

    def launch(self) -> None:
        while sum(t.status == "RUNNING" for t in self.trials) < self.capacity:
            waiting = [t for t in self.trials if t.status in ("PENDING", "PAUSED")]
            if not waiting:
                return
            chosen = self.s.choose_trial_to_run(waiting)
            if chosen is None:
                return
            assert chosen in waiting, f"chose {chosen} which is not waiting"
            chosen.status = "RUNNING"

    def drain_stops(self) -> None:
        for trial_id in self.s.pop_trials_to_stop():
            trial = self.by_id[trial_id]
            assert trial.status in ("PAUSED", "PENDING"), (trial_id, trial.status)
            self.complete(trial, trial.last_result)

    def result_for(self, trial) -> dict:
        tid = trial.trial_id
        self.progress[tid] += 1
        it = self.progress[tid]
        return {"training_iteration": it, "time_total_s": float(it), "time_this_iter_s": 1.0,
                "trial_id": tid,
                "score": self.quality[tid] * it + self.rng.gauss(0, 0.1)}

    def step(self) -> bool:
        """One result (or failure) of one running trial; False if nothing can run."""
        self.launch()
        running = [t for t in self.trials if t.status == "RUNNING"]
        if not running:
            return False
        trial = self.rng.choice(running)
        if self.rng.random() < self.error_rate:
            trial.status = "ERROR"
            self.s.on_trial_error(trial)
            return True
        result = self.result_for(trial)
        trial.last_result = result
        trial.checkpoint = f"ckpt-{trial.trial_id}-{result['training_iteration']}"
        if result["training_iteration"] >= self.max_iter:  # the trainable ends by itself
            self.complete(trial, result)
            self.drain_stops()
            return True
        decision = self.s.on_trial_result(trial, result)
        self.apply(trial, result, decision)
        self.drain_stops()
        return True

    def apply(self, trial, result, decision) -> None:
        self.log.append((trial.trial_id, _describe(decision)))
        if isinstance(decision, Exploit):
            assert decision.source in self.trials and decision.source is not trial
            assert isinstance(decision.config, dict)
            trial.config = decision.config
            self.progress[trial.trial_id] = self.progress[decision.source.trial_id]
            return
        assert decision in DECISIONS, decision
        if decision == TrialScheduler.STOP:
            self.complete(trial, result)
        elif decision == TrialScheduler.PAUSE:
            trial.status = "PAUSED"

    def run(self, max_steps=3000) -> None:
        for _ in range(max_steps):
            if not self.step():
                break
        waiting = [(t.trial_id, t.status) for t in self.trials
                   if t.status not in ("TERMINATED", "ERROR")]
        assert not waiting, f"experiment stuck: {waiting}\n{self.s.debug_string()}"


def _describe(decision):
    if isinstance(decision, Exploit):
        return ("EXPLOIT", decision.source.trial_id, repr(decision.config))
    return decision


def _make(name):
    scheduler = FACTORIES[name]()
    assert scheduler.set_search_properties("score", "max") is True
    assert (scheduler.metric, scheduler.mode) == ("score", "max")
    return scheduler


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("seed", range(4))
def test_random_streams_end_with_valid_decisions(name, seed):
    driver = Driver(_make(name), random.Random(seed))
    driver.run()
    assert isinstance(driver.s.debug_string(), str)


@pytest.mark.parametrize("name", FACTORIES)
def test_lifecycle_calls_in_any_order_never_raise(name):
    s = _make(name)
    a, b, stranger = FakeTrial("a"), FakeTrial("b"), FakeTrial("never-added")
    s.on_trial_add(a)
    s.on_trial_add(b)
    a.status = "RUNNING"
    s.on_trial_result(a, {"training_iteration": 1, "time_total_s": 1.0,
                          "time_this_iter_s": 1.0, "trial_id": "a", "score": 1.0})
    for trial in (a, b, stranger):
        s.on_trial_complete(trial, {"done": True})  # the final result may lack the metric
        s.on_trial_complete(trial, {})
        s.on_trial_error(trial)
        s.on_trial_remove(trial)
    assert s.pop_trials_to_stop() == [] or True  # draining never raises
    assert s.choose_trial_to_run([]) is None


@pytest.mark.parametrize("name", FACTORIES)
def test_save_restore_round_trips(name, tmp_path):
    driver = Driver(_make(name), random.Random(7), error_rate=0.0)
    for _ in range(25):
        driver.step()
    path = str(tmp_path / "scheduler.pkl")
    driver.s.save(path)
    restored = FACTORIES[name]()
    restored.restore(path)
    assert (restored.metric, restored.mode) == ("score", "max")
    # The experiment state pickles the scheduler object itself: same state.
    assert pickle.loads(cloudpickle.dumps(driver.s)).__getstate__().keys() == \
        restored.__getstate__().keys()
    for t in driver.trials:  # a resumed experiment re-adds its trials
        restored.on_trial_add(t)
    assert restored.debug_string() == driver.s.debug_string()
    # From here on both must decide alike on the same events.
    original = driver.s
    for _ in range(40):
        driver.launch()
        running = [t for t in driver.trials if t.status == "RUNNING"]
        if not running:
            break
        trial = driver.rng.choice(running)
        result = driver.result_for(trial)
        trial.last_result = result
        d1 = original.on_trial_result(trial, result)
        d2 = restored.on_trial_result(trial, result)
        assert _describe(d1) == _describe(d2)
        stops1, stops2 = original.pop_trials_to_stop(), restored.pop_trials_to_stop()
        assert stops1 == stops2
        driver.apply(trial, result, d1)
        for tid in stops1:
            driver.complete(driver.by_id[tid], driver.by_id[tid].last_result)
            restored.on_trial_complete(driver.by_id[tid], driver.by_id[tid].last_result)
        if trial.status == "TERMINATED":
            restored.on_trial_complete(trial, trial.last_result)


@pytest.mark.parametrize("name", NEEDS_METRIC)
def test_no_metric_is_an_actionable_error(name):
    s = FACTORIES[name]()
    with pytest.raises(ValueError, match="metric=.*mode="):
        s.set_search_properties(None, None)
    with pytest.raises(ValueError, match="metric=.*mode="):
        s.on_trial_add(FakeTrial("a"))


@pytest.mark.parametrize("name", NEEDS_METRIC)
def test_result_without_metric_names_the_key_and_the_reported_keys(name):
    s = _make(name)
    trial = FakeTrial("a", config={"lr": 0.01, "momentum": 0.9, "opt": {"beta": 0.9}},
                      status="RUNNING")
    s.on_trial_add(trial)
    with pytest.raises(ValueError, match=r"'score'.*\['time_total_s', 'training_iteration'\]"):
        s.on_trial_result(trial, {"training_iteration": 1, "time_total_s": 1.0})


@pytest.mark.parametrize("name", FACTORIES)
def test_search_properties_conflict_and_mode_validation(name):
    s = _make(name)
    assert s.set_search_properties("score", "max") is True  # the same values: no conflict
    assert s.set_search_properties("other", None) is False
    assert s.set_search_properties(None, "min") is False
    with pytest.raises(ValueError, match="'min' or 'max'"):
        s.set_search_properties(None, "maximize")


def test_mode_is_validated_on_construction():
    for cls in (AsyncHyperBandScheduler, HyperBandScheduler, MedianStoppingRule):
        with pytest.raises(ValueError, match="'min' or 'max'"):
            cls(metric="x", mode="up")
    with pytest.raises(ValueError, match="'min' or 'max'"):
        PopulationBasedTraining(metric="x", mode="up", hyperparam_mutations={"a": [1]})


def test_fifo_chooses_pending_before_paused():
    s = FIFOScheduler()
    paused, pending = FakeTrial("p", status="PAUSED"), FakeTrial("q", status="PENDING")
    assert s.choose_trial_to_run([paused, pending]) is pending
    assert s.choose_trial_to_run([paused]) is paused
    assert s.on_trial_result(pending, {}) == "CONTINUE"


@pytest.mark.parametrize("module", [
    "skate.tune.schedulers", "skate.tune.schedulers.trial_scheduler",
    "skate.tune.schedulers.async_hyperband", "skate.tune.schedulers.hyperband",
    "skate.tune.schedulers.median_stopping_rule", "skate.tune.schedulers.pbt"])
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0

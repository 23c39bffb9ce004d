"""The controller as a pure state machine: events in, commands out (no processes)."""

import pytest

from skate.tune.controller import (
    Controller,
    DeleteCheckpoint,
    Restart,
    Save,
    Settings,
    Start,
    Stop,
    Train,
)
from skate.tune.schedulers.trial_scheduler import Exploit, FIFOScheduler, TrialScheduler
from skate.tune.search.searcher import Searcher
from skate.tune.stopper import make_stopper
from skate.tune.trial import Trial

pytestmark = pytest.mark.skate_only


class ListSearcher(Searcher):
    """Hands out the given configs in order, then FINISHED; records what it is told."""

    def __init__(self, configs):
        super().__init__()
        self.configs = list(configs)
        self.completed = []

    def suggest(self, trial_id):
        return self.configs.pop(0) if self.configs else Searcher.FINISHED

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.completed.append((trial_id, error))


class Scripted(FIFOScheduler):
    """Returns queued decisions, then CONTINUE; can ask to stop other trials."""

    def __init__(self, decisions=(), stop_ids=()):
        super().__init__()
        self.decisions = list(decisions)
        self.stop_ids = list(stop_ids)

    def on_trial_result(self, trial, result):
        return self.decisions.pop(0) if self.decisions else TrialScheduler.CONTINUE

    def pop_trials_to_stop(self):
        ids, self.stop_ids = self.stop_ids, []
        return ids


def make(configs, *, scheduler=None, stop=None, resources=None, **settings):
    def make_trial(trial_id, index, config):
        return Trial(trial_id, config, resources=resources or {"CPU": 1},
                     local_path=f"/exp/{trial_id}")

    return Controller(Settings(**settings), ListSearcher(configs), scheduler or FIFOScheduler(),
                      make_stopper(stop), make_trial, "abc")


def result(i, **metrics):
    return {"training_iteration": i, "time_total_s": float(i), "time_this_iter_s": 1.0,
            **metrics}


def test_launch_fills_free_resources_and_stops_suggesting_when_finished():
    c = make([{"x": i} for i in range(5)], searcher_counts_samples=False)
    commands = c.launch({"CPU": 2})
    assert [type(x) for x in commands] == [Start, Start]
    assert [x.trial.config for x in commands] == [{"x": 0}, {"x": 1}]
    # The third suggested trial waits for resources: nothing more is suggested meanwhile.
    assert c.launch({"CPU": 2}) == []
    assert len(c.trials) == 3 and c.trials[2].status == Trial.PENDING
    first = commands[0].trial
    assert c.on_result(first, {"__done__": True}) == [Stop(first)]
    assert first.status == Trial.TERMINATED
    [start] = c.launch({"CPU": 2})
    assert start.trial is c.trials[2]
    assert not c.is_finished()


def test_max_concurrent_and_num_samples_cap_for_model_based_searchers():
    c = make([{"x": i} for i in range(10)], num_samples=3, max_concurrent_trials=1)
    assert len(c.launch({"CPU": 8})) == 1
    trial = c.trials[0]
    c.on_result(trial, {"__done__": True})
    c.launch({"CPU": 8})
    c.on_result(c.trials[1], {"__done__": True})
    c.launch({"CPU": 8})
    c.on_result(c.trials[2], {"__done__": True})
    assert c.launch({"CPU": 8}) == [] and c.is_finished() and len(c.trials) == 3


def test_impossible_request_is_refused_before_start():
    c = make([{"x": 1}], resources={"GPU": 1})
    with pytest.raises(ValueError, match="could never start"):
        c.launch({"CPU": 4})


def test_results_continue_stop_and_complete():
    c = make([{"x": 1}], stop={"training_iteration": 2}, metric="loss", mode="min")
    [start] = c.launch({"CPU": 1})
    trial = start.trial
    assert c.on_result(trial, result(1, loss=3.0)) == [Train(trial)]
    assert trial.metric_analysis["loss"]["last"] == 3.0
    assert c.on_result(trial, result(2, loss=2.0)) == [Stop(trial)]
    assert trial.status == Trial.TERMINATED and trial.last_result["done"] is True
    assert c.searcher.completed == [(trial.trial_id, False)]
    assert c.is_finished()  # num_samples=1 trial done
    assert c.launch({"CPU": 1}) == []


def test_missing_metric_is_a_clear_error():
    c = make([{"x": 1}], metric="loss", mode="min")
    [start] = c.launch({"CPU": 1})
    with pytest.raises(ValueError, match=r"metric 'loss'.*\['acc', 'training_iteration'"):
        c.on_result(start.trial, {"acc": 1, "training_iteration": 1})


def test_checkpoints_are_kept_by_score_and_the_latest_always_stays():
    c = make([{"x": 1}], keep_checkpoints_num=2, checkpoint_score_attr="min-loss")
    [start] = c.launch({"CPU": 1})
    t = start.trial
    c.on_result(t, {**result(1, loss=5.0), "__checkpoint__": "/c1"})
    c.on_result(t, {**result(2, loss=1.0), "__checkpoint__": "/c2"})
    commands = c.on_result(t, {**result(3, loss=9.0), "__checkpoint__": "/c3"})
    assert DeleteCheckpoint("/c1") in commands  # worst loss among the older ones
    assert [p for p, _ in t.checkpoints] == ["/c2", "/c3"]
    assert t.checkpoint.path == "/c3"


def test_failures_retry_from_the_checkpoint_then_error():
    c = make([{"x": 1}], max_failures=1)
    [start] = c.launch({"CPU": 1})
    t = start.trial
    c.on_result(t, {**result(1), "__checkpoint__": "/ck"})
    assert c.on_error(t, "boom") == [Stop(t, failed=True)]
    assert t.status == Trial.PENDING
    [again] = c.launch({"CPU": 1})
    assert again == Start(t, "/ck")
    assert c.on_error(t, "boom again") == [Stop(t, failed=True)]
    assert t.status == Trial.ERROR and t.error_msg == "boom again"
    assert c.searcher.completed == [(t.trial_id, True)]
    assert c.launch({"CPU": 1}) == [] and c.is_finished()


def test_pause_saves_and_resumes_from_that_checkpoint():
    c = make([{"x": 1}], scheduler=Scripted([TrialScheduler.PAUSE]))
    [start] = c.launch({"CPU": 1})
    t = start.trial
    assert c.on_result(t, result(1)) == [Save(t), Stop(t)]
    assert t.status == Trial.PAUSED
    c.on_saved(t, "/paused")
    assert c.launch({"CPU": 1}) == [Start(t, "/paused")]


def test_exploit_saves_the_source_and_restarts_the_target_with_the_new_config():
    c = make([{"lr": 1}, {"lr": 2}], searcher_counts_samples=False)
    a, b = (s.trial for s in c.launch({"CPU": 2}))
    c.scheduler = Scripted([Exploit(source=b, config={"lr": 2.4})])
    assert c.on_result(a, result(1)) == [Save(b), Restart(a, b)]
    assert a.config == {"lr": 2.4} and a.status == Trial.RUNNING


def test_stopper_stop_all_and_scheduler_stops_of_other_trials():
    class StopAll:
        def __call__(self, trial_id, result):
            return False

        def stop_all(self):
            return True

    c = make([{"x": i} for i in range(3)], searcher_counts_samples=False)
    c.stopper = StopAll()
    a, b = (s.trial for s in c.launch({"CPU": 2}))
    commands = c.on_result(a, result(1))
    assert Stop(a) in commands and Stop(b) in commands
    assert c.is_finished() and c.launch({"CPU": 2}) == []

    c = make([{"x": i} for i in range(2)], searcher_counts_samples=False)
    a, b = (s.trial for s in c.launch({"CPU": 2}))
    c.scheduler = Scripted(stop_ids=[b.trial_id])
    assert c.on_result(a, result(1)) == [Stop(b), Train(a)]
    assert b.status == Trial.TERMINATED


def test_ctrl_c_leaves_running_trials_pending_at_their_checkpoint():
    c = make([{"x": 1}])
    [start] = c.launch({"CPU": 1})
    t = start.trial
    c.on_result(t, {**result(1), "__checkpoint__": "/ck"})
    assert c.stop_all_trials() == [Stop(t)]
    assert t.status == Trial.PENDING and t.restore_path == "/ck"


def test_trial_state_round_trips():
    c = make([{"x": 1}], metric="m", mode="max")
    [start] = c.launch({"CPU": 1})
    t = start.trial
    c.on_result(t, {**result(1, m=2.0), "__checkpoint__": "/ck"})
    copy = Trial.from_state(t.to_state())
    assert copy.to_state() == t.to_state()
    assert copy.checkpoint.path == "/ck" and copy.metric_analysis["m"]["max"] == 2.0


def test_trials_are_suggested_ahead_up_to_max_pending():
    c = make([{"x": i} for i in range(10)], searcher_counts_samples=False,
             max_pending_trials=4)
    assert len(c.launch({"CPU": 2})) == 2
    assert [t.status for t in c.trials] == ["RUNNING"] * 2 + ["PENDING"] * 4
    assert c.launch({"CPU": 2}) == []  # nothing more until one starts
    assert len(c.trials) == 6

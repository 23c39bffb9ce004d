"""The experiment summary the Tune runner publishes for the dashboard: which metrics get
curves, bounded histories that still span the run, the JSON's bounds, and the publisher's
pacing -- pure, no processes."""

import json
from types import SimpleNamespace

import pytest

from skate.tune import experiment_summary as es
from skate.tune.experiment_summary import ExperimentSummary, SummaryPublisher, kind_of

pytestmark = pytest.mark.skate_only


def trial(i, status="RUNNING", config=None, error=None):
    return SimpleNamespace(trial_id=f"t{i}", status=status, config=config or {"lr": 0.1},
                           evaluated_params={}, error_msg=error)


def test_the_kind_comes_from_the_trainables_modules():
    def cls(module, base=object):
        return type("T", (base,), {"__module__": module})

    assert kind_of(cls("__main__")) == "tune"
    assert kind_of(cls("skate.tune.function_trainable")) == "tune"
    assert kind_of(cls("skate.sgd.trainer")) == "train"
    assert kind_of(cls("my_algos", base=cls("skate.rllib.ppo"))) == "rllib"  # a subclass


def test_an_sgd_trainers_run_is_a_train_experiment():
    from skate.sgd import TorchTrainer

    assert kind_of(TorchTrainer(lambda config: None).as_trainable()) == "train"


def test_curves_are_chosen_metric_first_then_common_ones_at_most_eight():
    s = ExperimentSummary("e", metric="score")
    result = {"training_iteration": 1, "time_this_iter_s": 0.1, "done": False, "pid": 7,
              "__checkpoint__": "/x", "flag": True, "name": "text",
              **{f"m{i}": float(i) for i in range(10)}, "loss": 0.5, "score": 2,
              "env_runners": {"episode_return_mean": 9.0}}
    s.on_result(trial(1), result)
    assert s.metrics == ["score", "loss", "env_runners/episode_return_mean", "m0", "m1", "m2",
                         "m3", "m4"]
    last = s.build([trial(1)], finished=False)["trials"][0]["last_result"]
    assert "pid" not in last and "flag" not in last and "name" not in last
    assert last["training_iteration"] == 1 and last["env_runners/episode_return_mean"] == 9.0


def test_a_long_history_is_halved_and_still_spans_the_run():
    s = ExperimentSummary("e", metric="loss")
    t = trial(1)
    for i in range(1, 451):
        s.on_result(t, {"training_iteration": i, "loss": float(i)})
    history = s.build([t], finished=False)["trials"][0]["history"]
    xs = history["training_iteration"]
    assert len(xs) <= es.MAX_POINTS and xs[0] == 1 and xs[-1] >= 440
    assert xs == sorted(xs) and history["loss"] == [float(x) for x in xs]
    assert {b - a for a, b in zip(xs, xs[1:])} == {4}  # every 4th result after two halvings


def test_a_metric_first_seen_later_is_padded():
    s = ExperimentSummary("e")
    t = trial(1)
    s.on_result(t, {"training_iteration": 1, "a": 1.0})
    s.on_result(t, {"training_iteration": 2, "a": 2.0, "b": 5.0})
    s.on_result(t, {"training_iteration": 3, "b": 6.0})
    h = s.build([t], finished=True)["trials"][0]["history"]
    assert h == {"training_iteration": [1, 2, 3], "a": [1.0, 2.0, None], "b": [None, 5.0, 6.0]}


def test_the_summary_is_bounded():
    s = ExperimentSummary("e", metric="loss", clock=lambda: 5.0)
    trials = [trial(i, config={"lr": i, "notes": "x" * 500, **{f"k{j}": j for j in range(30)}})
              for i in range(es.MAX_TRIALS + 20)]
    for t in trials:
        for it in range(1, 51):
            s.on_result(t, {"training_iteration": it, "loss": 1.0 / it})
    body = s.build(trials, finished=False)
    assert body["num_trials"] == len(trials) and len(body["trials"]) == es.MAX_TRIALS
    assert body["trial_counts"] == {"RUNNING": len(trials)}
    config = body["trials"][0]["config"]
    assert len(config) == es.MAX_CONFIG_KEYS and len(config["notes"]) == es.MAX_VALUE_CHARS
    with_history = [t for t in body["trials"] if t["history"]]
    assert len(with_history) == es.MAX_HISTORY_TRIALS
    numbers = sum(len(t["history"]) * len(t["history"]["loss"]) for t in with_history)
    assert numbers <= es.MAX_PUBLISHED_POINTS * 1.1
    assert all(t["history"]["training_iteration"][-1] == 50 for t in with_history)  # latest
    assert len(json.dumps(body, separators=(",", ":"))) < 150_000  # worst case; usual: KBs


def test_the_publisher_paces_itself_and_never_raises(caplog):
    now = [0.0]
    put = []
    s = ExperimentSummary("e")
    p = SummaryPublisher(s, period_s=2.0, clock=lambda: now[0],
                         put=lambda key, value: put.append((key, json.loads(value))))
    trials = [trial(1)]
    assert p.maybe_publish(trials) and put[-1][0] == "tune/tune/e"
    now[0] = 1.0
    p.dirty = True
    assert not p.maybe_publish(trials)  # too soon
    now[0] = 2.5
    assert p.maybe_publish(trials)
    now[0] = 9.0
    assert not p.maybe_publish(trials)  # nothing changed
    assert p.maybe_publish(trials, finished=True) and put[-1][1]["status"] == "FINISHED"

    def broken(key, value):
        raise ConnectionError("the control store is gone")

    failing = SummaryPublisher(s, put=broken)
    assert not failing.maybe_publish(trials, finished=True)
    assert not failing.maybe_publish(trials, finished=True)
    assert [r.message for r in caplog.records].count(
        "The experiment's summary for the dashboard was not published: the control store is "
        "gone") == 1

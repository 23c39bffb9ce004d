"""tune.run / Tuner end to end: real trial actors, real files, real failures."""

import json
import os
import time

import numpy as np
import pytest

import skate
from skate import tune
from skate.exceptions import TuneError
from skate.tune.schedulers import PB2, ASHAScheduler, PopulationBasedTraining

pytestmark = pytest.mark.skate_only


def _lines(path):
    with open(path) as f:
        return [line for line in f if line.strip()]


def test_function_trainable_grid_writes_every_file(start_regular, tmp_path):
    def trainable(config):
        for step in range(4):
            tune.report({"loss": (config["x"] - 2) ** 2 + 1.0 / (step + 1)})

    analysis = tune.run(trainable, config={"x": tune.grid_search([1, 2, 3]), "c": 7},
                        metric="loss", mode="min", storage_path=str(tmp_path), name="exp",
                        verbose=0)
    assert analysis.best_config == {"x": 2, "c": 7}
    assert analysis.best_result["loss"] == pytest.approx(0.25)
    assert len(analysis.results_df) == 3
    assert all(t.status == "TERMINATED" for t in analysis.trials)
    for trial in analysis.trials:
        assert trial.path.startswith(str(tmp_path / "exp"))
        assert "x=" in os.path.basename(trial.path)
        with open(os.path.join(trial.path, "params.json")) as f:
            assert json.load(f) == trial.config
        results = [json.loads(line) for line in _lines(os.path.join(trial.path, "result.json"))]
        assert [r["training_iteration"] for r in results] == [1, 2, 3, 4]
        assert len(_lines(os.path.join(trial.path, "progress.csv"))) == 5  # header + 4
        events = [n for n in os.listdir(trial.path) if n.startswith("events.out.tfevents")]
        assert events and os.path.getsize(os.path.join(trial.path, events[0])) > 100
    assert os.path.exists(tmp_path / "exp" / "experiment_state.json")
    df = analysis.dataframe(metric="loss", mode="min")
    assert sorted(df["config/x"]) == [1, 2, 3]


def test_tensorboard_events_hold_the_metrics(start_regular, tmp_path):
    import struct

    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.record_writer import RecordWriter  # noqa: F401 - proves the format

    def trainable(config):
        for i in range(3):
            tune.report({"acc": i / 10})

    trial = tune.run(trainable, storage_path=str(tmp_path), verbose=0).trials[0]
    name = next(n for n in os.listdir(trial.path) if n.startswith("events.out.tfevents"))
    data = open(os.path.join(trial.path, name), "rb").read()
    seen, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset:offset + 8])
        event = Event.FromString(data[offset + 12:offset + 12 + length])
        offset += 12 + length + 4
        for value in event.summary.value:
            if value.tag == "skate/tune/acc":
                seen.append((event.step, round(value.simple_value, 5)))
    assert seen == [(1, 0.0), (2, 0.1), (3, 0.2)]


def test_class_trainable_recovers_from_its_checkpoint(start_regular, tmp_path):
    # Defined here (not at module level) so it pickles by value: test modules are not
    # importable in worker processes.
    class Counter(tune.Trainable):
        def setup(self, config):
            self.total = 0
            self.marker = config["marker"]

        def step(self):
            self.total += 1
            if self.total == 4 and not os.path.exists(self.marker):
                open(self.marker, "w").close()
                raise RuntimeError("injected failure at step 4")
            return {"total": self.total}

        def save_checkpoint(self, checkpoint_dir):
            with open(os.path.join(checkpoint_dir, "state.json"), "w") as f:
                json.dump({"total": self.total}, f)

        def load_checkpoint(self, checkpoint_dir):
            with open(os.path.join(checkpoint_dir, "state.json")) as f:
                self.total = json.load(f)["total"]

    marker = str(tmp_path / "failed-once")
    analysis = tune.run(Counter, config={"marker": marker}, stop={"training_iteration": 6},
                        checkpoint_freq=2, keep_checkpoints_num=2, max_failures=1,
                        storage_path=str(tmp_path), verbose=0)
    trial = analysis.trials[0]
    assert trial.status == "TERMINATED" and trial.num_failures == 1
    # Restored from the iteration-2 checkpoint: the count continued from there.
    assert trial.last_result["total"] == 6 and trial.last_result["training_iteration"] == 6
    assert "injected failure at step 4" in open(trial.error_file).read()
    kept = sorted(n for n in os.listdir(trial.path) if n.startswith("checkpoint_"))
    assert kept == ["checkpoint_000004", "checkpoint_000006"]  # keep_checkpoints_num=2
    best = analysis.get_best_checkpoint(trial, metric="total", mode="max")
    assert best.path.endswith("checkpoint_000006")
    with pytest.raises(ValueError, match="metric= and mode="):
        analysis.best_checkpoint  # noqa: B018 - no default metric to rank by


def test_function_checkpoint_is_handed_back_after_a_failure(start_regular, tmp_path):
    marker = str(tmp_path / "failed-once")

    def trainable(config):
        start = 0
        checkpoint = tune.get_checkpoint()
        if checkpoint:
            with checkpoint.as_directory() as d:
                start = json.load(open(os.path.join(d, "s.json")))["step"] + 1
        for step in range(start, 5):
            if step == 3 and not os.path.exists(marker):
                open(marker, "w").close()
                raise ValueError("boom")
            d = str(tmp_path / f"tmp-{step}")
            os.makedirs(d, exist_ok=True)
            json.dump({"step": step}, open(os.path.join(d, "s.json"), "w"))
            tune.report({"step": step}, checkpoint=tune.Checkpoint.from_directory(d))

    analysis = tune.run(trainable, max_failures=2, storage_path=str(tmp_path), verbose=0)
    trial = analysis.trials[0]
    assert trial.status == "TERMINATED" and trial.num_failures == 1
    assert trial.last_result["step"] == 4
    steps = [json.loads(x)["step"] for x in _lines(os.path.join(trial.path, "result.json"))]
    assert steps == [0, 1, 2, 3, 4]  # resumed after step 2's checkpoint, nothing redone
    assert trial.checkpoint.path.startswith(trial.path)


def test_failing_trial_errors_after_max_failures_and_others_go_on(start_regular, tmp_path):
    def trainable(config):
        if config["bad"]:
            raise KeyError("no such feature")
        tune.report({"ok": 1})

    space = {"bad": tune.grid_search([False, True, False])}
    with pytest.raises(TuneError, match="error.txt"):
        tune.run(trainable, config=space, max_failures=2, storage_path=str(tmp_path),
                 name="fail", verbose=0)
    grid = tune.Tuner(trainable, param_space=space,
                      run_config=tune.RunConfig(storage_path=str(tmp_path), name="grid",
                                                verbose=0,
                                                failure_config=tune.FailureConfig(1))).fit()
    assert grid.num_errors == 1 and grid.num_terminated == 2
    bad = next(r for r in grid if r.error is not None)
    text = open(os.path.join(bad.path, "error.txt")).read()
    assert "no such feature" in text and "Failure # 2" in text and "Traceback" in text


def test_trials_wait_for_resources_instead_of_oversubscribing(start_regular, tmp_path):
    def trainable(config):
        start = time.time()
        time.sleep(0.3)
        tune.report({"start": start, "end": time.time()})

    for kwargs in ({"resources_per_trial": {"cpu": 2}}, {"max_concurrent_trials": 1}):
        analysis = tune.run(trainable, config={"i": tune.grid_search([0, 1, 2])},
                            storage_path=str(tmp_path), verbose=0, **kwargs)
        spans = sorted((t.last_result["start"], t.last_result["end"]) for t in analysis.trials)
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert start >= end - 0.01, f"trials overlapped with {kwargs}: {spans}"
    # With 1 CPU each, two run at once on the 2-CPU node: they meet at a rendezvous.
    analysis = tune.run(_meet_trainable(tmp_path / "rdv-cpu", 2),
                        config={"i": tune.grid_search([0, 1])}, storage_path=str(tmp_path),
                        verbose=0)
    assert [t.last_result["met"] for t in analysis.trials] == [2, 2]


def _meet_trainable(directory, n):
    """A trainable that reports how many trials were running with it (waits up to 60 s)."""
    directory = str(directory)

    def trainable(config):
        os.makedirs(directory, exist_ok=True)
        open(os.path.join(directory, str(config["i"])), "w").close()
        deadline = time.monotonic() + 60
        while len(os.listdir(directory)) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        tune.report({"met": len(os.listdir(directory))})

    return trainable


def test_impossible_resource_request_fails_before_any_trial(start_regular, tmp_path):
    ran = tmp_path / "ran"

    def trainable(config):
        open(ran, "w").close()

    with pytest.raises(ValueError, match="could never start"):
        tune.run(trainable, resources_per_trial={"gpu": 1}, storage_path=str(tmp_path),
                 verbose=0)
    with pytest.raises(ValueError, match="could never start"):
        tune.run(tune.with_resources(trainable, {"cpu": 3}), storage_path=str(tmp_path),
                 verbose=0)
    assert not ran.exists()


@pytest.mark.parametrize("kwargs, match", [
    ({"metric": "loss", "mode": "maximize"}, "mode` must be 'min' or 'max'"),
    ({"metric": "loss"}, "metric= and mode= together"),
    ({"num_samples": 0}, "num_samples"),
    ({"resources_per_trial": {"cpu": -1}}, "must be a number >= 0"),
    ({"config": {"x": {"grid_search": 5}}}, "grid_search"),
    ({"config": {"x": __import__("optuna").distributions.FloatDistribution(0, 1)}},
     "cannot sample"),
])
def test_bad_arguments_are_refused_early(start_regular, tmp_path, kwargs, match):
    ran = tmp_path / "ran"

    def trainable(config):
        open(ran, "w").close()
        tune.report({"loss": 1})

    with pytest.raises((ValueError, TypeError), match=match):
        tune.run(trainable, storage_path=str(tmp_path), verbose=0, **kwargs)
    assert not ran.exists()


def test_unknown_metric_and_stop_typo_get_clear_errors(start_regular, tmp_path):
    def trainable(config):
        tune.report({"accuracy": 0.5})

    with pytest.raises(ValueError, match=r"metric 'acc'.*\['accuracy'"):
        tune.run(trainable, metric="acc", mode="max", storage_path=str(tmp_path), verbose=0)
    with pytest.raises(ValueError, match="trainig_iteration"):
        tune.run(trainable, stop={"trainig_iteration": 3}, storage_path=str(tmp_path),
                 verbose=0)
    with pytest.raises(TypeError, match="Trainable"):
        tune.run(int, storage_path=str(tmp_path), verbose=0)
    with pytest.raises(ValueError, match="Unknown trainable 'nope'"):
        tune.run("nope", storage_path=str(tmp_path), verbose=0)


def test_stop_dict_with_parameters_and_registered_name(start_regular, tmp_path):
    data = np.arange(200_000, dtype=np.float64)

    def trainable(config, data=None):
        for _ in range(10):
            tune.report({"total": float(data.sum()) * config["k"]})

    tune.register_trainable("summer", tune.with_parameters(trainable, data=data))
    analysis = tune.run("summer", config={"k": tune.grid_search([1, 2])},
                        stop={"training_iteration": 3}, storage_path=str(tmp_path), verbose=0)
    assert sorted(t.last_result["total"] for t in analysis.trials) == [data.sum(),
                                                                       2 * data.sum()]
    assert all(t.last_result["training_iteration"] == 3 for t in analysis.trials)
    assert all(os.path.basename(t.path).startswith("summer_") for t in analysis.trials)


def test_random_search_num_samples_and_callbacks(start_regular, tmp_path):
    events = []

    class Recorder(tune.Callback):
        def on_trial_start(self, iteration, trials, trial, **info):
            events.append(("start", trial.trial_id))

        def on_trial_result(self, iteration, trials, trial, result, **info):
            events.append(("result", trial.trial_id))

        def on_trial_complete(self, iteration, trials, trial, **info):
            events.append(("complete", trial.trial_id))

        def on_experiment_end(self, trials, **info):
            events.append(("end", len(trials)))

    def trainable(config):
        tune.report({"v": config["lr"] * config["layers"]})

    analysis = tune.run(trainable, config={"lr": tune.loguniform(1e-4, 1e-1),
                                           "layers": tune.randint(1, 4)},
                        num_samples=5, callbacks=[Recorder()], storage_path=str(tmp_path),
                        verbose=0)
    assert len(analysis.trials) == 5
    assert all(1e-4 <= t.config["lr"] <= 1e-1 and 1 <= t.config["layers"] < 4
               for t in analysis.trials)
    assert events[-1] == ("end", 5)
    for trial in analysis.trials:
        mine = [e for e, tid in events[:-1] if tid == trial.trial_id]
        assert mine == ["start", "result", "complete"]


def test_asha_stops_bad_trials_early(start_regular, tmp_path):
    def trainable(config):
        for step in range(1, 28):
            tune.report({"score": config["quality"] * step})

    scheduler = ASHAScheduler(max_t=27, grace_period=1, reduction_factor=3)
    analysis = tune.run(trainable, config={"quality": tune.grid_search(list(range(9, 0, -1)))},
                        metric="score", mode="max", scheduler=scheduler,
                        storage_path=str(tmp_path), verbose=0)
    iterations = {t.config["quality"]: t.last_result["training_iteration"]
                  for t in analysis.trials}
    assert iterations[9] == 27
    assert sum(iterations.values()) < 9 * 27 / 2
    assert analysis.best_config == {"quality": 9}


@pytest.mark.parametrize("kind", ["pbt", "pb2"])
def test_pbt_exploits_a_better_trials_checkpoint(start_regular, tmp_path, kind):
    def trainable(config):
        value, step = 0.0, 0
        checkpoint = tune.get_checkpoint()
        if checkpoint:
            with checkpoint.as_directory() as d:
                state = json.load(open(os.path.join(d, "state.json")))
                value, step = state["value"], state["step"]
        while step < 12:
            step += 1
            value += config["lr"]
            d = os.path.join(tune.get_context().get_trial_dir(), f"tmp-{step}")
            os.makedirs(d, exist_ok=True)
            json.dump({"value": value, "step": step}, open(os.path.join(d, "state.json"), "w"))
            tune.report({"value": value}, checkpoint=tune.Checkpoint.from_directory(d))

    if kind == "pbt":
        pbt = PopulationBasedTraining(time_attr="training_iteration", perturbation_interval=3,
                                      hyperparam_mutations={"lr": [0.01, 0.1, 1.0, 2.0]},
                                      quantile_fraction=0.5, seed=0)
    else:
        pbt = PB2(time_attr="training_iteration", perturbation_interval=3,
                  hyperparam_bounds={"lr": [0.01, 2.0]}, quantile_fraction=0.5, seed=0)
    analysis = tune.run(trainable, config={"lr": tune.grid_search([0.01, 0.1, 1.0, 2.0])},
                        metric="value", mode="max", scheduler=pbt,
                        storage_path=str(tmp_path), verbose=0)
    assert pbt.perturbations, "PBT never exploited"
    assert all(t.status == "TERMINATED" for t in analysis.trials)
    # The worst starting lr inherited a better trial's progress.
    worst = next(t for t in analysis.trials if t.trial_id == pbt.perturbations[0].target)
    assert worst.last_result["value"] > 12 * 0.01 * 2


def test_optuna_search_finds_the_minimum(start_regular, tmp_path):
    from skate.tune.search import ConcurrencyLimiter, OptunaSearch

    def trainable(config):
        tune.report({"loss": (config["x"] - 1.5) ** 2 + (config["y"] + 0.5) ** 2})

    searcher = ConcurrencyLimiter(OptunaSearch(seed=3), max_concurrent=2)
    analysis = tune.run(trainable, config={"x": tune.uniform(-5, 5), "y": tune.uniform(-5, 5)},
                        search_alg=searcher, num_samples=30, metric="loss", mode="min",
                        storage_path=str(tmp_path), verbose=0)
    assert len(analysis.trials) == 30
    assert analysis.best_result["loss"] < 1.0


def test_progress_table_and_best_trial_summary(start_regular, tmp_path, capsys):
    def trainable(config):
        tune.report({"loss": config["x"]})

    tune.run(trainable, config={"x": tune.grid_search([3, 1, 2])}, metric="loss", mode="min",
             storage_path=str(tmp_path), verbose=1)
    out = capsys.readouterr().out
    assert "Trial name" in out and "TERMINATED" in out and "loss" in out
    assert "Best trial" in out and "{'x': 1}" in out


def test_fractional_gpus_share_a_device(shutdown_only, tmp_path):
    skate.init(num_cpus=2, num_gpus=1)

    analysis = tune.run(_meet_trainable(tmp_path / "rdv-gpu", 2),
                        config={"i": tune.grid_search([0, 1])},
                        resources_per_trial={"cpu": 1, "gpu": 0.5},
                        storage_path=str(tmp_path), verbose=0)
    assert [t.last_result["met"] for t in analysis.trials] == [2, 2]  # both on half the GPU
    assert analysis.trials[0].resources == {"CPU": 1, "GPU": 0.5}


def test_placement_group_factory_trial_starts_its_own_actor(shutdown_only, tmp_path):
    skate.init(num_cpus=3)

    @skate.remote(num_cpus=1)
    class Helper:
        def where(self):
            pg = skate.util.get_current_placement_group()
            return pg.id.hex() if pg else None

    def trainable(config):
        pg = skate.util.get_current_placement_group()
        assert pg is not None, "the trial actor does not know its placement group"
        helper = Helper.remote()  # captured into the trial's group
        tune.report({"pg": pg.id.hex(), "helper_pg": skate.get(helper.where.remote())})

    pgf = tune.PlacementGroupFactory([{"CPU": 1}, {"CPU": 1}])
    analysis = tune.run(tune.with_resources(trainable, pgf), storage_path=str(tmp_path),
                        verbose=0)
    result = analysis.trials[0].last_result
    assert result["pg"] == result["helper_pg"]
    assert analysis.trials[0].resources == {"CPU": 2.0}


def test_class_trainable_with_reset_config_reuses_its_actor(start_regular, tmp_path):
    class Resettable(tune.Trainable):
        def setup(self, config):
            self.x = config["x"]

        def step(self):
            return {"x": self.x, "pid": os.getpid(), "done": True}

        def reset_config(self, new_config):
            self.x = new_config["x"]
            return True

    analysis = tune.run(Resettable, config={"x": tune.grid_search(list(range(6)))},
                        max_concurrent_trials=1, storage_path=str(tmp_path), verbose=0)
    assert sorted(t.last_result["x"] for t in analysis.trials) == list(range(6))
    assert len({t.last_result["pid"] for t in analysis.trials}) == 1  # one actor, reset 5x


def test_with_parameters_ships_data_through_the_object_store_once(start_regular, tmp_path):
    import cloudpickle

    data = np.ones(5_000_000)  # 40 MB

    def trainable(config, data=None):
        tune.report({"n": int(data.size), "writeable": bool(data.flags.writeable)})

    wrapped = tune.with_parameters(trainable, data=data)
    assert len(cloudpickle.dumps(wrapped)) < 100_000  # a reference, not the array
    analysis = tune.run(wrapped, config={"i": tune.grid_search([0, 1, 2])},
                        storage_path=str(tmp_path), verbose=0)
    # Every trial read the one shared, read-only copy.
    assert [t.last_result["n"] for t in analysis.trials] == [5_000_000] * 3
    assert not any(t.last_result["writeable"] for t in analysis.trials)


def test_searcher_state_is_saved_with_the_experiment(start_regular, tmp_path):
    from skate.tune import experiment_state
    from skate.tune.search import OptunaSearch

    def trainable(config):
        tune.report({"loss": config["x"] ** 2})

    tune.run(trainable, config={"x": tune.uniform(-1, 1)}, search_alg=OptunaSearch(seed=1),
             num_samples=4, metric="loss", mode="min", name="opt", storage_path=str(tmp_path),
             verbose=0)
    searcher = experiment_state.load_pickle(str(tmp_path / "opt"),
                                            experiment_state.SEARCHER_FILE)
    assert isinstance(searcher, OptunaSearch)
    assert len(searcher._study.trials) == 4


def test_ray_train_style_names_work_inside_trainables(start_regular, tmp_path):
    from skate import train

    def trainable(config):
        assert train.get_checkpoint() is None
        train.report({"loss": config["x"] ** 2, "trial": train.get_context().get_trial_id()})

    grid = tune.Tuner(trainable, param_space={"x": tune.grid_search([1, 2])},
                      run_config=train.RunConfig(storage_path=str(tmp_path), verbose=0,
                                                 checkpoint_config=train.CheckpointConfig(
                                                     num_to_keep=1))).fit()
    assert sorted(r.metrics["loss"] for r in grid) == [1, 4]
    assert all(r.metrics["trial"] == r.metrics["trial_id"] for r in grid)


def test_fail_fast_ends_the_experiment(start_regular, tmp_path):
    def trainable(config):
        if config["i"] == 0:
            raise RuntimeError("first trial breaks")
        for _ in range(50):
            time.sleep(0.05)
            tune.report({"ok": 1})

    grid = tune.Tuner(trainable, param_space={"i": tune.grid_search(list(range(6)))},
                      run_config=tune.RunConfig(
                          storage_path=str(tmp_path), verbose=0,
                          failure_config=tune.FailureConfig(fail_fast=True))).fit()
    assert grid.num_errors == 1
    assert max(r.metrics.get("training_iteration", 0) for r in grid) < 50
    with pytest.raises(TuneError, match="first trial breaks"):
        tune.run(trainable, config={"i": tune.grid_search([0, 1])}, fail_fast="raise",
                 storage_path=str(tmp_path), verbose=0)


def test_class_checkpoint_at_end_defaults_like_ray(start_regular, tmp_path):
    class Saver(tune.Trainable):
        def step(self):
            return {"v": 1}

        def save_checkpoint(self, checkpoint_dir):
            return {"v": 1}

        def load_checkpoint(self, checkpoint):
            pass

    grid = tune.Tuner(Saver, run_config=tune.RunConfig(
        storage_path=str(tmp_path), verbose=0, stop={"training_iteration": 5},
        checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=2))).fit()
    saved = sorted(n for n in os.listdir(grid[0].path) if n.startswith("checkpoint_"))
    assert saved == ["checkpoint_000002", "checkpoint_000004", "checkpoint_000005"]

    def function(config):
        tune.report({"v": 1})

    with pytest.raises(ValueError, match="class trainables"):
        tune.run(function, checkpoint_at_end=True, storage_path=str(tmp_path), verbose=0)


def test_hyperband_pauses_and_resumes_trials_from_checkpoints(start_regular, tmp_path):
    from skate.tune.schedulers import HyperBandScheduler

    class Curve(tune.Trainable):
        def setup(self, config):
            self.value = 0.0
            self.restored_at = []

        def step(self):
            self.value += self.config["rate"]
            return {"value": self.value, "restored_at": list(self.restored_at)}

        def save_checkpoint(self, checkpoint_dir):
            return {"value": self.value}

        def load_checkpoint(self, checkpoint):
            self.value = checkpoint["value"]
            self.restored_at.append(self.iteration)

    scheduler = HyperBandScheduler(max_t=9, reduction_factor=3)
    analysis = tune.run(Curve, config={"rate": tune.grid_search([1, 2, 3, 4, 5, 6, 7, 8, 9])},
                        metric="value", mode="max", scheduler=scheduler,
                        storage_path=str(tmp_path), verbose=0)
    assert all(t.status == "TERMINATED" for t in analysis.trials)
    best = analysis.best_trial
    assert best.config["rate"] == 9 and best.last_result["training_iteration"] == 9
    # Progress survived the pauses: value == rate * iterations, and restores happened.
    resumed = [t for t in analysis.trials if t.last_result["restored_at"]]
    assert resumed, "no trial was paused and resumed"
    for t in analysis.trials:
        assert t.last_result["value"] == t.config["rate"] * t.last_result["training_iteration"]
    assert sum(t.last_result["training_iteration"] for t in analysis.trials) < 9 * 9


def test_median_stopping_and_time_budget(start_regular, tmp_path):
    from skate.tune.schedulers import MedianStoppingRule

    def trainable(config):
        for step in range(1, 21):
            time.sleep(0.01)
            tune.report({"acc": config["q"] * step})

    rule = MedianStoppingRule(time_attr="training_iteration", grace_period=3,
                              min_samples_required=2)
    analysis = tune.run(trainable, config={"q": tune.grid_search([5, 4, 3, 2, 1])},
                        metric="acc", mode="max", scheduler=rule, storage_path=str(tmp_path),
                        verbose=0)
    its = {t.config["q"]: t.last_result["training_iteration"] for t in analysis.trials}
    assert its[5] == 20 and its[1] < 20

    def forever(config):
        while True:
            time.sleep(0.05)
            tune.report({"x": 1})

    start = time.monotonic()
    analysis = tune.run(forever, time_budget_s=1.5, storage_path=str(tmp_path), verbose=0)
    assert time.monotonic() - start < 20
    assert analysis.trials[0].status == "TERMINATED"


def test_trial_name_and_dirname_creators(start_regular, tmp_path):
    def trainable(config):
        tune.report({"x": config["x"]})

    analysis = tune.run(trainable, config={"x": tune.grid_search([1, 2])},
                        trial_name_creator=lambda t: f"run-x{t.config['x']}",
                        trial_dirname_creator=lambda t: f"dir-{t.config['x']}",
                        storage_path=str(tmp_path), verbose=0)
    assert sorted(str(t) for t in analysis.trials) == ["run-x1", "run-x2"]
    assert sorted(os.path.basename(t.path) for t in analysis.trials) == ["dir-1", "dir-2"]
    with pytest.raises(TypeError, match="sync_config"):
        tune.run(trainable, sync_config=object(), storage_path=str(tmp_path), verbose=0)


def test_trials_by_status_as_a_metric(start_regular, tmp_path):
    from skate.util import metrics
    from tests.core.utils import wait_for_condition

    def trainable(config):
        tune.report({"loss": config["x"]})

    tune.run(trainable, config={"x": tune.grid_search([1, 2])}, storage_path=str(tmp_path),
             name="metered", verbose=0)

    def by_status():
        fam = next((f for f in metrics.snapshot() if f["name"] == "tune_trials"), None)
        return {} if fam is None else {s["tags"]["status"]: s["value"] for s in fam["samples"]
                                       if s["tags"]["experiment"] == "metered"}

    wait_for_condition(lambda: by_status().get("TERMINATED") == 2, timeout=15)
    assert by_status()["RUNNING"] == 0 and by_status()["ERROR"] == 0

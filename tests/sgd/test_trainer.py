"""TorchTrainer end to end: real worker actors in a placement group, a real gloo group,
real checkpoints on disk, real kill -9 -- and the errors a user gets before anything runs.
"""

import json
import os
import signal
import time

import numpy as np
import pytest
import torch

from skate import train, tune
from skate.sgd.trainer import TrainingFailedError
from skate.train.torch import TorchConfig, TorchTrainer, prepare_data_loader, prepare_model
from tests.core.utils import wait_for_condition

pytestmark = pytest.mark.skate_only


def _run(tmp_path, loop, workers=2, **kwargs):
    run_config = kwargs.pop("run_config", None) or train.RunConfig(
        storage_path=str(tmp_path), name="run", verbose=0,
        failure_config=kwargs.pop("failure_config", None),
        checkpoint_config=kwargs.pop("checkpoint_config", None))
    return TorchTrainer(loop, scaling_config=train.ScalingConfig(num_workers=workers),
                        run_config=run_config, **kwargs).fit()


def _weights(result) -> dict:
    with result.checkpoint.as_directory() as d:
        return torch.load(os.path.join(d, "model.pt"))


def test_every_worker_knows_its_rank_and_the_run(start_regular, tmp_path):
    def loop(config):
        ctx = train.get_context()
        with open(os.path.join(ctx.get_trial_dir(), f"rank{ctx.get_world_rank()}.json"),
                  "w") as f:
            json.dump({"rank": ctx.get_world_rank(), "world": ctx.get_world_size(),
                       "local": ctx.get_local_rank(), "local_world": ctx.get_local_world_size(),
                       "node": ctx.get_node_rank(), "pid": os.getpid(),
                       "experiment": ctx.get_experiment_name(), "x": config["x"],
                       "threads": torch.get_num_threads(),
                       "dist": torch.distributed.get_world_size()}, f)
        for i in range(3):
            train.report({"i": i, "rank": ctx.get_world_rank()})

    result = _run(tmp_path, loop, train_loop_config={"x": 7})
    assert result.error is None
    assert result.metrics["i"] == 2 and result.metrics["rank"] == 0  # rank 0's metrics
    assert result.metrics["training_iteration"] == 3
    seen = [json.load(open(os.path.join(result.path, f"rank{r}.json"))) for r in (0, 1)]
    assert [s["rank"] for s in seen] == [0, 1] and [s["local"] for s in seen] == [0, 1]
    assert {(s["world"], s["local_world"], s["node"], s["dist"], s["x"], s["threads"])
            for s in seen} == {(2, 2, 0, 2, 7, 1)}
    assert seen[0]["pid"] != seen[1]["pid"] != os.getpid()
    assert seen[0]["experiment"] == "run"
    assert len(result.metrics_dataframe) == 3

    from skate.util import metrics
    from tests.core.utils import wait_for_condition

    def reported():  # the run's 3 iterations (each trial has its own series)
        fam = next(f for f in metrics.snapshot() if f["name"] == "tune_trial_iterations")
        return [s["value"] for s in fam["samples"]
                if s["tags"]["trial"] == os.path.basename(result.path)] == [3.0]

    wait_for_condition(reported, timeout=15)


def _global_batches(data, world, batch):
    """The batches one process sees when ``world`` workers each take ``batch`` rows of
    their shard (rows rank, rank + world, ...) per step."""
    shards = [data[r::world] for r in range(world)]
    steps = len(shards[0]) // batch
    return [np.concatenate([s[k * batch:(k + 1) * batch] for s in shards]) for k in range(steps)]


def _equal_weights_case(tmp_path, make_model, data, in_shape):
    def loop(config):
        torch.manual_seed(0)
        model = prepare_model(config["make"]())
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        part = train.get_dataset_shard("train")
        for epoch in range(2):
            for k in range(len(part) // 8):
                rows = torch.from_numpy(np.ascontiguousarray(part[k * 8:(k + 1) * 8]))
                x, y = rows[:, :-1].reshape(-1, *config["shape"]), rows[:, -1:]
                loss = torch.nn.functional.mse_loss(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
            ckpt = None
            if train.get_context().get_world_rank() == 0:
                d = os.path.join(train.get_context().get_trial_dir(), f"tmp{epoch}")
                os.makedirs(d)
                plain = model.module if hasattr(model, "module") else model
                torch.save(plain.state_dict(), os.path.join(d, "model.pt"))
                ckpt = train.Checkpoint.from_directory(d)
            train.report({"epoch": epoch, "loss": loss.item()}, checkpoint=ckpt)

    result = _run(tmp_path, loop, train_loop_config={"make": make_model, "shape": in_shape},
                  datasets={"train": data})
    assert result.error is None, result.error
    torch.manual_seed(0)
    ref = make_model()
    opt = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9)
    for _ in range(2):
        for rows in _global_batches(data, 2, 8):
            rows = torch.from_numpy(rows)
            x, y = rows[:, :-1].reshape(-1, *in_shape), rows[:, -1:]
            loss = torch.nn.functional.mse_loss(ref(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    got = _weights(result)
    for name, value in ref.state_dict().items():
        assert torch.max(torch.abs(got[name] - value)) <= 1e-5, name


def test_two_workers_end_with_one_process_weights_mlp(start_regular, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 6)).astype(np.float32)
    data = np.concatenate([x, (x @ rng.normal(size=(6, 1))).astype(np.float32)], 1)
    _equal_weights_case(tmp_path, lambda: torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)), data, (6,))


def test_two_workers_end_with_one_process_weights_cnn(start_regular, tmp_path):
    rng = np.random.default_rng(1)
    images = rng.normal(size=(96, 64)).astype(np.float32)
    data = np.concatenate([images, images.mean(1, keepdims=True)], 1)
    _equal_weights_case(tmp_path, lambda: torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 1)), data, (1, 8, 8))


def test_prepared_loaders_split_the_data_and_reshuffle_each_epoch(start_regular, tmp_path):
    def loop(config):
        ds = torch.utils.data.TensorDataset(torch.arange(40))
        loader = prepare_data_loader(torch.utils.data.DataLoader(ds, batch_size=5,
                                                                 shuffle=True))
        for epoch in range(2):
            seen = [int(v) for (batch,) in loader for v in batch]
            train.report({"epoch": epoch, "seen": json.dumps(seen), "batches": len(loader)})
            with open(os.path.join(train.get_context().get_trial_dir(),
                                   f"r{train.get_context().get_world_rank()}e{epoch}"), "w") as f:
                json.dump(seen, f)

    result = _run(tmp_path, loop)
    assert result.error is None and result.metrics["batches"] == 4

    def read(rank, epoch):
        return json.load(open(os.path.join(result.path, f"r{rank}e{epoch}")))

    for epoch in (0, 1):
        a, b = read(0, epoch), read(1, epoch)
        assert len(a) == len(b) == 20 and sorted(a + b) == list(range(40))
    assert read(0, 0) != read(0, 1)  # set_epoch moved the shuffle on


def test_dataset_shards_of_every_kind(start_regular, tmp_path):
    def loop(config):
        rank = train.get_context().get_world_rank()
        out = {name: [int(v) if not isinstance(v, tuple) else int(v[0])
                      for v in train.get_dataset_shard(name)] for name in ("l", "a", "t")}
        try:
            train.get_dataset_shard("missing")
        except KeyError as e:
            out["error"] = str(e)
        with open(os.path.join(train.get_context().get_trial_dir(), f"s{rank}"), "w") as f:
            json.dump(out, f)
        train.report({})

    data = {"l": list(range(5)), "a": np.arange(6) * 2,
            "t": torch.utils.data.TensorDataset(torch.arange(4))}
    result = _run(tmp_path, loop, datasets=data)
    assert result.error is None
    s0, s1 = (json.load(open(os.path.join(result.path, f"s{r}"))) for r in (0, 1))
    assert (s0["l"], s1["l"]) == ([0, 2, 4], [1, 3, 0])
    assert (s0["a"], s1["a"]) == ([0, 4, 8], [2, 6, 10])
    assert (s0["t"], s1["t"]) == ([0, 2], [1, 3])
    assert "no dataset 'missing'" in s0["error"] and "'l', 'a', 't'" in s0["error"]


def _resume_epoch() -> int:
    """The epoch after the one in the checkpoint the run continues from (else 0)."""
    ckpt = train.get_checkpoint()
    if ckpt is None:
        return 0
    with ckpt.as_directory() as d:
        return json.load(open(os.path.join(d, "state.json")))["epoch"] + 1


def _checkpointing_loop(config):
    import tempfile

    start = _resume_epoch()
    ckpt = train.get_checkpoint()
    for epoch in range(start, config["epochs"]):
        if config.get("kill_at") == epoch and ckpt is None and \
                train.get_context().get_world_rank() == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        if config.get("raise_at") == epoch and ckpt is None:
            raise ValueError(f"loss went to NaN at epoch {epoch}")
        with tempfile.TemporaryDirectory() as d:  # gone as soon as report returns
            with open(os.path.join(d, "state.json"), "w") as f:
                json.dump({"epoch": epoch}, f)
            train.report({"epoch": epoch, "start": start, "score": -abs(epoch - 2)},
                         checkpoint=train.Checkpoint.from_directory(d))


def test_checkpoints_are_kept_by_score_and_num_to_keep(start_regular, tmp_path):
    result = _run(tmp_path, _checkpointing_loop, train_loop_config={"epochs": 5},
                  checkpoint_config=train.CheckpointConfig(
                      num_to_keep=2, checkpoint_score_attribute="score",
                      checkpoint_score_order="max"))
    assert result.error is None
    kept = sorted(n for n in os.listdir(result.path) if n.startswith("checkpoint_"))
    assert len(kept) == 2
    epochs = sorted(json.load(open(os.path.join(result.path, k, "state.json")))["epoch"]
                    for k in kept)
    assert 2 in epochs  # the best score (epoch 2) is kept
    assert result.checkpoint is not None
    assert sorted(r["epoch"] for _, r in result.best_checkpoints) == epochs


def test_a_killed_worker_restarts_the_group_from_the_latest_checkpoint(start_regular,
                                                                        tmp_path):
    began = time.monotonic()
    result = _run(tmp_path, _checkpointing_loop, train_loop_config={"epochs": 4, "kill_at": 2},
                  failure_config=train.FailureConfig(max_failures=1))
    assert result.error is None, result.error
    assert result.metrics["epoch"] == 3 and result.metrics["start"] == 2
    assert time.monotonic() - began < 90
    with open(os.path.join(result.path, "error.txt")) as f:
        assert "died" in f.read()


def test_failures_past_max_failures_come_back_in_the_result(start_regular, tmp_path):
    result = _run(tmp_path, _checkpointing_loop, train_loop_config={"epochs": 4, "kill_at": 1})
    assert isinstance(result.error, TrainingFailedError)
    assert "training worker" in str(result.error) and "died" in str(result.error)
    assert result.checkpoint is not None  # epoch 0's, reported before the kill


def test_a_loop_error_is_raised_when_asked(start_regular, tmp_path):
    with pytest.raises(TrainingFailedError, match="loss went to NaN at epoch 1"):
        _run(tmp_path, _checkpointing_loop, train_loop_config={"epochs": 3, "raise_at": 1},
             failure_config=train.FailureConfig(fail_fast="raise"))


def test_a_collective_stuck_on_a_hung_peer_fails_in_bounded_time(start_regular, tmp_path):
    def loop(config):
        if train.get_context().get_world_rank() == 1:
            time.sleep(120)  # never joins the all-reduce
        torch.distributed.all_reduce(torch.ones(1))
        train.report({})

    began = time.monotonic()
    result = _run(tmp_path, loop, torch_config=TorchConfig(timeout_s=3))
    assert isinstance(result.error, TrainingFailedError)
    assert "timed out" in str(result.error).lower() or "timeout" in str(result.error).lower()
    assert time.monotonic() - began < 60


def test_restore_continues_a_failed_run(start_regular, tmp_path):
    result = _run(tmp_path, _checkpointing_loop, train_loop_config={"epochs": 4, "raise_at": 2})
    assert result.error is not None
    path = os.path.join(str(tmp_path), "run")
    assert TorchTrainer.can_restore(path) and not TorchTrainer.can_restore(str(tmp_path))
    restored = TorchTrainer.restore(path, train_loop_config={"epochs": 4})
    again = restored.fit()
    assert again.error is None, again.error
    assert again.metrics["epoch"] == 3 and again.metrics["start"] == 2
    with pytest.raises(ValueError, match="not a TorchTrainer run folder"):
        TorchTrainer.restore(str(tmp_path))


def test_a_trainer_is_a_tune_trainable_with_a_group_per_trial(start_regular, tmp_path):
    def loop(config):
        for epoch in range(6):
            train.report({"loss": config["lr"] * (6 - epoch), "pid": os.getpid()})

    trainer = TorchTrainer(loop, scaling_config=train.ScalingConfig(num_workers=1))
    grid = tune.Tuner(
        trainer, param_space={"train_loop_config": {"lr": tune.grid_search([1, 2, 3, 4])}},
        tune_config=tune.TuneConfig(metric="loss", mode="min", scheduler=tune.schedulers
                                    .ASHAScheduler(max_t=6, grace_period=1, reduction_factor=2)),
        run_config=train.RunConfig(storage_path=str(tmp_path), name="sweep", verbose=0)).fit()
    assert len(grid) == 4 and grid.num_errors == 0
    assert grid.get_best_result().config["train_loop_config"]["lr"] == 1
    iterations = sorted(r.metrics["training_iteration"] for r in grid)
    assert iterations[-1] == 6 and iterations[0] < 6  # ASHA stopped some early
    assert len({r.metrics["pid"] for r in grid}) == 4  # each trial its own worker


def test_impossible_requests_fail_before_any_worker_starts(start_regular, tmp_path):
    def loop(config):
        train.report({})

    with pytest.raises(ValueError, match="cluster has no GPU"):
        TorchTrainer(loop, scaling_config=train.ScalingConfig(num_workers=1, use_gpu=True)).fit()
    with pytest.raises(ValueError, match="more than the cluster has"):
        TorchTrainer(loop, scaling_config=train.ScalingConfig(num_workers=5)).fit()
    with pytest.raises(ValueError, match="more than the cluster has"):
        TorchTrainer(loop, scaling_config=train.ScalingConfig(
            num_workers=1, resources_per_worker={"CPU": 1, "TPU": 1})).fit()
    assert not os.listdir(tmp_path)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_one_nccl_worker_trains_on_the_gpu(start_cluster, tmp_path):
    start_cluster(num_cpus=2, num_gpus=1)

    def loop(config):
        model = prepare_model(torch.nn.Linear(8, 1))
        assert all(p.is_cuda for p in model.parameters())
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        x = torch.randn(256, 8, device=train.torch.get_device())
        y = x.sum(1, keepdim=True)
        for _ in range(20):
            loss = ((model(x) - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            train.report({"loss": loss.item(), "device": str(next(model.parameters()).device)})

    result = TorchTrainer(loop, scaling_config=train.ScalingConfig(num_workers=1, use_gpu=True),
                          run_config=train.RunConfig(storage_path=str(tmp_path),
                                                     verbose=0)).fit()
    assert result.error is None and result.metrics["device"] == "cuda:0"
    first = result.metrics_dataframe["loss"].iloc[0]
    assert result.metrics["loss"] < first / 2


def test_an_elastic_run_grows_at_a_checkpoint_when_resources_appear(start_regular, tmp_path):
    import skate

    @skate.remote(num_cpus=1)
    class Blocker:
        def ready(self):
            return True

    blocker = Blocker.options(name="blocker").remote()
    skate.get(blocker.ready.remote())

    def loop(config):
        import tempfile

        ctx = train.get_context()
        for epoch in range(_resume_epoch(), 6):
            if epoch == 1 and ctx.get_world_rank() == 0 and ctx.get_world_size() == 1:
                skate.kill(skate.get_actor("blocker"))  # a CPU comes free
                # report once the cluster's view shows it, so the trainer sees it too
                wait_for_condition(lambda: skate.available_resources().get("CPU", 0) >= 1,
                                   timeout=20)
            with tempfile.TemporaryDirectory() as d:
                with open(os.path.join(d, "state.json"), "w") as f:
                    json.dump({"epoch": epoch}, f)
                train.report({"epoch": epoch, "world": ctx.get_world_size()},
                             checkpoint=train.Checkpoint.from_directory(d))

    result = TorchTrainer(loop, scaling_config=train.ScalingConfig(num_workers=(1, 2)),
                          run_config=train.RunConfig(storage_path=str(tmp_path),
                                                     verbose=0)).fit()
    assert result.error is None, result.error
    df = result.metrics_dataframe
    assert list(df["epoch"]) == [0, 1, 2, 3, 4, 5]  # every epoch once, none lost or repeated
    worlds = list(df["world"])
    assert worlds[0] == 1 and worlds[-1] == 2 and worlds == sorted(worlds)

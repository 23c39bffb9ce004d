"""The pure pieces of skate.sgd: ScalingConfig / TorchConfig checks and bundles, the
dataset split by rank (equal to torch's DistributedSampler), and the checks a trainer
makes before anything starts."""

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler, TensorDataset

from skate.sgd.config import ScalingConfig, TorchConfig
from skate.sgd.trainer import TorchTrainer
from skate.sgd.worker_group import shard

pytestmark = pytest.mark.skate_only


def test_scaling_config_bundles_and_totals():
    s = ScalingConfig(num_workers=3, resources_per_worker={"CPU": 2, "memory": 0},
                      trainer_resources={"CPU": 1})
    assert s.bundles() == [{"CPU": 1}, {"CPU": 2}, {"CPU": 2}, {"CPU": 2}]
    assert s.total_resources == {"CPU": 7}
    assert s.num_cpus_per_worker == 2.0 and s.num_gpus_per_worker == 0.0
    gpu = ScalingConfig(num_workers=2, use_gpu=True)
    assert gpu.worker_resources == {"CPU": 1, "GPU": 1}
    pgf = gpu.as_placement_group_factory()
    assert pgf.bundles == [{}, {"CPU": 1, "GPU": 1}, {"CPU": 1, "GPU": 1}]
    assert pgf.strategy == "PACK"


@pytest.mark.parametrize("kwargs, error, words", [
    ({"num_workers": 0}, ValueError, "at least one worker"),
    ({"num_workers": 1.5}, TypeError, "takes an int"),
    ({"num_workers": True}, TypeError, "takes an int"),
    ({"use_gpu": "yes"}, TypeError, "True or False"),
    ({"num_workers": (3, 2)}, ValueError, "1 <= min <= max"),
    ({"num_workers": (0, 2)}, ValueError, "1 <= min <= max"),
    ({"num_workers": (1, 2, 3)}, TypeError, "two ints"),
    ({"num_workers": (1, 2.5)}, TypeError, "two ints"),
    ({"placement_strategy": "TIGHT"}, ValueError, "PACK, SPREAD"),
    ({"resources_per_worker": {"CPU": -1}}, ValueError, "number >= 0"),
    ({"resources_per_worker": [1]}, TypeError, "dict of resources"),
    ({"trainer_resources": {"CPU": "one"}}, ValueError, "number >= 0"),
])
def test_scaling_config_refuses_bad_settings(kwargs, error, words):
    with pytest.raises(error, match=words):
        ScalingConfig(**kwargs)


def test_an_elastic_config_reserves_its_minimum():
    s = ScalingConfig(num_workers=[2, 5])
    assert s.num_workers == (2, 5) and s.elastic
    assert (s.min_workers, s.max_workers) == (2, 5)
    assert s.bundles() == [{}, {"CPU": 1}, {"CPU": 1}] and s.total_resources == {"CPU": 2}
    assert not ScalingConfig(num_workers=3).elastic


def test_use_gpu_with_cpu_only_worker_resources_is_refused():
    with pytest.raises(ValueError, match="gives no 'GPU'"):
        _ = ScalingConfig(use_gpu=True, resources_per_worker={"CPU": 1}).worker_resources


def test_torch_config():
    assert TorchConfig().backend_for(use_gpu=False) == "gloo"
    assert TorchConfig().backend_for(use_gpu=True) == "nccl"
    assert TorchConfig(backend="gloo").backend_for(use_gpu=True) == "gloo"
    with pytest.raises(ValueError, match="gloo, nccl"):
        TorchConfig(backend="mpi")
    with pytest.raises(ValueError, match="> 0"):
        TorchConfig(timeout_s=0)


@pytest.mark.parametrize("n, world", [(10, 2), (7, 3), (5, 2), (2, 4), (12, 4)])
def test_shards_are_distributed_samplers_split(n, world):
    data = list(range(n))
    for rank in range(world):
        want = list(DistributedSampler(data, num_replicas=world, rank=rank, shuffle=False))
        assert shard(data, rank, world) == want
        arr = np.arange(n) * 10
        np.testing.assert_array_equal(shard(arr, rank, world), arr[want])
        ds = TensorDataset(torch.arange(n))
        assert [int(ds_item[0]) for ds_item in shard(ds, rank, world)] == want


def test_an_even_numpy_split_is_a_view():
    arr = np.arange(12).reshape(6, 2)
    part = shard(arr, 1, 2)
    assert np.shares_memory(part, arr)
    np.testing.assert_array_equal(part, arr[1::2])


def _unpicklable_loop():
    import threading

    lock = threading.Lock()

    def loop(config):
        with lock:
            pass
    return loop


@pytest.mark.parametrize("make, error, words", [
    (lambda: TorchTrainer("not a function"), TypeError, "must be a function"),
    (lambda: TorchTrainer(lambda c: None, scaling_config={"num_workers": 2}), TypeError,
     "scaling_config=...\\) takes a ScalingConfig"),
    (lambda: TorchTrainer(lambda c: None, train_loop_config=[1]), TypeError,
     "train_loop_config"),
    (lambda: TorchTrainer(lambda c: None, datasets={"train": 3}), TypeError,
     "datasets\\['train'\\] must be a list"),
    (lambda: TorchTrainer(_unpicklable_loop()), TypeError, "does not pickle"),
])
def test_a_trainer_refuses_bad_arguments_when_made(make, error, words):
    with pytest.raises(error, match=words):
        make()

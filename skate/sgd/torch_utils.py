"""Inside a training loop: the worker's device, its model wrapped for data parallelism,
its data loader sharded by rank (``train.torch.prepare_model`` / ``prepare_data_loader``).

>>> import torch
>>> from skate.sgd.torch_utils import get_device, prepare_model
>>> get_device()  # outside a run, or a CPU worker
device(type='cpu')
>>> type(prepare_model(torch.nn.Linear(2, 1))).__name__  # world size 1: the model itself
'Linear'
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from skate.sgd import session as session_mod


def get_device() -> torch.device:
    """This worker's device: its GPU (the only one it sees) when it has one, else the CPU."""
    if torch.cuda.is_available() and torch.cuda.device_count() > 0:
        return torch.device("cuda", 0)
    return torch.device("cpu")


def get_devices() -> list:
    return [get_device()]


def _world_size() -> int:
    return session_mod.get_context().get_world_size()


def prepare_model(model: torch.nn.Module, move_to_device: bool = True,
                  parallel_strategy: str | None = "ddp",
                  parallel_strategy_kwargs: dict | None = None) -> torch.nn.Module:
    """``model`` on this worker's device, wrapped in ``DistributedDataParallel`` when the
    run has more than one worker (``parallel_strategy=None``: never wrapped)."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"prepare_model takes a torch.nn.Module, got {type(model).__name__}")
    if parallel_strategy not in ("ddp", None):
        raise ValueError(f"parallel_strategy={parallel_strategy!r}: 'ddp' or None")
    device = get_device()
    if move_to_device:
        model = model.to(device)
    if parallel_strategy is None or _world_size() <= 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    kwargs = dict(parallel_strategy_kwargs or {})
    if device.type == "cuda":
        kwargs.setdefault("device_ids", [device.index or 0])
    return DistributedDataParallel(model, **kwargs)


class _DeviceLoader:
    """A DataLoader whose batches land on the device, with the sampler's epoch moved on
    at every new pass (so each epoch shuffles differently, as DistributedSampler needs)."""

    def __init__(self, loader: DataLoader, device: torch.device, sampler):
        self._loader, self._device, self._sampler = loader, device, sampler
        self._epoch = 0

    def __len__(self):
        return len(self._loader)

    def __getattr__(self, name):  # batch_size, dataset, ... of the loader
        return getattr(self._loader, name)

    def _move(self, item):
        if isinstance(item, torch.Tensor):
            return item.to(self._device, non_blocking=True)
        if isinstance(item, (list, tuple)):
            return type(item)(self._move(x) for x in item)
        if isinstance(item, dict):
            return {k: self._move(v) for k, v in item.items()}
        return item

    def __iter__(self):
        if self._sampler is not None:
            self._sampler.set_epoch(self._epoch)
        self._epoch += 1
        for batch in self._loader:
            yield self._move(batch) if self._device.type != "cpu" else batch


def prepare_data_loader(data_loader: DataLoader, add_dist_sampler: bool = True,
                        move_to_device: bool = True):
    """``data_loader`` reading only this worker's share (a ``DistributedSampler``, shuffled
    if the loader shuffled, its epoch set on every pass) with batches moved to the device.
    A 1-worker run keeps the loader's own sampler."""
    if not isinstance(data_loader, DataLoader):
        raise TypeError(f"prepare_data_loader takes a torch DataLoader, got "
                        f"{type(data_loader).__name__}")
    ctx = session_mod.get_context()
    sampler = None
    loader = data_loader
    if add_dist_sampler and ctx.get_world_size() > 1:
        if data_loader.batch_size is None:
            raise ValueError("prepare_data_loader: the loader has a batch_sampler; give it a "
                             "batch_size and a plain sampler so it can be sharded by rank")
        shuffle = isinstance(data_loader.sampler, RandomSampler)
        sampler = DistributedSampler(data_loader.dataset, num_replicas=ctx.get_world_size(),
                                     rank=ctx.get_world_rank(), shuffle=shuffle)
        loader = DataLoader(data_loader.dataset, batch_size=data_loader.batch_size,
                            sampler=sampler, num_workers=data_loader.num_workers,
                            collate_fn=data_loader.collate_fn,
                            pin_memory=data_loader.pin_memory,
                            drop_last=data_loader.drop_last,
                            timeout=data_loader.timeout,
                            worker_init_fn=data_loader.worker_init_fn,
                            generator=data_loader.generator,
                            prefetch_factor=data_loader.prefetch_factor,
                            persistent_workers=data_loader.persistent_workers)
    device = get_device() if move_to_device else torch.device("cpu")
    return _DeviceLoader(loader, device, sampler)

"""ScalingConfig and TorchConfig: how many workers, what each holds, how they talk.

A training run is one placement group: bundle 0 holds the trainer (the
coordinator, which only waits on the workers, so by default it holds no CPU
-- Ray gives it one, which on a 2-core machine leaves room for one worker),
bundles 1..N one worker each. The settings are checked when the config is
made, so a typo fails at the call that made it.

>>> s = ScalingConfig(num_workers=2)
>>> s.worker_resources, s.bundles()
({'CPU': 1}, [{}, {'CPU': 1}, {'CPU': 1}])
"""

from __future__ import annotations

import dataclasses

_STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")
_BACKENDS = ("gloo", "nccl")


def _check_resources(name: str, resources) -> dict:
    if not isinstance(resources, dict):
        raise TypeError(f"{name} must be a dict of resources such as {{'CPU': 2}}, got "
                        f"{type(resources).__name__}")
    for key, value in resources.items():
        if not isinstance(key, str):
            raise TypeError(f"{name}: resource names are strings, got {key!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{name}[{key!r}] must be a number >= 0, got {value!r}")
    return {k: v for k, v in resources.items() if v}


@dataclasses.dataclass
class ScalingConfig:
    """Workers of a data-parallel run and the resources each holds.

    ``num_workers`` workers, each ``resources_per_worker`` (default one CPU, plus one
    GPU with ``use_gpu=True``); ``trainer_resources`` for the coordinator (default
    none); ``placement_strategy`` for the group ("PACK": as few nodes as possible).
    ``num_workers=(min, max)`` is elastic: the run starts with ``min`` workers plus as
    many more as fit at that moment, and grows towards ``max`` at a reported
    checkpoint when resources have appeared (see docs/sgd.md).

    >>> ScalingConfig(num_workers=2, use_gpu=True).worker_resources
    {'CPU': 1, 'GPU': 1}
    >>> ScalingConfig(num_workers=0)
    Traceback (most recent call last):
    ValueError: ScalingConfig(num_workers=0): a run needs at least one worker
    >>> s = ScalingConfig(num_workers=(1, 4))
    >>> s.min_workers, s.max_workers, s.elastic, len(s.bundles())
    (1, 4, True, 2)
    """

    trainer_resources: dict | None = None
    num_workers: int = 1
    use_gpu: bool = False
    resources_per_worker: dict | None = None
    placement_strategy: str = "PACK"

    def __post_init__(self):
        n = self.num_workers
        if isinstance(n, (tuple, list)):
            if len(n) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in n):
                raise TypeError(f"ScalingConfig(num_workers=(min, max)) takes two ints, got "
                                f"{n!r}")
            if not 1 <= n[0] <= n[1]:
                raise ValueError(f"ScalingConfig(num_workers={tuple(n)}): needs "
                                 f"1 <= min <= max")
            self.num_workers = tuple(n)
        elif isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"ScalingConfig(num_workers=...) takes an int (or a (min, max) "
                            f"pair), got {n!r}")
        elif n < 1:
            raise ValueError(f"ScalingConfig(num_workers={n}): a run needs at least one worker")
        if not isinstance(self.use_gpu, bool):
            raise TypeError(f"ScalingConfig(use_gpu=...) takes True or False, got "
                            f"{self.use_gpu!r}")
        if self.placement_strategy not in _STRATEGIES:
            raise ValueError(f"ScalingConfig(placement_strategy={self.placement_strategy!r}): "
                             f"one of {', '.join(_STRATEGIES)}")
        if self.resources_per_worker is not None:
            _check_resources("resources_per_worker", self.resources_per_worker)
        if self.trainer_resources is not None:
            _check_resources("trainer_resources", self.trainer_resources)

    @property
    def min_workers(self) -> int:
        n = self.num_workers
        return n[0] if isinstance(n, tuple) else n

    @property
    def max_workers(self) -> int:
        n = self.num_workers
        return n[1] if isinstance(n, tuple) else n

    @property
    def elastic(self) -> bool:
        return self.min_workers != self.max_workers

    @property
    def worker_resources(self) -> dict:
        """What one worker holds."""
        if self.resources_per_worker is not None:
            res = _check_resources("resources_per_worker", self.resources_per_worker)
            if self.use_gpu and not res.get("GPU"):
                raise ValueError("use_gpu=True but resources_per_worker gives no 'GPU'; "
                                 "add one ({'GPU': 1}) or drop use_gpu")
            return res
        return {"CPU": 1, "GPU": 1} if self.use_gpu else {"CPU": 1}

    @property
    def num_cpus_per_worker(self) -> float:
        return float(self.worker_resources.get("CPU", 0))

    @property
    def num_gpus_per_worker(self) -> float:
        return float(self.worker_resources.get("GPU", 0))

    def bundles(self) -> list:
        """The placement group's bundles: the trainer's, then one per worker (``min``
        workers when elastic: the rest come in groups of their own)."""
        trainer = _check_resources("trainer_resources", self.trainer_resources or {})
        return [trainer] + [dict(self.worker_resources) for _ in range(self.min_workers)]

    @property
    def total_resources(self) -> dict:
        total: dict = {}
        for bundle in self.bundles():
            for k, v in bundle.items():
                total[k] = total.get(k, 0) + v
        return total

    def as_placement_group_factory(self):
        """The run's resources for Tune: a ``PlacementGroupFactory`` of ``bundles()``."""
        from skate.tune.placement_group_factory import PlacementGroupFactory

        return PlacementGroupFactory(self.bundles(), strategy=self.placement_strategy)


@dataclasses.dataclass
class TorchConfig:
    """How the workers' ``torch.distributed`` group is made.

    ``backend``: "gloo" or "nccl" (default: nccl when the workers have GPUs, else gloo).
    ``timeout_s``: how long a collective may wait for a peer before it fails (a worker
    that died is noticed by the trainer at once; this bounds a peer that hangs).

    >>> TorchConfig().timeout_s
    1800
    """

    backend: str | None = None
    timeout_s: float = 1800

    def __post_init__(self):
        if self.backend is not None and self.backend not in _BACKENDS:
            raise ValueError(f"TorchConfig(backend={self.backend!r}): one of "
                             f"{', '.join(_BACKENDS)} (or None to pick by device)")
        if isinstance(self.timeout_s, bool) or not isinstance(self.timeout_s, (int, float)) \
                or self.timeout_s <= 0:
            raise ValueError(f"TorchConfig(timeout_s={self.timeout_s!r}) must be a number > 0")

    def backend_for(self, use_gpu: bool) -> str:
        return self.backend or ("nccl" if use_gpu else "gloo")

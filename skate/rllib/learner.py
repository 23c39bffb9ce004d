"""Learners: where gradient steps happen, in the driver or on data-parallel actors.

A ``Learner`` owns one copy of the module and its optimizer and turns a
training batch into updated weights (each algorithm subclasses it with its
``update``). ``LearnerGroup`` runs ``num_learners`` of them:

- ``num_learners=0``: one learner in the algorithm's own process, sharing its module.
- ``num_learners=1``: one learner actor (so the learner can sit on a GPU node).
- ``num_learners=N>1``: N actors in one torch.distributed group (gloo on CPU, nccl on
  GPU) with the module wrapped in DistributedDataParallel. Every learner reads the
  same batch (one ``put``), walks the same minibatch order (a seed sent with the
  batch) and trains on its own slice of each minibatch; DDP averages the gradients,
  and each slice's loss is weighted by its share of the minibatch, so the update is
  the one a single learner makes on the whole minibatch.

Threads: sampling and learning take turns (the runners wait while the learner
steps), so a learner in the driver uses every core; N learner actors split them.
"""

from __future__ import annotations

import abc
import os
import socket

import numpy as np

import skate
from skate.rllib.lazy_torch import torch

# Below this many multiply-adds in a minibatch's largest layer, a second thread costs
# more (fork/join per op) than it saves: measured here, a [256, 64] x [64, 64] matmul
# takes 37 us on one thread and 58 us on two, a [128, 256] x [256, 256] one 230 and 142.
PARALLEL_MIN_MACS = 4_000_000


def learner_threads(num_learners: int, config=None) -> int:
    """Torch threads for one learner: this process's CPUs (all cores in a driver, the
    actor's CPUs in a tune trial) split between ``num_learners`` concurrent learners;
    one thread when the network is too small for a second to help."""
    if config is not None:
        hidden = max(list(config.model.get("fcnet_hiddens", [256, 256])) or [1])
        rows = (config.get("minibatch_size") or config.train_batch_size) / max(1, num_learners)
        if rows * hidden * hidden < PARALLEL_MIN_MACS:
            return 1
    ctx_cpus = 0.0
    if skate.is_initialized():
        ctx_cpus = skate.get_runtime_context().get_assigned_resources().get("CPU", 0.0)
    cpus = int(ctx_cpus) if ctx_cpus >= 1 else (os.cpu_count() or 1)
    return max(1, cpus // max(1, num_learners))


class Learner(abc.ABC):
    """One module copy and its optimizer; rank ``rank`` of ``world_size`` learners.

    ``spec``: ``config`` (the AlgorithmConfig), ``spaces`` (observation and action
    space), ``module_class``, ``model`` (its settings) and optionally ``module`` (the
    caller's, shared when the learner is on the CPU).
    """

    def __init__(self, spec: dict, rank: int = 0, world_size: int = 1):
        from skate.rllib.module import RLModule

        self.config = c = spec["config"]
        self.rank, self.world_size = rank, world_size
        self.device = torch.device("cuda" if c.num_gpus_per_learner else "cpu")
        module = spec.get("module")
        if module is None or self.device.type != "cpu":
            module = (spec.get("module_class") or RLModule)(*spec["spaces"], spec["model"])
            if spec.get("module") is not None:
                module.load_state_dict(spec["module"].state_dict())
        self.module = module.to(self.device)
        self.train_module = self.module  # the DDP wrapper once distributed
        torch.set_num_threads(spec.get("threads") or learner_threads(c.num_learners, c))
        self.build()

    # -- what an algorithm's learner fills in ----------------------------------------------
    def build(self) -> None:
        """Create the optimizer and anything else the update needs."""

    @abc.abstractmethod
    def update(self, batch: dict, **kwargs) -> dict:
        """Train on ``batch`` (numpy arrays); return this learner's metrics (floats)."""

    # -- shared pieces -----------------------------------------------------------------------
    def adam(self, **kwargs) -> "Adam":
        """Adam over the module's parameters, the fused kernel (one op for all tensors)."""
        return Adam(self.module.parameters(), **kwargs)

    def tensors(self, batch: dict, keys) -> dict:
        """The batch's arrays as tensors on this learner's device (arrays read from the
        object store are read-only views: those are copied)."""
        out = {}
        for k in keys:
            a = np.asarray(batch[k])
            out[k] = torch.from_numpy(a if a.flags.writeable else a.copy()).to(self.device)
        return out

    def my_slice(self, start: int, stop: int) -> tuple:
        """(slice of rows [start, stop) this rank trains on, its share of the rows)."""
        n = stop - start
        if self.world_size == 1:
            return slice(start, stop), 1.0
        bounds = np.linspace(start, stop, self.world_size + 1).round().astype(int)
        lo, hi = int(bounds[self.rank]), int(bounds[self.rank + 1])
        return slice(lo, hi), (hi - lo) / n

    def apply_gradients(self, loss: torch.Tensor, optimizer, share: float = 1.0):
        """Backward (DDP averages across ranks; ``share`` makes that the whole minibatch's
        mean), optional clipping, one optimizer step; the gradient norm or None."""
        optimizer.zero_grad()
        (loss * (share * self.world_size) if self.world_size > 1 else loss).backward()
        norm = None
        clip = self.config.grad_clip
        if clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.module.parameters(), clip)
        optimizer.step()
        return norm

    # -- data parallel ---------------------------------------------------------------------
    def rendezvous(self) -> tuple:
        """(address, free port) for the group's store, picked by rank 0."""
        host = skate.util.get_node_ip_address()
        with socket.socket() as s:
            s.bind((host, 0))
            return host, s.getsockname()[1]

    def join_group(self, host: str, port: int, timeout_s: float = 60.0) -> None:
        import datetime

        import torch.distributed as dist

        backend = "nccl" if self.device.type == "cuda" else "gloo"
        dist.init_process_group(backend, init_method=f"tcp://{host}:{port}", rank=self.rank,
                                world_size=self.world_size,
                                timeout=datetime.timedelta(seconds=timeout_s))
        from torch.nn.parallel import DistributedDataParallel

        self.train_module = DistributedDataParallel(
            self.module, device_ids=[self.device.index or 0] if backend == "nccl" else None)

    # -- state -----------------------------------------------------------------------------
    def get_weights(self) -> dict:
        return self.module.get_state()

    def set_weights(self, weights: dict) -> None:
        self.module.set_state(weights)

    def get_state(self) -> dict:
        opt = getattr(self, "optimizer", None)
        return {"optimizer": opt.state_dict() if opt is not None else None}

    def set_state(self, state: dict) -> None:
        if state.get("optimizer") is not None:
            self.optimizer.load_state_dict(state["optimizer"])

    def stop(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


class Adam:
    """torch's Adam, the fused kernel (``torch.optim.adam.adam``), over a fixed list of
    parameters.

    ``torch.optim.Adam`` computes the same update, but its constructor imports
    ``torch._dynamo`` (1.3-1.8 s here, on the path to a run's first iteration) and its
    ``step()`` adds ~45 us of bookkeeping to every minibatch; the functional form does
    neither. ``state_dict()`` holds the moments and step counts.

    >>> p = torch.nn.Parameter(torch.zeros(2)); p.grad = torch.ones(2)
    >>> opt = Adam([p], lr=0.1); opt.step(); [round(x, 4) for x in p.tolist()]
    [-0.1, -0.1]
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8):
        from torch.optim.adam import adam

        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr < 0:
            raise TypeError(f"lr must be a number >= 0, got {lr!r}")
        self._adam = adam
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps = float(lr), tuple(betas), float(eps)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device)
                      for p in self.params]
        # one float32 device for all: the fused kernel itself (else the functional form)
        same = len({(p.device, p.dtype) for p in self.params}) == 1 and \
            all(p.dtype == torch.float32 for p in self.params)
        self._kernel = getattr(torch, "_fused_adam_", None) if same else None

    def step(self) -> None:
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        pick = [self.params[i] for i in live]
        grads, avg, avg_sq = ([p.grad for p in pick], [self.exp_avg[i] for i in live],
                              [self.exp_avg_sq[i] for i in live])
        steps = [self.steps[i] for i in live]
        with torch.no_grad():
            if self._kernel is not None:  # the op the functional form ends in, called
                # straight (its tensor grouping costs ~60 us a step for one device/dtype)
                torch._foreach_add_(steps, 1)
                self._kernel(pick, grads, avg, avg_sq, [], steps, lr=self.lr,
                             beta1=self.betas[0], beta2=self.betas[1], weight_decay=0.0,
                             eps=self.eps, amsgrad=False, maximize=False, grad_scale=None,
                             found_inf=None)
                return
            self._adam(pick, grads, avg, avg_sq, [], steps,
                       foreach=False, fused=True, capturable=False, differentiable=False,
                       grad_scale=None, found_inf=None, has_complex=False, amsgrad=False,
                       beta1=self.betas[0], beta2=self.betas[1], lr=self.lr,
                       weight_decay=0.0, eps=self.eps, maximize=False)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict:
        return {"kind": "adam", "lr": self.lr, "betas": self.betas, "eps": self.eps,
                "exp_avg": [t.cpu() for t in self.exp_avg],
                "exp_avg_sq": [t.cpu() for t in self.exp_avg_sq],
                "steps": [t.cpu() for t in self.steps]}

    def load_state_dict(self, state: dict) -> None:
        if len(state["exp_avg"]) != len(self.params):
            raise ValueError(f"optimizer state for {len(state['exp_avg'])} parameters, "
                             f"this module has {len(self.params)}")
        for name in ("exp_avg", "exp_avg_sq", "steps"):
            for mine, saved in zip(getattr(self, name), state[name]):
                mine.copy_(saved)


def mean_metrics(results: list) -> dict:
    """Each learner's metrics averaged (equal slices: the whole batch's means)."""
    return {k: float(np.mean([r[k] for r in results])) for k in results[0]} if results else {}


class LearnerGroup:
    """``num_learners`` learners of ``learner_class`` (see the module docstring)."""

    def __init__(self, learner_class, spec: dict):
        c = spec["config"]
        n = int(c.num_learners)
        self.local = None
        self.actors: list = []
        if n == 0:
            self.local = learner_class(spec, 0, 1)
            return
        remote_spec = {k: v for k, v in spec.items() if k != "module"}
        remote_spec["initial_weights"] = spec["module"].get_state()
        cls = skate.remote(num_cpus=c.num_cpus_per_learner or 0,
                           num_gpus=c.num_gpus_per_learner or 0)(_LearnerActor)
        self.actors = [cls.remote(learner_class, remote_spec, r, n) for r in range(n)]
        if n > 1:
            host, port = skate.get(self.actors[0].call.remote("rendezvous"))
            skate.get([a.call.remote("join_group", host, port) for a in self.actors])
        else:
            skate.get(self.actors[0].call.remote("get_state"))  # built, or its error

    def update(self, batch: dict, **kwargs) -> list:
        """Every learner trains on the batch; what each returned, by rank."""
        if self.local is not None:
            return [self.local.update(batch, **kwargs)]
        ref = skate.put(batch)
        return skate.get([a.update.remote(ref, **kwargs) for a in self.actors])

    def update_async(self, *fragments, **kwargs) -> list:
        """Every learner actor starts ``update_fragments(*fragments, **kwargs)`` (refs
        among the fragments are read in the actor, from the object store); the calls'
        refs, by rank. Actor calls run in order, so a later call sees this update."""
        return [a.call.remote("update_fragments", *fragments, **kwargs) for a in self.actors]

    def weights_async(self):
        """A ref of rank 0's weights, after the updates already sent to it."""
        return self.actors[0].call.remote("get_weights")

    @property
    def remote(self) -> bool:
        return self.local is None

    def get_weights(self) -> dict:
        if self.local is not None:
            return self.local.get_weights()
        return skate.get(self.actors[0].call.remote("get_weights"))

    def get_state(self) -> dict:
        if self.local is not None:
            return self.local.get_state()
        return skate.get(self.actors[0].call.remote("get_state"))

    def set_state(self, state: dict, weights: dict) -> None:
        if self.local is not None:
            self.local.set_weights(weights)
            self.local.set_state(state)
            return
        skate.get([a.call.remote("set_weights", weights) for a in self.actors]
                  + [a.call.remote("set_state", state) for a in self.actors])

    def stop(self) -> None:
        for a in self.actors:
            try:
                skate.kill(a)
            except Exception:
                pass
        self.actors = []


class _LearnerActor:
    """A learner in its own process (``LearnerGroup`` makes these)."""

    def __init__(self, learner_class, spec: dict, rank: int, world_size: int):
        from skate.rllib.module import RLModule

        weights = spec.pop("initial_weights")
        module = (spec.get("module_class") or RLModule)(*spec["spaces"], spec["model"])
        module.set_state(weights)
        self.learner = learner_class({**spec, "module": module}, rank, world_size)

    def update(self, batch: dict, **kwargs) -> dict:
        return self.learner.update(batch, **kwargs)

    def call(self, method: str, *args, **kwargs):
        return getattr(self.learner, method)(*args, **kwargs)

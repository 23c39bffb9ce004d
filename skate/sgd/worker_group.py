"""The worker group: N actors in the run's placement group, one torch.distributed group.

``WorkerGroup.start`` places each worker in its own bundle (of the placement
group the trainer runs in, and of extra groups an elastic run adds), asks each
where it landed, numbers them (workers on the trainer's node first, then node
by node, so local ranks are contiguous), lets rank 0 pick the rendezvous
address and a free port, and has every worker join the process group (gloo on
CPU, nccl on GPU) with the
collective timeout of ``TorchConfig``. ``run`` starts the loop in every
worker; ``next_results`` collects one report from each.

Failure: the trainer waits on all workers at once, so a worker that dies
(kill -9, a crash) or whose loop raises is seen as soon as it happens, while
its peers may still be blocked in a collective waiting for it; the group is
then killed (``shutdown``) and the error raised, typed: ``TrainingWorkerError``
for a dead worker, the loop's own exception (as a ``RayTaskError`` carrying
the worker's traceback) for a failing loop.

>>> from skate.sgd.worker_group import shard
>>> shard(list(range(5)), rank=1, world_size=2)
[1, 3, 0]
"""

from __future__ import annotations

import inspect
import io
import os
import socket
import tarfile
import threading

import skate
from skate.exceptions import RayActorError, RayError
from skate.sgd import session as session_mod


class TrainingWorkerError(RayError):
    """A training worker died (its process ended) while the run was going on."""


def shard(data, rank: int, world_size: int):
    """Rows ``rank, rank + world_size, ...`` of ``data`` (a list, numpy array or torch
    Dataset), the indices padded by wrapping around so every rank gets
    ``ceil(len / world_size)`` rows -- torch's DistributedSampler(shuffle=False) split."""
    n = len(data)
    per_rank = -(-n // world_size)
    indices = [i % n for i in range(rank, per_rank * world_size, world_size)] if n else []
    if isinstance(data, list):
        return [data[i] for i in indices]
    try:
        import numpy as np

        if isinstance(data, np.ndarray):
            if per_rank * world_size == n:
                return data[rank::world_size]  # a view, no copy
            return data[np.asarray(indices, dtype=np.int64)]
    except ImportError:  # pragma: no cover - numpy comes with torch
        pass
    from torch.utils.data import Subset

    return Subset(data, indices)


def _takes_config(fn) -> bool:
    try:
        return len(inspect.signature(fn).parameters) >= 1
    except (TypeError, ValueError):
        return True


class TrainWorker:
    """One worker of a run: its own process, its loop in a thread."""

    def __init__(self, torch_threads: int):
        import torch  # now, while the other workers start too

        torch.set_num_threads(max(1, int(torch_threads)))
        self._session: session_mod._WorkerSession | None = None
        self._thread: threading.Thread | None = None

    def where(self) -> dict:
        """Where this worker runs: node id, host, address, pid, its GPUs."""
        return {"node_id": skate.get_runtime_context().get_node_id(),
                "hostname": socket.gethostname(), "ip": skate.util.get_node_ip_address(),
                "pid": os.getpid(), "gpu_ids": list(skate.get_gpu_ids())}

    def rendezvous_address(self) -> tuple:
        """(this node's address, a port free on it) for the process group's store."""
        host = skate.util.get_node_ip_address()
        with socket.socket() as s:
            s.bind((host, 0))
            return host, s.getsockname()[1]

    def join(self, backend: str, host: str, port: int, rank: int, world_size: int,
             timeout_s: float) -> None:
        import datetime

        import torch
        import torch.distributed as dist

        if backend == "nccl":
            torch.cuda.set_device(0)  # the only GPU this worker sees
        dist.init_process_group(backend, init_method=f"tcp://{host}:{port}", rank=rank,
                                world_size=world_size,
                                timeout=datetime.timedelta(seconds=timeout_s))

    def start(self, fn, config: dict, info: dict, checkpoint_path: str | None,
              datasets: dict) -> None:
        from skate.tune.checkpoint import Checkpoint

        rank, world = info["world_rank"], info["world_size"]
        shards = {name: shard(skate.get(ref) if isinstance(ref, skate.ObjectRef) else ref,
                              rank, world) for name, ref in datasets.items()}
        self._handed_out = False
        sess = self._session = session_mod._WorkerSession(
            info, Checkpoint(checkpoint_path) if checkpoint_path else None, shards)
        session_mod._install(sess)
        with_config = _takes_config(fn)

        def loop():
            try:
                fn(config) if with_config else fn()
                sess.items.put(("done",))
            except session_mod._StopTraining:
                sess.items.put(("done",))
            except BaseException as e:  # noqa: BLE001 - the loop's error, for the trainer
                sess.items.put(("error", e))

        self._thread = threading.Thread(target=loop, name="skate-train-loop", daemon=True)
        self._thread.start()

    def next_result(self):
        """The loop's next report as ("result", metrics, checkpoint path or None), or
        ("done",) when it returned; raises what the loop raised."""
        if self._handed_out:  # the loop waits in report() on the result handed out last
            self._session.resume.set()
        item = self._session.items.get()
        self._handed_out = item[0] == "result"
        if item[0] == "error":
            raise item[1]
        return item

    def read_checkpoint(self, path: str) -> bytes:
        """A reported checkpoint directory as a tar archive (for a trainer elsewhere)."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(path, arcname=".")
        return buf.getvalue()

    def ready(self) -> bool:
        return True


class WorkerGroup:
    """The actors of one run, started in the trainer's placement group."""

    def __init__(self, scaling, torch_config):
        self.scaling, self.torch_config = scaling, torch_config
        self.workers: list = []  # by rank
        self.where: list = []  # by rank: where() of each

    def start(self, slots: list) -> None:
        """One worker per slot: ``(placement group, bundle index)``, or ``(None, None)``
        for a worker placed anywhere."""
        from skate.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        res = self.scaling.worker_resources
        cls = skate.remote(TrainWorker)
        actors = [cls.options(
            num_cpus=res.get("CPU", 0), num_gpus=res.get("GPU", 0),
            resources={k: v for k, v in res.items() if k not in ("CPU", "GPU")},
            scheduling_strategy=None if pg is None else
            PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=index),
        ).remote(max(1, int(res.get("CPU", 1)))) for pg, index in slots]
        self.workers = actors
        where = self._get([a.where.remote() for a in actors])
        here = skate.get_runtime_context().get_node_id()
        nodes = [here] + [w["node_id"] for w in where if w["node_id"] != here]
        node_order = {n: i for i, n in enumerate(dict.fromkeys(nodes))}
        order = sorted(range(len(actors)), key=lambda i: (node_order[where[i]["node_id"]],
                                                          where[i]["gpu_ids"], i))
        self.workers = [actors[i] for i in order]
        self.where = [where[i] for i in order]
        world = len(self.workers)
        backend = self.torch_config.backend_for(self.scaling.use_gpu)
        host, port = skate.get(self.workers[0].rendezvous_address.remote())
        self._get([w.join.remote(backend, host, port, rank, world, self.torch_config.timeout_s)
                   for rank, w in enumerate(self.workers)])

    def ranks_info(self) -> list:
        """Per rank: world/local/node ranks and sizes."""
        node_ids = [w["node_id"] for w in self.where]
        node_rank = {n: i for i, n in enumerate(dict.fromkeys(node_ids))}
        out = []
        for rank, n in enumerate(node_ids):
            same = [r for r, m in enumerate(node_ids) if m == n]
            out.append({"world_rank": rank, "world_size": len(node_ids),
                        "local_rank": same.index(rank), "local_world_size": len(same),
                        "node_rank": node_rank[n]})
        return out

    def run(self, fn, config: dict, info: dict, checkpoint_path: str | None,
            datasets: dict) -> None:
        self._get([w.start.remote(fn, config, {**info, **ranks}, checkpoint_path, datasets)
                   for w, ranks in zip(self.workers, self.ranks_info())])

    def next_results(self) -> list:
        """One item per rank (see ``TrainWorker.next_result``)."""
        return self._get([w.next_result.remote() for w in self.workers])

    def _get(self, refs: list) -> list:
        """The values of one call per worker, failing at the first worker that fails
        (its peers may be stuck in a collective waiting for it)."""
        index = {r: i for i, r in enumerate(refs)}
        pending, values = list(refs), [None] * len(refs)
        while pending:
            ready, pending = skate.wait(pending, num_returns=1)
            for ref in ready:
                try:
                    values[index[ref]] = skate.get(ref)
                except RayActorError as e:
                    i = index[ref]
                    where = self.where[i] if i < len(self.where) else {}
                    self.shutdown()
                    raise TrainingWorkerError(
                        f"training worker {i} (pid {where.get('pid', '?')}) died: "
                        f"{str(e).splitlines()[0] if str(e) else type(e).__name__}; "
                        f"the other workers were stopped") from None
                except BaseException:
                    self.shutdown()
                    raise
        return values

    def read_checkpoint(self, rank: int, path: str) -> bytes:
        return skate.get(self.workers[rank].read_checkpoint.remote(path))

    def shutdown(self) -> None:
        for w in self.workers:
            try:
                skate.kill(w)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.workers = []

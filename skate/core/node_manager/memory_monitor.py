"""The node's memory monitor: kill one worker before the machine runs out of memory.

Design. Ray's memory monitor, in the node manager: every ``refresh_ms`` a
thread reads how much of the node's memory is used (``MemoryReader``), and
when used / limit passes ``usage_threshold`` it kills one worker with
SIGKILL, chosen by ``OomKillPolicy``. Without it the kernel's OOM killer
picks a process -- often the node manager or the control store, which takes
the whole node down -- and the owner of the task that grew only sees a
crashed worker. With it the task that grew is the one that dies, the node
lives on, and its owner gets ``OutOfMemoryError`` with the figures.

The pieces, in the order of a check:

* ``MemoryReader.read(now)``: used and limit in bytes. In a container with a
  memory limit, the cgroup's (v2: ``memory.max``, ``memory.current`` less the
  ``inactive_file`` pages the kernel reclaims before it kills anything; v1:
  ``memory.limit_in_bytes`` and ``memory.usage_in_bytes`` likewise), else
  the machine's (``/proc/meminfo``: MemTotal - MemAvailable). The object
  store's shared memory counts: it is the node's memory too.
* ``OomKillPolicy.check(reading, candidates, live, now)``: pure, no I/O,
  time passed in; the victim or None (its docstring is the spec).
* ``MemoryMonitor``: the thread. It records why it killed the worker
  *before* it kills it (``exit_cause``), so an owner that saw its push break
  and asks (``NodeManagerClient.worker_exit_cause``, only on that failure
  path) always finds the answer; the owner decides from it whether the task
  is retried (``worker/task_retries.py``).

Trade-offs. The node manager does not see tasks, only leases, so "the task
that started last" is the lease granted last, and "retriable" is what the
submitter said when it asked for the lease (``max_retries != 0`` of the task
next in line then; later tasks of the key may differ, as in Ray, whose lease
carries its first task's spec). Actors count as not retriable: their lease
comes from the control store, which does not say whether ``max_restarts``
allows a restart, and Ray's default (0) does not.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Protocol

from skate.core.config import MemoryMonitorConfig

log = logging.getLogger("skate.node_manager")

#: The only exit cause so far: the memory monitor killed the worker.
OUT_OF_MEMORY = "OUT_OF_MEMORY"
#: Exit causes kept (oldest forgotten first); an owner asks within moments of the kill.
EXIT_CAUSES_KEPT = 1000
#: At most one "over the threshold but nothing to kill" warning this often.
IDLE_WARN_EVERY_S = 10.0
_GB = 1e9  # Ray's messages use GB


# -- reading -----------------------------------------------------------------------------

class MemoryReading(NamedTuple):
    """The node's memory at one moment."""

    used: int  # bytes
    limit: int  # bytes: the cgroup's limit, or the machine's memory
    taken_at: float  # the monotonic clock when it was read
    source: str = "meminfo"  # "cgroup v2", "cgroup v1" or "meminfo"

    @property
    def fraction(self) -> float:
        return self.used / self.limit if self.limit > 0 else 0.0


class MemoryReader:
    """Reads the node's memory use and limit; paths are parameters so tests use fake files.

    >>> r = MemoryReader().read(0.0)  # on Linux
    >>> 0 < r.used < r.limit and r.source in ("cgroup v2", "cgroup v1", "meminfo")
    True
    """

    def __init__(self, cgroup_root: str = "/sys/fs/cgroup", meminfo: str = "/proc/meminfo"):
        self.cgroup_root = cgroup_root
        self.meminfo = meminfo

    def read(self, now: float) -> MemoryReading:
        """Used and limit now; OSError when not even /proc/meminfo can be read."""
        total, available = self._meminfo()
        for source, reading in (("cgroup v2", self._cgroup_v2), ("cgroup v1", self._cgroup_v1)):
            got = reading()
            if got is not None and 0 < got[1] < total:  # a limit below the machine's memory
                return MemoryReading(max(got[0], 0), got[1], now, source)
        return MemoryReading(max(total - available, 0), total, now, "meminfo")

    def _meminfo(self) -> tuple[int, int]:
        fields = _key_values(_read(self.meminfo) or "", ":")
        if "MemTotal" not in fields:
            raise OSError(f"{self.meminfo} has no MemTotal: cannot tell the node's memory")
        total = fields["MemTotal"] * 1024
        if "MemAvailable" in fields:
            available = fields["MemAvailable"] * 1024
        else:  # kernels before 3.14
            available = sum(fields.get(k, 0) for k in ("MemFree", "Buffers", "Cached")) * 1024
        return total, available

    def _cgroup_v2(self) -> tuple[int, int] | None:
        limit = _read(os.path.join(self.cgroup_root, "memory.max"))
        if limit is None or limit.strip() == "max":
            return None
        current = _read(os.path.join(self.cgroup_root, "memory.current"))
        if current is None:
            return None
        stat = _key_values(_read(os.path.join(self.cgroup_root, "memory.stat")) or "", " ")
        return int(current) - stat.get("inactive_file", 0), int(limit)

    def _cgroup_v1(self) -> tuple[int, int] | None:
        folder = os.path.join(self.cgroup_root, "memory")
        limit = _read(os.path.join(folder, "memory.limit_in_bytes"))
        usage = _read(os.path.join(folder, "memory.usage_in_bytes"))
        if limit is None or usage is None:
            return None
        stat = _key_values(_read(os.path.join(folder, "memory.stat")) or "", " ")
        inactive = stat.get("total_inactive_file", stat.get("inactive_file", 0))
        return int(usage) - inactive, int(limit)  # "no limit" is a huge number: ignored


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except (OSError, ValueError):
        return None


def _key_values(text: str, sep: str) -> dict[str, int]:
    """``key<sep> value [kB]`` lines as {key: int(value)}; other lines are skipped."""
    out = {}
    for line in text.splitlines():
        key, _, rest = line.partition(sep)
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[key.strip()] = int(parts[0])
    return out


# -- the policy ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Candidate:
    """A worker the monitor may kill: one holding a lease."""

    worker_id: str
    owner: Any  # who leased it (the submitter); opaque, compared and hashed only
    retriable: bool  # its tasks are retried if it dies
    started_at: float  # when its lease was granted
    actor: bool = False  # an actor's worker: a group of its own
    pid: int = 0  # for the message


class Kill(NamedTuple):
    """The policy's decision: SIGKILL ``worker``; ``retry``: its task may run again."""

    worker: Candidate
    retry: bool
    reading: MemoryReading
    group_size: int  # workers of the victim's owner (and retriability) running here


class OomKillPolicy:
    """Which worker the memory monitor kills, if any. A pure decision: no I/O, no clock.

    ``check(reading, candidates, live, now)`` answers a ``Kill`` or None, by Ray 2.x's
    documented policy (its "group by owner" worker killing policy):

    1. nothing while ``reading.fraction <= threshold``;
    2. one victim at a time: after a kill nothing more is killed until the victim is gone
       from ``live`` (the ids of every worker process still known), and then not until a
       reading taken after that was seen, so the victim's freed memory is counted before
       anyone else dies, however often ``check`` runs;
    3. candidates are workers holding a lease: idle workers are small and not worth it,
       drivers are not the node's to kill;
    4. retriable before non-retriable; among those, workers are grouped by owner (an
       actor's worker is a group of its own) and the group with the most workers goes
       first -- ties: the group whose earliest worker started latest -- so every caller
       keeps making progress;
    5. in that group, the worker whose lease started last (LIFO): it has lost the least;
    6. ``retry`` is True only if the group is retriable and had another worker: the last
       running task of a caller is not retried, so a task that alone needs more memory
       than the node has fails with OutOfMemoryError instead of being killed for ever.

    Invariants: ``victim`` is the one kill outstanding (None when there is none);
    ``cleared_at`` (when the last victim was seen gone) only grows.

    >>> p = OomKillPolicy(0.9)
    >>> w = Candidate("w1", owner="driver", retriable=True, started_at=1.0)
    >>> p.check(MemoryReading(95, 100, 2.0), [w], {"w1"}, 2.0).worker.worker_id
    'w1'
    >>> p.check(MemoryReading(95, 100, 2.3), [w], {"w1"}, 2.3) is None  # still dying
    True
    """

    def __init__(self, threshold: float):
        self.threshold = threshold
        self.victim: str | None = None
        self.cleared_at = float("-inf")

    def over(self, reading: MemoryReading) -> bool:
        return reading.fraction > self.threshold

    def check(self, reading: MemoryReading, candidates: list[Candidate], live: set,
              now: float) -> Kill | None:
        if self.victim is not None:
            if self.victim in live:
                return None  # rule 2: still dying
            self.victim = None
            self.cleared_at = now
            return None  # rule 2: this reading may predate its death
        if reading.taken_at <= self.cleared_at or not self.over(reading) or not candidates:
            return None
        groups: dict[Any, list[Candidate]] = {}
        for c in candidates:
            key = ("actor", c.worker_id) if c.actor else ("task", c.owner, c.retriable)
            groups.setdefault(key, []).append(c)
        group = max(groups.values(), key=lambda g: (g[0].retriable, len(g),
                                                     min(c.started_at for c in g)))
        victim = max(group, key=lambda c: c.started_at)
        self.victim = victim.worker_id
        return Kill(victim, victim.retriable and len(group) > 1, reading, len(group))


def oom_message(kill: Kill, threshold: float, node_ip: str, node_id: str) -> str:
    """What the owner of the killed worker's task is told (Ray's wording, our names)."""
    r, w = kill.reading, kill.worker
    why = ("it was the most recently started task of the caller with the most tasks "
           "running on this node" if not w.actor else "it was the most recently started "
           "worker and no task worker was more suitable")
    retry = "" if kill.retry else (
        " It was the last running task of its caller here, so it is not retried." if
        w.retriable else "")
    return (
        f"Task was killed due to the node running low on memory. Memory on the node (IP: "
        f"{node_ip}, ID: {node_id}) where the task was running was {r.used / _GB:.2f}GB / "
        f"{r.limit / _GB:.2f}GB ({r.fraction:.3f}), which exceeds the memory usage threshold "
        f"of {threshold}. Skate killed this worker (ID: {w.worker_id}, pid {w.pid}) because "
        f"{why}.{retry} To see its output, use `skate logs --pid {w.pid}`. Provision more "
        f"memory on this node or reduce task parallelism by requesting more CPUs per task. "
        f"To adjust the kill threshold, set the environment variable "
        f"SKATE_MEMORY_USAGE_THRESHOLD when starting Skate; to disable worker killing, set "
        f"SKATE_MEMORY_MONITOR_REFRESH_MS=0.")


# -- the thread ----------------------------------------------------------------------------

class _Node(Protocol):
    """What the monitor uses of its node manager."""

    lock: Any
    sched: Any  # leases.Leases
    pool: Any  # worker_pool.WorkerPool
    stopping: threading.Event
    cfg: Any  # config.NodeConfig


class MemoryMonitor:
    """The memory monitor of one node manager: a thread running ``check`` every refresh.

    ``exit_cause(worker_id)`` answers why it killed a worker: ``(OUT_OF_MEMORY, message,
    retry)``, kept for the last ``EXIT_CAUSES_KEPT`` kills, or None.
    """

    def __init__(self, node: _Node, config: MemoryMonitorConfig,
                 reader: MemoryReader | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.node = node
        self.config = config
        self.reader = reader or MemoryReader()
        self.clock = clock
        self.policy = OomKillPolicy(config.usage_threshold)
        self.kills = 0
        # worker id -> (kind, message, retry); bounded, oldest first; under node.lock
        self.causes: collections.OrderedDict[str, tuple] = collections.OrderedDict()
        self._warned_at = float("-inf")

    def start(self) -> bool:
        """Start the thread (False when disabled, or when memory cannot be read here)."""
        if not self.config.enabled:
            log.info("memory monitor disabled (SKATE_MEMORY_MONITOR_REFRESH_MS=0)")
            return False
        try:
            r = self.reader.read(self.clock())
        except OSError as e:
            log.warning("memory monitor disabled: %s", e)
            return False
        log.info("memory monitor: kills a worker past %.2f of %.2f GB (%s), every %d ms",
                 self.config.usage_threshold, r.limit / _GB, r.source, self.config.refresh_ms)
        threading.Thread(target=self._run, name="skate-memory-monitor", daemon=True).start()
        return True

    def _run(self) -> None:
        period = self.config.refresh_ms / 1000.0
        while not self.node.stopping.wait(period):
            try:
                self.check()
            except Exception:  # the node must outlive a bug here
                log.exception("memory monitor check failed")

    def check(self) -> Kill | None:
        """One round: read, decide, kill (SIGKILL) the victim if there is one."""
        reading = self.reader.read(self.clock())
        node = self.node
        with node.lock:
            if node.stopping.is_set():
                return None
            live = set(node.sched.workers)
            candidates = self._candidates()
            kill = self.policy.check(reading, candidates, live, self.clock())
            if kill is None:
                if self.policy.over(reading) and not candidates:
                    self._warn_nothing_to_kill(reading)
                return None
            message = oom_message(kill, self.config.usage_threshold, node.cfg.node_ip,
                                  node.cfg.node_id)
            # recorded before the kill: the owner asks once it saw the worker go
            self.causes[kill.worker.worker_id] = (OUT_OF_MEMORY, message, kill.retry)
            while len(self.causes) > EXIT_CAUSES_KEPT:
                self.causes.popitem(last=False)
            proc = node.pool.workers.get(kill.worker.worker_id)
            if proc is not None:
                node.pool.kill(proc)
        self.kills += 1
        log.warning("%s", message)
        return kill

    def exit_cause(self, worker_id: str) -> tuple | None:
        """Why the monitor killed ``worker_id`` (called under the node manager's lock)."""
        return self.causes.get(worker_id)

    def _candidates(self) -> list[Candidate]:
        procs = self.node.pool.workers
        out = []
        for lease in self.node.sched.leases.values():
            w = lease.worker
            proc = procs.get(w.worker_id)
            out.append(Candidate(w.worker_id, lease.requester,
                                 lease.retriable and not lease.dedicated, lease.granted_at,
                                 lease.dedicated, proc.pid if proc is not None else 0))
        return out

    def _warn_nothing_to_kill(self, reading: MemoryReading) -> None:
        now = reading.taken_at
        if now - self._warned_at < IDLE_WARN_EVERY_S:
            return
        self._warned_at = now
        log.warning("memory use %.2f GB / %.2f GB (%.3f) is past the threshold %.2f, but no "
                    "worker of this node runs a task: nothing to kill", reading.used / _GB,
                    reading.limit / _GB, reading.fraction, self.config.usage_threshold)

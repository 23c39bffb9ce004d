"""Typed configuration of a node, and the one place environment variables are read."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

#: Values up to this size stay in their owner's memory and travel inline in
#: messages; larger ones go to the shared-memory store.
INLINE_THRESHOLD = int(os.environ.get("SKATE_INLINE_THRESHOLD", 100 * 1024))
#: Seconds a node manager lets an idle worker above the pool's size live.
IDLE_WORKER_TIMEOUT_S = float(os.environ.get("SKATE_IDLE_WORKER_TIMEOUT_S", 10.0))
#: Where session directories go.
TEMP_DIR = os.environ.get("SKATE_TEMP_DIR", "/tmp/skate-sessions")
#: Shared-memory directory for object store arenas.
SHM_DIR = os.environ.get("SKATE_SHM_DIR", "/dev/shm")
#: Set in the environment of a worker that runs in a placement group:
#: "<group id hex>:<1 if it captures child tasks else 0>".
#: Modules a node's workers start with already imported, through a zygote that imports
#: them once and forks workers (skate/core/worker/zygote.py); empty: no zygote.
WORKER_PRELOAD_ENV = "SKATE_WORKER_PRELOAD"


def worker_preload_modules() -> list:
    return [m.strip() for m in (os.environ.get(WORKER_PRELOAD_ENV) or "").split(",")
            if m.strip()]


PLACEMENT_GROUP_ENV = "SKATE_PLACEMENT_GROUP"
#: A node manager or control store hears this node's token here (set by whoever starts it).
TOKEN_ENV = "SKATE_TOKEN"
#: The host this machine's processes also listen on over gRPC, in a cluster other machines
#: join (set by ``skate start``; a driver joining such a cluster sets it for itself).
NODE_TCP_HOST_ENV = "SKATE_NODE_TCP_HOST"
_node_tcp_host: str | None = None


def task_events_enabled() -> bool:
    """Whether processes record task state changes for the state API (``SKATE_TASK_EVENTS=0``
    turns it off, as Ray's ``RAY_task_events_report_interval_ms=0`` does)."""
    return os.environ.get("SKATE_TASK_EVENTS", "1") != "0"


def actor_task_events_enabled() -> bool:
    """Whether actor calls are recorded too (``SKATE_TASK_EVENTS=all``). Off by default:
    measured on 2 cores, recording every call of a microsecond-scale async actor cost
    30-45% of its throughput once the history was full, against 0-10% for normal tasks."""
    return os.environ.get("SKATE_TASK_EVENTS", "1") == "all"


def task_events_max_per_job() -> int:
    """How many task attempts the control store keeps per job (oldest finished dropped)."""
    return int(os.environ.get("SKATE_TASK_EVENTS_MAX_PER_JOB", 100_000))


def submitted_job_from_env() -> tuple[str | None, dict | None]:
    """(submission id, runtime_env) of a job the dashboard started this driver for:
    SKATE_JOB_SUBMISSION_ID, and Ray's RAY_JOB_CONFIG_JSON_ENV_VAR (``{"runtime_env": ...}``)."""
    import json

    raw = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    runtime_env = None
    if raw:
        try:
            runtime_env = json.loads(raw).get("runtime_env") or None
        except (ValueError, AttributeError):
            raise ValueError(f"RAY_JOB_CONFIG_JSON_ENV_VAR must be a JSON object like "
                             f'{{"runtime_env": {{...}}}}, got {raw[:100]!r}.') from None
    return os.environ.get("SKATE_JOB_SUBMISSION_ID") or None, runtime_env


def log_rotation_max_bytes() -> int:
    """A worker's log file is rotated past this size (SKATE_LOG_ROTATION_MAX_BYTES)."""
    return int(os.environ.get("SKATE_LOG_ROTATION_MAX_BYTES", 256 * 2**20))


def token_from_env() -> str | None:
    return os.environ.get(TOKEN_ENV) or None


def node_tcp_host() -> str | None:
    """Where this process's listeners also accept gRPC peers, or None (Unix sockets only)."""
    return _node_tcp_host or os.environ.get(NODE_TCP_HOST_ENV) or None


def set_node_tcp_host(host: str) -> None:
    """A driver joining a multi-machine cluster listens on TCP too (this process only)."""
    global _node_tcp_host
    _node_tcp_host = host


def node_timeout_s() -> float:
    """A node still connected but silent this long is declared dead (see control_store)."""
    return float(os.environ.get("SKATE_NODE_TIMEOUT_S", 30.0))


#: Set to 0 in a private node's processes: a driver's own head never comes back.
GCS_RECONNECT_ENV = "SKATE_GCS_RECONNECT_TIMEOUT_S"


def gcs_reconnect_timeout_s() -> float:
    """How long node managers, workers and drivers wait for a restarted control store
    (``skate start --head`` again) before they give up on it (Ray's
    gcs_rpc_server_reconnect_timeout_s)."""
    return float(os.environ.get(GCS_RECONNECT_ENV, 60.0))


def cuda_visible_devices() -> str | None:
    return os.environ.get("CUDA_VISIBLE_DEVICES")


def omp_num_threads() -> str | None:
    return os.environ.get("OMP_NUM_THREADS")


def address_from_env() -> str | None:
    """The cluster ``init()`` joins when it is given no address: SKATE_ADDRESS, else Ray's
    RAY_ADDRESS (so a Ray job's environment works unchanged); "local" means start one."""
    value = os.environ.get("SKATE_ADDRESS") or os.environ.get("RAY_ADDRESS")
    return value or None


#: The memory monitor's defaults (Ray's ``memory_usage_threshold`` and
#: ``memory_monitor_refresh_ms``).
DEFAULT_MEMORY_USAGE_THRESHOLD = 0.95
DEFAULT_MEMORY_MONITOR_REFRESH_MS = 250


def _env_number(names: tuple, default, kind):
    """The first of ``names`` set in the environment, as ``kind``; ``default`` if none is."""
    for name in names:
        raw = os.environ.get(name)
        if raw is not None and raw.strip() != "":
            try:
                return kind(raw)
            except ValueError:
                raise ValueError(f"{name} must be a {kind.__name__}, got {raw!r}") from None
    return default


def memory_usage_threshold() -> float:
    """The fraction of the node's memory limit past which its memory monitor kills a worker:
    SKATE_MEMORY_USAGE_THRESHOLD, else Ray's RAY_memory_usage_threshold (default 0.95)."""
    return _env_number(("SKATE_MEMORY_USAGE_THRESHOLD", "RAY_memory_usage_threshold"),
                       DEFAULT_MEMORY_USAGE_THRESHOLD, float)


def memory_monitor_refresh_ms() -> int:
    """How often (ms) the node's memory monitor reads its memory use; 0 turns it off:
    SKATE_MEMORY_MONITOR_REFRESH_MS, else Ray's RAY_memory_monitor_refresh_ms (default 250)."""
    return _env_number(("SKATE_MEMORY_MONITOR_REFRESH_MS", "RAY_memory_monitor_refresh_ms"),
                       DEFAULT_MEMORY_MONITOR_REFRESH_MS, int)


@dataclass(frozen=True)
class MemoryMonitorConfig:
    """The node manager's memory monitor (``node_manager/memory_monitor.py``)."""

    usage_threshold: float = DEFAULT_MEMORY_USAGE_THRESHOLD
    """Kill a worker when used / limit goes above this fraction, in [0, 1]."""
    refresh_ms: int = DEFAULT_MEMORY_MONITOR_REFRESH_MS
    """Milliseconds between two readings of the node's memory; 0: no monitor."""

    def __post_init__(self):
        if not 0.0 <= self.usage_threshold <= 1.0:
            raise ValueError(f"the memory usage threshold (SKATE_MEMORY_USAGE_THRESHOLD) must "
                             f"be in [0, 1], got {self.usage_threshold}")
        if self.refresh_ms < 0:
            raise ValueError(f"the memory monitor's refresh (SKATE_MEMORY_MONITOR_REFRESH_MS) "
                             f"must be >= 0 ms (0 turns it off), got {self.refresh_ms}")

    @property
    def enabled(self) -> bool:
        return self.refresh_ms > 0

    @classmethod
    def from_env(cls) -> "MemoryMonitorConfig":
        return cls(memory_usage_threshold(), memory_monitor_refresh_ms())


def default_memory(object_store_memory: int) -> int:
    """The ``memory`` resource a node advertises: 70% of what RAM is free, less its store."""
    import psutil

    return int(max(psutil.virtual_memory().available * 0.7 - object_store_memory, 1 << 30))


#: Set by the node manager in a worker's environment when it chose OMP_NUM_THREADS itself
#: (the user did not): the worker then sets it to each task's CPUs, as Ray does.
OMP_BY_SKATE_ENV = "SKATE_OMP_NUM_THREADS_DEFAULT"


def omp_threads_are_ours() -> bool:
    return os.environ.get(OMP_BY_SKATE_ENV) == "1"


def placement_group_from_env() -> tuple[str, bool] | None:
    """(group id hex, captures children) of the group this worker runs in, or None."""
    value = os.environ.get(PLACEMENT_GROUP_ENV)
    if not value:
        return None
    pg_hex, _, capture = value.partition(":")
    return pg_hex, capture == "1"


def default_object_store_memory() -> int:
    """30% of RAM, capped by what /dev/shm can hold."""
    import psutil

    total = int(psutil.virtual_memory().total * 0.3)
    try:
        st = os.statvfs(SHM_DIR)
        total = min(total, int(st.f_bavail * st.f_frsize * 0.8))
    except OSError:
        pass
    return max(total, 64 * 1024 * 1024)


@dataclass(frozen=True)
class NodeConfig:
    """Everything a node manager needs to start."""

    session_dir: str
    """The session's folder: sockets, logs, spill files."""
    node_id: str
    """Hex id of this node."""
    gcs_address: str
    """Where the control store listens."""
    resources: dict = field(default_factory=dict)
    """Total resources, in natural units: {"CPU": 2, "GPU": 0, "memory": ..., custom...}."""
    object_store_memory: int = 0
    """Bytes of shared memory for the object store arena."""
    arena_path: str = ""
    """The arena file (under /dev/shm)."""
    node_ip: str = "127.0.0.1"
    """The address this node reports; also what processes bind to."""
    owner_pid: int = 0
    """For a private head: the driver's pid; the node exits when it does."""
    prestart_workers: int = 0
    """How many task workers to start right away."""
    is_head: bool = True

    def __post_init__(self):
        if self.object_store_memory < 1024 * 1024:
            raise ValueError("object_store_memory must be at least 1 MiB")
        for k, v in self.resources.items():
            if not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"resource {k!r} must be a non-negative number, got {v!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "NodeConfig":
        return cls(**json.loads(text))

#: Test hook: "<point>@<token file>[,...]" makes a process SIGKILL itself at a named moment
#: of its life (see skate/core/kill_points.py). Set per worker through
#: runtime_env={"env_vars": {"SKATE_TEST_KILL_AT": ...}}.
TEST_KILL_AT = os.environ.get("SKATE_TEST_KILL_AT", "")

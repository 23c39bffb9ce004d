"""The public core API: init, shutdown, get, put, wait, cancel, kill, ... (Ray 2.x names)."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import warnings

from skate.core import runtime
from skate.core.object_ref import ObjectRef

log = logging.getLogger("skate")

_lock = threading.RLock()
_core_worker = None
_node = None  # the LocalNode this driver started, if any
_atexit_registered = False

_IGNORED_INIT_ARGS = {
    "include_dashboard", "dashboard_host", "dashboard_port", "configure_logging", "logging_level",
    "logging_format", "log_style", "_system_config", "_temp_dir", "_metrics_export_port",
    "job_config", "_enable_object_reconstruction", "runtime_env", "storage", "_node_ip_address",
    "local_mode", "_plasma_directory", "labels", "enable_resource_isolation",
}


class InitContext:
    """What ``skate.init`` returns; also a context manager that shuts down on exit."""

    def __init__(self, info: dict):
        self.address_info = info
        self.dashboard_url = None

    def __getitem__(self, key):
        return self.address_info[key]

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        shutdown()


def _detect_gpus() -> int:
    from skate.core.config import cuda_visible_devices

    vis = cuda_visible_devices()
    if vis is not None:
        return len([g for g in vis.split(",") if g.strip() and g.strip() != "-1"])
    try:
        return len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return 0


def init(address: str | None = None, *, num_cpus: int | None = None, num_gpus: int | None = None,
         resources: dict | None = None, object_store_memory: int | None = None,
         namespace: str | None = None, ignore_reinit_error: bool = False,
         log_to_driver: bool = True, **kwargs) -> InitContext:
    """Start a private Skate node on this machine (or join one) and connect to it.

    >>> import skate
    >>> ctx = skate.init(num_cpus=2)
    >>> skate.is_initialized()
    True
    >>> skate.shutdown()
    """
    global _core_worker, _node, _atexit_registered
    unknown = set(kwargs) - _IGNORED_INIT_ARGS
    if unknown:
        raise TypeError("skate.init() got unexpected keyword argument(s): "
                        f"{', '.join(sorted(unknown))}.")
    if kwargs.get("local_mode"):
        raise RuntimeError(  # Ray's type for it
            "skate.init(local_mode=True) is not supported (Ray removed it too): tasks always "
            "run in worker processes. To debug, call the function itself (f._function(...)), "
            "or run with skate.init(num_cpus=1) and breakpoint() in the task.")
    if kwargs.get("include_dashboard"):
        # said, not silently ignored: a Ray user asking for a dashboard expects one
        warnings.warn("skate.init() starts no dashboard; `skate start --head` runs one for a "
                      "long-running cluster (docs/dashboard.md), and skate.util.state reads "
                      "this cluster from Python.", UserWarning, stacklevel=2)
    from skate.job_config import JobConfig

    job_config = kwargs.get("job_config")
    if job_config is not None:
        if not isinstance(job_config, JobConfig):
            raise TypeError(f"job_config must be a skate.job_config.JobConfig, got "
                            f"{type(job_config).__name__}.")
        if namespace is None:
            namespace = job_config.ray_namespace
    runtime_env = kwargs.get("runtime_env")
    from skate.core.config import submitted_job_from_env

    submission_id, submitted_env = submitted_job_from_env()
    if submission_id is not None:  # a submitted job's driver: its record names the submission
        from dataclasses import replace

        base = job_config or JobConfig()
        job_config = replace(base, metadata={**base.metadata,
                                             "job_submission_id": submission_id})
    if runtime_env is None and submitted_env is not None and (
            job_config is None or job_config.runtime_env is None):
        runtime_env = submitted_env  # the submission's runtime_env, unless the script has one
    if runtime_env is not None:
        from dataclasses import replace

        from skate.core.options import validate_runtime_env

        # the job's runtime_env: under every task and actor of the job (theirs win)
        validate_runtime_env(runtime_env)
        job_config = replace(job_config or JobConfig(), runtime_env=runtime_env)
    elif job_config is not None and job_config.runtime_env is not None:
        from skate.core.options import validate_runtime_env

        validate_runtime_env(job_config.runtime_env)
    with _lock:
        if _core_worker is not None:
            if ignore_reinit_error:
                log.info("skate.init() called again; ignoring (ignore_reinit_error=True)")
                return InitContext(_address_info())
            raise RuntimeError(
                "Maybe you called skate.init twice by accident? This error can be suppressed by "
                "passing in 'ignore_reinit_error=True' or by calling 'skate.shutdown()' first.")
        if address is None:
            from skate.core.config import address_from_env

            address = address_from_env()
        if address not in (None, "local"):
            if any(v is not None for v in (num_cpus, num_gpus, resources, object_store_memory)):
                raise ValueError(
                    "When connecting to an existing cluster (address=...), num_cpus, num_gpus, "
                    "resources and object_store_memory must not be given: the nodes were "
                    "started with their own resources.")
            _core_worker = _connect_existing(address, namespace, log_to_driver, job_config)
            if not _atexit_registered:
                atexit.register(shutdown)
                _atexit_registered = True
            return InitContext(_address_info())
        if namespace is not None and not isinstance(namespace, str):
            raise TypeError("namespace must be a str")
        for name, v in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                raise ValueError(f"{name} must be a non-negative number, got {v!r}")
        if resources is not None:
            if not isinstance(resources, dict):
                raise TypeError("resources must be a dict of name -> amount")
            for k in ("CPU", "GPU"):
                if k in resources:
                    raise ValueError(f"Use num_{k.lower()}s= instead of resources={{{k!r}: ...}}.")
        for k, v in {"num_cpus": num_cpus, "num_gpus": num_gpus, **(resources or {})}.items():
            if isinstance(v, bool) or (v is not None and not isinstance(v, (int, float))):
                raise TypeError(f"resource {k!r} must be a number, got {v!r}")
            if v is not None and (v < 0 or v != int(v)):
                raise ValueError(f"A node's resource quantities must be whole numbers >= 0; "
                                 f"{k}={v!r} is not. (Tasks may ask for fractions, e.g. "
                                 f"num_cpus=0.5, but a node offers whole units.)")
        from skate.core.config import default_memory, default_object_store_memory
        from skate.core.node import start_head
        from skate.core.worker.core_worker import CoreWorker

        cpus = os.cpu_count() or 1 if num_cpus is None else num_cpus
        gpus = _detect_gpus() if num_gpus is None else num_gpus
        store = object_store_memory or default_object_store_memory()
        total = {"CPU": cpus, "GPU": gpus, **(resources or {})}
        total["memory"] = default_memory(store)
        total["object_store_memory"] = store
        total["node:127.0.0.1"] = 1
        total["node:__internal_head__"] = 1
        total = {k: v for k, v in total.items() if v}
        preload = (kwargs.get("_system_config") or {}).get("worker_preload_modules")
        if preload is not None and (not isinstance(preload, (list, tuple)) or
                                    not all(isinstance(m, str) for m in preload)):
            raise TypeError(f"_system_config['worker_preload_modules'] must be a list of "
                            f"module names, got {preload!r}")
        node = start_head(total, store, owner_pid=os.getpid(),
                          worker_preload=None if preload is None else list(preload))
        from skate.core import rpc

        rpc.set_token(node.token)
        try:
            core = CoreWorker(mode="driver", session_dir=node.session_dir,
                              raylet_address=node.raylet_address, gcs_address=node.gcs_address,
                              node_id=node.node_id, node_ip="127.0.0.1",
                              worker_id="driver-" + os.urandom(6).hex(),
                              namespace=namespace or "anon-" + os.urandom(4).hex(),
                              log_to_driver=log_to_driver,
                              job_config=job_config.to_dict() if job_config else None,
                              gcs_reconnect_s=0)  # a private head never comes back
        except BaseException:
            node.stop()
            raise
        core.namespace_explicit = namespace is not None
        _core_worker, _node = core, node
        if not _atexit_registered:
            atexit.register(shutdown)
            _atexit_registered = True
        return InitContext(_address_info())


def _connect_existing(address: str, namespace, log_to_driver, job_config=None):
    """Join a running cluster: "auto" (started with ``skate start --head`` here) or its address."""
    from skate.core import rpc
    from skate.core.control_store.client import ControlStoreClient
    from skate.core.node import read_current
    from skate.core.worker.core_worker import CoreWorker

    info = read_current()
    if address == "auto":
        if info is None:
            raise ConnectionError(
                "Could not find a running Skate cluster for address='auto'. Start one with "
                "`skate start --head`, or call skate.init() without an address to start a "
                "private one.")
        gcs_address = info["gcs_address"]
    elif address.startswith(("unix:", "tcp:", "grpc:")):
        gcs_address = address
    else:
        gcs_address = f"grpc:{address}"  # another machine's head: its gRPC port
    rpc.set_token(_find_token(gcs_address, info))
    try:
        gcs = rpc.connect(gcs_address, name="probe", timeout=5)
    except (OSError, ValueError) as e:
        raise ConnectionError(f"Could not reach a Skate cluster at {address!r}: {e}. Is it "
                              f"running (`skate status`)?") from None
    try:
        nodes = [n for n in ControlStoreClient(gcs).get_nodes(timeout=10) if n["Alive"]]
    except rpc.ConnectionClosed:
        raise ConnectionError(
            f"The cluster at {address!r} refused this connection: wrong or missing cluster "
            f"token. Set SKATE_TOKEN to the token in the head's session directory "
            f"(<session>/token), or run the driver as a user who can read it.") from None
    finally:
        gcs.close()
    local = [n for n in nodes if (path := rpc.unix_path(n["raylet_address"]))
             and os.path.exists(path)]
    if not local:
        raise ConnectionError(
            f"The cluster at {address!r} has no node on this machine; a driver must run on one "
            f"of the cluster's machines (start one with `skate start --address=...`).")
    node = next((n for n in local if n.get("is_head")), local[0])
    if "|grpc:" in node["raylet_address"]:
        # a cluster other machines join: they must be able to reach this driver too
        from skate.core.config import node_tcp_host, set_node_tcp_host

        if node_tcp_host() is None:
            set_node_tcp_host(node["NodeManagerAddress"])
    return CoreWorker(mode="driver", session_dir=node["session_dir"],
                      raylet_address=node["raylet_address"], gcs_address=gcs_address,
                      node_id=node["NodeID"], node_ip=node["NodeManagerAddress"],
                      worker_id="driver-" + os.urandom(6).hex(),
                      namespace=namespace or "anon-" + os.urandom(4).hex(),
                      log_to_driver=log_to_driver,
                      job_config=job_config.to_dict() if job_config else None)


def _find_token(gcs_address: str, current: dict | None) -> str | None:
    """SKATE_TOKEN, else the token file of the head's session directory on this machine."""
    from skate.core.config import token_from_env
    from skate.core.node import read_token

    if token_from_env():
        return token_from_env()
    if gcs_address.startswith("unix:"):
        return read_token(os.path.dirname(gcs_address[5:]))
    if current is not None and gcs_address in (current.get("tcp_address"),
                                               current.get("gcs_address")):
        return read_token(current["session_dir"])
    return None


def _address_info() -> dict:
    core = _core_worker
    assert core is not None  # called right after init() connects
    return {"node_id": core.node_id, "session_dir": core.session_dir,
            "gcs_address": _node.gcs_address if _node else None,
            "raylet_socket_name": _node.raylet_address if _node else None,
            "node_ip_address": core.node_ip, "address": _node.gcs_address if _node else None}


def shutdown(_exiting_interpreter: bool = False) -> None:
    """Disconnect, and stop every process ``init`` started (and their shared memory)."""
    global _core_worker, _node
    with _lock:
        core, node = _core_worker, _node
        _core_worker = _node = None
        if core is not None:
            try:
                core.disconnect()
            except Exception:
                log.exception("disconnect failed")
        if node is not None:
            node.stop()


def is_initialized() -> bool:
    """Whether this process is connected to Skate."""
    from skate.core.object_ref import current_worker

    return current_worker() is not None


def get_node_ip_address() -> str:
    """The address this process's node is reached at (``skate.util.get_node_ip_address``).

    >>> import skate
    >>> skate.util.get_node_ip_address()
    '127.0.0.1'
    """
    from skate.core.object_ref import current_worker

    core = current_worker()
    return core.node_ip if core is not None else "127.0.0.1"


def put(value, *, _owner=None) -> ObjectRef:
    """Store ``value`` in the object store and return a reference to it.

    >>> import skate
    >>> skate.get(skate.put([1, 2]))
    [1, 2]
    """
    return runtime.core().put(value)


def get(object_refs, *, timeout: float | None = None):
    """The value(s) of one ObjectRef or a list of them, waiting until they exist.

    Raises the task's exception if it failed, GetTimeoutError after ``timeout`` s.
    """
    return runtime.core().get(object_refs, timeout)


def wait(object_refs, *, num_returns: int = 1, timeout: float | None = None,
         fetch_local: bool = True):
    """``(ready, not_ready)``: the first ``num_returns`` refs that are ready, in input order."""
    return runtime.core().wait(object_refs, num_returns, timeout, fetch_local)


def cancel(object_ref: ObjectRef, *, force: bool = False, recursive: bool = True) -> None:
    """Stop the task that makes ``object_ref``; its ``get`` raises TaskCancelledError.

    A queued task is dropped; a running one is interrupted (``force=True``
    kills its worker process). Actor tasks cannot be cancelled this way.
    """
    if not isinstance(object_ref, ObjectRef):
        raise TypeError(f"skate.cancel() takes an ObjectRef, got {type(object_ref).__name__}.")
    core = runtime.core()
    if object_ref.owner != core.address:
        from skate.core import rpc

        # made by a task another process submitted: only its owner can stop it
        try:
            core.worker_at(object_ref.owner).cancel_owned_task(object_ref.id[:12], force,
                                                               recursive, timeout=30)
        except (OSError, rpc.ConnectionClosed):
            pass  # its owner is gone, and the task with it
        return
    core.submitter.cancel(object_ref.id[:12], force, recursive)


def kill(actor, *, no_restart: bool = True) -> None:
    """Kill an actor's process now; pending calls fail with ActorDiedError.

    With ``no_restart=False`` the actor restarts if its ``max_restarts`` allows.
    """
    from skate.core.actor import ActorHandle

    if not isinstance(actor, ActorHandle):
        raise ValueError(f"skate.kill() takes an actor handle, got {type(actor).__name__}.")
    runtime.core().gcs.kill_actor(actor._actor_id_bytes, no_restart)


def get_actor(name: str, namespace: str | None = None):
    """The handle of the named actor ``name``; ValueError if there is none."""
    from skate.core.actor import ActorHandle

    if not isinstance(name, str) or not name:
        raise ValueError("get_actor() needs the actor's name as a non-empty str.")
    core = runtime.core()
    ns = namespace if namespace is not None else core.namespace
    found = core.gcs.get_named_actor(name, ns)
    if found is None:
        raise ValueError(f"Failed to look up actor with name {name!r} in namespace {ns!r}: no "
                         f"such actor (it was never created, or it died).")
    info, meta = found
    return ActorHandle(info["actor_id"], meta)


def _resources():
    core = runtime.core()
    return core.gcs.cluster_resources()


def cluster_resources() -> dict:
    """Total resources of every live node: {"CPU": 4.0, "GPU": 0, "memory": ..., ...}."""
    total, _ = _resources()
    return {k: float(v) for k, v in total.items()}


def available_resources() -> dict:
    """Resources not held by running tasks and actors right now."""
    _, avail = _resources()
    return {k: float(v) for k, v in avail.items()}


def nodes() -> list:
    """One dict per node: NodeID, Alive, NodeManagerAddress, Resources, ..."""
    return runtime.core().gcs.get_nodes()


def get_gpu_ids() -> list:
    """The GPU ids assigned to the current task or actor."""
    return list(runtime.core().gpu_ids)


def list_named_actors(all_namespaces: bool = False) -> list:
    core = runtime.core()
    found = core.gcs.list_named_actors(core.namespace, all_namespaces)
    return found if all_namespaces else [a["name"] for a in found]


def remote(*args, **options):
    """Make a function a task, or a class an actor.

    >>> import skate
    >>> @skate.remote(num_cpus=1)
    ... def f(x):
    ...     return x * 2
    >>> skate.get(f.remote(4))
    8
    """
    from skate.core.actor import ActorClass
    from skate.core.remote_function import RemoteFunction

    def make(obj, options):
        if isinstance(obj, type):
            return ActorClass(obj, options)
        if callable(obj):
            return RemoteFunction(obj, options)
        raise TypeError("@skate.remote must decorate a function or a class, "
                        f"got {type(obj).__name__}.")

    if len(args) == 1 and not options and callable(args[0]):
        return make(args[0], {})
    if not args and not options:
        raise TypeError("The @skate.remote decorator must be applied either with no arguments "
                        "and no parentheses (@skate.remote) or with options, e.g. "
                        "@skate.remote(num_cpus=2).")
    if args:
        raise TypeError("@skate.remote takes keyword options only, e.g. @skate.remote(num_cpus=2).")
    return lambda obj: make(obj, options)

"""Validating the options of ``@remote`` and ``.options()``, with Ray's names.

Unknown option names raise ValueError listing the valid ones; values of the
wrong type raise TypeError or ValueError naming the option, at decoration or
``.options()`` time, before anything is sent.
"""

from __future__ import annotations

from skate.core.scheduling_strategies import (
    NodeAffinitySchedulingStrategy,
    PlacementGroupSchedulingStrategy,
)

_COMMON = {
    "num_cpus", "num_gpus", "resources", "memory", "object_store_memory", "accelerator_type",
    "scheduling_strategy", "runtime_env", "name", "placement_group",
    "placement_group_bundle_index", "placement_group_capture_child_tasks", "_metadata",
    "label_selector", "enable_task_events", "_labels", "fallback_strategy",
}
TASK_OPTIONS = _COMMON | {"num_returns", "max_retries", "retry_exceptions", "max_calls",
                          "_generator_backpressure_num_objects"}
ACTOR_OPTIONS = _COMMON | {"namespace", "lifetime", "max_restarts", "max_task_retries",
                           "max_concurrency", "get_if_exists", "max_pending_calls",
                           "concurrency_groups", "_max_pending_calls"}
METHOD_OPTIONS = {"num_returns", "concurrency_group", "max_task_retries", "retry_exceptions",
                  "_generator_backpressure_num_objects", "enable_task_events", "tensor_transport"}


def _number(name, v, allow_none=True):
    if v is None and allow_none:
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"The option {name!r} must be a number, got {type(v).__name__} {v!r}.")
    if v < 0:
        raise ValueError(f"The option {name!r} must be >= 0, got {v}.")


def _int(name, v, minimum=0, allow_none=True):
    if v is None and allow_none:
        return
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"The option {name!r} must be an int, got {type(v).__name__} {v!r}.")
    if v < minimum:
        raise ValueError(f"The option {name!r} must be >= {minimum}, got {v}.")


def validate(options: dict, valid: set, what: str) -> dict:
    for k in options:
        if k not in valid:
            raise ValueError(
                f"Invalid option keyword {k!r} for {what}. Valid ones are: "
                f"{', '.join(sorted(o for o in valid if not o.startswith('_')))}.")
    for k in ("num_cpus", "num_gpus", "memory", "object_store_memory"):
        if k in options:
            _number(k, options[k])
    if "num_gpus" in options and options["num_gpus"] and options["num_gpus"] > 1 \
            and options["num_gpus"] != int(options["num_gpus"]):
        raise ValueError(f"num_gpus above 1 must be a whole number, got {options['num_gpus']}.")
    res = options.get("resources")
    if res is not None:
        if not isinstance(res, dict):
            raise TypeError(f"The option 'resources' must be a dict, got {type(res).__name__}.")
        for name, amount in res.items():
            if name in ("CPU", "GPU"):
                raise ValueError(f"Use num_cpus/num_gpus instead of resources={{{name!r}: ...}}.")
            _number(f"resources[{name!r}]", amount, allow_none=False)
    if "num_returns" in options:
        nr = options["num_returns"]
        if nr not in ("dynamic", "streaming"):
            _int("num_returns", nr)
    for k in ("max_retries", "max_restarts", "max_task_retries"):
        if k in options:
            _int(k, options[k], minimum=-1)
    if "max_calls" in options:
        _int("max_calls", options["max_calls"])
    if "max_concurrency" in options:
        _int("max_concurrency", options["max_concurrency"], minimum=1)
    rx = options.get("retry_exceptions")
    if rx is not None and not isinstance(rx, bool):
        if not isinstance(rx, (list, tuple)) or not all(
                isinstance(c, type) and issubclass(c, BaseException) for c in rx):
            raise TypeError("retry_exceptions must be a bool or a list of exception classes.")
    lt = options.get("lifetime")
    if lt is not None and lt not in ("detached", "non_detached"):
        raise ValueError(f"lifetime must be 'detached', 'non_detached' or None, got {lt!r}.")
    for k in ("name", "namespace"):
        v = options.get(k)
        if v is not None and not isinstance(v, str):
            raise TypeError(f"The option {k!r} must be a str, got {type(v).__name__}.")
    if options.get("scheduling_strategy") is not None:
        strategy(options)
    if options.get("runtime_env") is not None:
        validate_runtime_env(options["runtime_env"])
    return options


#: What a runtime_env may hold here: environment variables. Ray's packaging fields
#: (pip, conda, working_dir, ...) are refused rather than ignored, so a program that
#: relies on them fails at once with the reason instead of later with an ImportError.
RUNTIME_ENV_KEYS = frozenset({"env_vars"})


def validate_runtime_env(env) -> dict:
    """Check a runtime_env (of a task, an actor, or a whole job: ``init(runtime_env=)``)."""
    if not isinstance(env, dict):
        raise TypeError(f"runtime_env must be a dict, got {type(env).__name__}.")
    unsupported = set(env) - RUNTIME_ENV_KEYS
    if unsupported:
        raise ValueError(
            f"runtime_env field(s) {', '.join(sorted(map(str, unsupported)))} are not supported: "
            f"a runtime_env here holds env_vars only. Install packages into the cluster's "
            f"Python environment, and put local code on the path with "
            f"JobConfig(code_search_path=[...]).")
    ev = env.get("env_vars")
    if ev is not None and (not isinstance(ev, dict) or not all(
            isinstance(a, str) and isinstance(b, str) for a, b in ev.items())):
        raise TypeError("runtime_env['env_vars'] must be a dict of str to str.")
    return env


def resource_request(options: dict, default_cpus: float, what: str = "the task") -> dict:
    """The resources a task or actor asks for, in natural units.

    Inside a placement group they are renamed to draw from its bundles; a request that
    fits none of the group's bundles is a ValueError here, at ``.remote()`` (as in Ray),
    not a task pending for ever.
    """
    req = _plain_request(options, default_cpus)
    group = placement(options)
    if group is not None:
        from skate.core.resources import request_in_group

        pg_hex, index, _ = group
        _check_fits_group(options, req, default_cpus == 0, index, what)
        return request_in_group(req, pg_hex, index)
    return req


def _group_option(options: dict):
    """The placement group the options name (strategy first, then the legacy option)."""
    st = options.get("scheduling_strategy")
    if isinstance(st, PlacementGroupSchedulingStrategy):
        return st.placement_group
    return options.get("placement_group")


def _check_fits_group(options: dict, req: dict, actor: bool, index: int, what: str) -> None:
    pg = _group_option(options)
    bundles = getattr(pg, "bundle_specs", None)
    if not bundles:
        return  # captured from the parent's group: its bundles are not known here
    candidates = [bundles[index]] if index is not None and index >= 0 else bundles
    # an actor asks for 1 CPU to be placed unless it names its resources (Ray's rule)
    names_resources = any(options.get(k) is not None
                          for k in ("num_cpus", "num_gpus", "memory", "resources"))
    need = {"CPU": 1} if actor and not names_resources else req
    if any(all(b.get(k, 0) >= v for k, v in need.items()) for b in candidates):
        return
    if actor and not names_resources:
        raise ValueError(f"Cannot schedule {what} with the placement group because the actor "
                         f"requires 1 CPU for creation, but it cannot fit into any bundles for "
                         f"the placement group, {bundles}. Consider creating a placement group "
                         f"with CPU resources, or give the actor num_cpus=0.")
    raise ValueError(f"Cannot schedule {what} with the placement group because the resource "
                     f"request {need} cannot fit into any bundles for the placement group, "
                     f"{bundles}.")


def placement(options: dict) -> tuple[str, int, bool] | None:
    """(group id hex, bundle index, capture children) where this task or actor runs, if in a
    placement group: the one its options name, else the one its caller runs in when that
    caller's group captures child tasks (as in Ray)."""
    st = options.get("scheduling_strategy")
    pg = _group_option(options)
    if pg is not None and pg != "default":
        in_strategy = st if isinstance(st, PlacementGroupSchedulingStrategy) else None
        index = in_strategy.placement_group_bundle_index if in_strategy else None
        if index is None:
            index = options.get("placement_group_bundle_index", -1)
        if index is not None and index >= len(pg.bundle_specs):
            raise ValueError(f"placement_group_bundle_index={index} is out of range: the group "
                             f"has {len(pg.bundle_specs)} bundles.")
        capture = in_strategy.placement_group_capture_child_tasks if in_strategy else None
        if capture is None:
            capture = options.get("placement_group_capture_child_tasks")
        return pg.id.hex(), index, bool(capture)
    if st is None and pg is None:
        from skate.core.config import placement_group_from_env

        current = placement_group_from_env()
        if current is not None and current[1]:
            return current[0], -1, True
    return None


def _plain_request(options: dict, default_cpus: float) -> dict:
    req = {}
    cpus = options.get("num_cpus")
    req["CPU"] = default_cpus if cpus is None else cpus
    if options.get("num_gpus"):
        req["GPU"] = options["num_gpus"]
    if options.get("memory"):
        req["memory"] = options["memory"]
    for k, v in (options.get("resources") or {}).items():
        req[k] = v
    return {k: v for k, v in req.items() if v}


def env_vars(options: dict, job_env_vars: dict | None = None):
    """The worker's extra environment: the job's runtime_env env_vars, overridden by the
    task's or actor's own, and its placement group."""
    env = options.get("runtime_env") or {}
    ev = dict(job_env_vars or ())
    ev.update(env.get("env_vars") or ())
    group = placement(options)
    if group is not None:
        from skate.core.config import PLACEMENT_GROUP_ENV

        ev[PLACEMENT_GROUP_ENV] = f"{group[0]}:{int(group[2])}"
    return ev or None


def strategy(options: dict):
    """The scheduling strategy as plain data: None, "SPREAD" or ("node", node_id, soft)."""
    st = options.get("scheduling_strategy")
    if st is None or st == "DEFAULT":
        return None
    if st == "SPREAD":
        return "SPREAD"
    if isinstance(st, NodeAffinitySchedulingStrategy):
        return ("node", st.node_id, bool(st.soft))
    if isinstance(st, PlacementGroupSchedulingStrategy):
        return None  # placement groups: the bundle's node is chosen by the group
    raise ValueError(f"Unknown scheduling_strategy {st!r}: use 'DEFAULT', 'SPREAD', "
                     f"NodeAffinitySchedulingStrategy or PlacementGroupSchedulingStrategy.")

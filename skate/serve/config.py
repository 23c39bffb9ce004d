"""A deployment's settings, checked once where the user wrote them.

``@serve.deployment(...)``, ``.options(...)`` and a config file's per-deployment
overrides all end here, so a typo or a wrong type is reported with the same
message wherever it came from, before anything is started.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from skate.serve.autoscaling import AutoscalingConfig

DEFAULT_HTTP_HOST, DEFAULT_HTTP_PORT = "127.0.0.1", 8000


@dataclass(frozen=True)
class DeploymentConfig:
    """The options of one deployment, with Ray Serve's names and defaults.

    >>> DeploymentConfig(num_replicas=2).max_ongoing_requests
    5
    """

    num_replicas: int | None = 1
    max_ongoing_requests: int = 5
    max_queued_requests: int = -1
    autoscaling_config: AutoscalingConfig | None = None
    ray_actor_options: dict = field(default_factory=dict)
    user_config: object = None
    health_check_period_s: float = 10.0
    health_check_timeout_s: float = 30.0
    graceful_shutdown_timeout_s: float = 20.0
    graceful_shutdown_wait_loop_s: float = 2.0
    request_timeout_s: float | None = None
    version: str | None = None

    def __post_init__(self):
        n = self.num_replicas
        if self.autoscaling_config is None and (isinstance(n, bool) or not isinstance(n, int)
                                                or n < 0):
            raise ValueError(f"num_replicas must be an int >= 0, got {n!r}")
        _positive_int("max_ongoing_requests", self.max_ongoing_requests)
        q = self.max_queued_requests
        if isinstance(q, bool) or not isinstance(q, int) or (q < 0 and q != -1):
            raise ValueError(f"max_queued_requests must be -1 (no limit) or an int >= 0, "
                             f"got {q!r}")
        for name in ("health_check_period_s", "health_check_timeout_s",
                     "graceful_shutdown_timeout_s", "graceful_shutdown_wait_loop_s"):
            _positive_number(name, getattr(self, name), allow_zero=True)
        if self.request_timeout_s is not None:
            _positive_number("request_timeout_s", self.request_timeout_s)
        if not isinstance(self.ray_actor_options, dict):
            raise TypeError(f"ray_actor_options must be a dict, got "
                            f"{type(self.ray_actor_options).__name__}")
        unknown = sorted(set(self.ray_actor_options) - _ACTOR_OPTIONS)
        if unknown:
            raise ValueError(f"ray_actor_options: unknown key(s) {', '.join(unknown)}; valid keys "
                             f"are {', '.join(sorted(_ACTOR_OPTIONS))}")
        if self.version is not None and not isinstance(self.version, str):
            raise TypeError(f"version must be a str, got {type(self.version).__name__}")

    def initial_replicas(self) -> int:
        a = self.autoscaling_config
        return a.start_replicas() if a is not None else int(self.num_replicas or 0)

    def merged(self, overrides: dict) -> "DeploymentConfig":
        """A copy with ``overrides`` applied (the names of ``@serve.deployment``)."""
        return from_options(overrides, base=self)


DEPLOYMENT_OPTIONS = frozenset(f.name for f in dataclasses.fields(DeploymentConfig)) | {"name"}
_ACTOR_OPTIONS = frozenset({"num_cpus", "num_gpus", "memory", "resources", "runtime_env",
                            "accelerator_type", "scheduling_strategy", "max_concurrency",
                            "object_store_memory"})


def from_options(options: dict, base: DeploymentConfig | None = None) -> DeploymentConfig:
    """Build a config from decorator/``options`` keyword arguments; unknown names are errors.

    ``num_replicas="auto"`` turns on autoscaling with the default policy, as in Ray.
    """
    unknown = sorted(set(options) - DEPLOYMENT_OPTIONS)
    if unknown:
        raise TypeError(f"unknown deployment option(s) {', '.join(unknown)}; valid options are "
                        f"{', '.join(sorted(DEPLOYMENT_OPTIONS))}")
    values = {k: v for k, v in options.items() if k != "name"}
    if "autoscaling_config" in values:
        a = values["autoscaling_config"]
        if isinstance(a, dict):
            values["autoscaling_config"] = AutoscalingConfig.from_dict(a)
        elif a is not None and not isinstance(a, AutoscalingConfig):
            raise TypeError(f"autoscaling_config must be a dict or AutoscalingConfig, got "
                            f"{type(a).__name__}")
    if values.get("num_replicas") == "auto":
        values["num_replicas"] = None
        if values.get("autoscaling_config") is None:
            values["autoscaling_config"] = AutoscalingConfig(min_replicas=1, max_replicas=100)
    if values.get("autoscaling_config") is not None and "num_replicas" in values \
            and values["num_replicas"] is not None:
        raise ValueError("num_replicas and autoscaling_config cannot both be set; use "
                         "autoscaling_config's min_replicas/initial_replicas")
    if values.get("autoscaling_config") is not None:
        values["num_replicas"] = None
    if base is not None and values.get("num_replicas") is not None and \
            "autoscaling_config" not in values:
        values["autoscaling_config"] = None  # a fixed count replaces inherited autoscaling
    if base is None:
        return DeploymentConfig(**values)
    return dataclasses.replace(base, **values)


def _positive_int(name: str, v) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be an int >= 1, got {v!r}")


def _positive_number(name: str, v, allow_zero: bool = False) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or (v == 0 and
                                                                           not allow_zero):
        raise ValueError(f"{name} must be a number {'>=' if allow_zero else '>'} 0, got {v!r}")

"""A job's settings, as Ray's ``ray.job_config.JobConfig``.

>>> import skate
>>> from skate.job_config import JobConfig
>>> skate.init(num_cpus=1, job_config=JobConfig(code_search_path=["/tmp"]))  # doctest: +SKIP

``code_search_path`` directories go in front of ``sys.path`` in every worker
that runs the job's tasks and actors (so modules there import by name);
``ray_namespace`` is the job's namespace when ``init`` names none. The other
fields are accepted for Ray compatibility and kept on the job's record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["JobConfig"]


@dataclass
class JobConfig:
    """Settings of the job a driver starts (``skate.init(job_config=...)``)."""

    jvm_options: list = field(default_factory=list)
    """Accepted for Ray compatibility (Java workers); unused."""
    code_search_path: list = field(default_factory=list)
    """Directories put in front of ``sys.path`` in the job's workers."""
    runtime_env: dict | None = None
    """The job's runtime_env (``{"env_vars": {...}}``): under every task and actor of the
    job, whose own runtime_env wins key by key (same as ``init(runtime_env=...)``)."""
    metadata: dict = field(default_factory=dict)
    """Free-form strings kept on the job's record."""
    ray_namespace: str | None = None
    """The job's namespace, when ``init(namespace=...)`` names none."""
    default_actor_lifetime: str = "non_detached"
    """Accepted for Ray compatibility; actors are non-detached unless ``lifetime=`` says."""

    def __post_init__(self):
        if not isinstance(self.code_search_path, (list, tuple)):
            raise TypeError(f"code_search_path must be a list or tuple of paths, got "
                            f"{type(self.code_search_path).__name__}")
        if not all(isinstance(p, str) for p in self.code_search_path):
            raise TypeError("code_search_path entries must be str paths")
        self.code_search_path = list(self.code_search_path)
        if self.ray_namespace is not None and not isinstance(self.ray_namespace, str):
            raise TypeError("ray_namespace must be a str")
        if self.default_actor_lifetime not in ("detached", "non_detached"):
            raise ValueError("default_actor_lifetime must be 'detached' or 'non_detached'")

    def to_dict(self) -> dict:
        """The job's record in the control store (plain data)."""
        return asdict(self)

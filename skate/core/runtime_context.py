"""``skate.get_runtime_context()``: who and where the caller is."""

from __future__ import annotations

import os

from skate.core.object_ref import current_worker


class RuntimeContext:
    """Ids and resources of the current driver, task or actor.

    >>> import skate
    >>> skate.get_runtime_context().get_node_id()  # doctest: +SKIP
    """

    def __init__(self, core):
        self._core = core

    def get_job_id(self) -> str:
        return self._core.job_id

    @property
    def job_id(self):
        return self._core.job_id

    def get_node_id(self) -> str:
        return self._core.node_id

    @property
    def node_id(self):
        return self._core.node_id

    def get_worker_id(self) -> str:
        return self._core.worker_id

    def get_task_id(self) -> str | None:
        t = self._core.current_task
        return t[0].hex() if t else None

    def get_actor_id(self) -> str | None:
        a = self._core.current_actor_id
        return a.hex() if a else None

    def get_assigned_resources(self) -> dict:
        from skate.core.resources import plain_request

        return {k: float(v) for k, v in plain_request(self._core.assigned_resources).items()}

    def get_accelerator_ids(self) -> dict:
        return {"GPU": [str(g) for g in self._core.gpu_ids]}

    @property
    def namespace(self) -> str:
        return self._core.namespace

    def get_namespace(self) -> str:
        return self._core.namespace

    @property
    def gcs_address(self) -> str:
        """The control store's address: ``init(address=...)`` or RAY_ADDRESS joins it."""
        return self._core.gcs_address

    def get_log_dir(self) -> str:
        """This node's log folder (libraries write their own logs under it).

        >>> import os, skate
        >>> os.path.isdir(skate.get_runtime_context().get_log_dir())
        True
        """
        import os

        return os.path.join(self._core.session_dir, "logs")

    def get_pid(self) -> int:
        return os.getpid()

    @property
    def was_current_actor_reconstructed(self) -> bool:
        return bool(self._core.actor_restarts)

    @property
    def current_actor(self):
        from skate.core.actor import ActorHandle

        a = self._core.current_actor_id
        if a is None:
            raise RuntimeError("current_actor is only available inside an actor.")
        return ActorHandle(
            a, self._core.actor_meta or {"class_name": "actor", "methods": {}})


def get_runtime_context() -> RuntimeContext:
    from skate.core import runtime

    return RuntimeContext(runtime.core() if current_worker() is None else current_worker())

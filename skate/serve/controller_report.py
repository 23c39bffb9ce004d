"""What the serve controller tells the world about itself: metrics and a status board.

- ``ReplicaGauges``: replicas by state per deployment, and the target, as
  metrics (``serve_deployment_replicas{application, deployment, state}``,
  ``serve_deployment_target_replicas``), set every tick; a gauge set to the
  same value costs a dict write.
- ``StatusBoard``: the controller's ``status()`` (applications, their
  deployments, replicas by state and the target) published as JSON into the
  control store's KV (namespace ``skate_dashboard``, key ``serve/status``),
  where the dashboard reads it without joining the cluster. It is checked
  every ``PERIOD_S`` and written only when it changed, off the controller's
  event loop, so an idle deployment costs one small JSON encoding a second.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from skate.util import metrics

logger = logging.getLogger(__name__)

NAMESPACE = "skate_dashboard"
KEY = "serve/status"
PERIOD_S = 1.0


class ReplicaGauges:
    def __init__(self):
        self._replicas = metrics.Gauge(
            "serve_deployment_replicas", "Replicas per deployment, by state.",
            ("application", "deployment", "state"))
        self._target = metrics.Gauge(
            "serve_deployment_target_replicas", "Replicas a deployment should have.",
            ("application", "deployment"))
        self._seen: set = set()  # (app, deployment, state) ever set: a state left reads 0

    def set(self, deployments: dict) -> None:
        """``deployments``: (app, name) -> the controller's deployment record."""
        now = {}
        for (app, name), d in deployments.items():
            for state, n in d.reconciler.counts().items():
                now[(app, name, state)] = n
            self._target.set(d.count, tags={"application": app, "deployment": name})
        for key in self._seen | set(now):
            app, name, state = key
            self._replicas.set(now.get(key, 0), tags={"application": app, "deployment": name,
                                                      "state": state})
        self._seen |= set(now)


class StatusBoard:
    """Publishes ``status()`` (a callable returning the controller's status dict)."""

    def __init__(self, status, period_s: float = PERIOD_S, put=None):
        self.status = status
        self.period_s = period_s
        self._put = put or _kv_put
        self._last: str | None = None
        self._failed = False

    async def run(self) -> None:
        """Every ``period_s``, forever (the controller's task)."""
        while True:
            await asyncio.sleep(self.period_s)
            await self.publish()

    async def publish(self) -> bool:
        """Write the status if it changed since the last write; True if written."""
        body = json.dumps(self.status(), sort_keys=True, separators=(",", ":"), default=str)
        if body == self._last:
            return False
        stamped = body[:-1] + f',"published_at":{time.time():.3f}}}'
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._put, stamped.encode())
        except Exception as e:  # noqa: BLE001 - the dashboard's view must not stop serving
            if not self._failed:
                logger.warning("serve's status for the dashboard was not published: %s", e)
                self._failed = True
            return False
        self._last = body
        return True


def _kv_put(value: bytes) -> None:
    from skate.experimental import internal_kv

    internal_kv._internal_kv_put(KEY, value, namespace=NAMESPACE)

"""One process's view of the routing table, kept fresh by long-polling the controller.

The proxy, a driver using handles, and a replica calling another deployment
each hold one ``RoutingClient`` per event loop. It asks the controller
``poll_routes(version)``, which answers at once when its table is newer and
otherwise only when it changes (or after ``POLL_TIMEOUT_S``), so a new or dead
replica reaches every router within a round trip, with no polling traffic in
between. It also reports the routers' load (running + queued requests) for
autoscaling, every ``LOAD_PERIOD_S`` and at once when a request waits for a
deployment that has no replica (scale from zero).
"""

from __future__ import annotations

import asyncio
import threading
import uuid

import skate
from skate.serve.router import Router

CONTROLLER_NAME, NAMESPACE = "SERVE_CONTROLLER_ACTOR", "serve"
LOAD_PERIOD_S = 0.25


def controller():
    """The controller actor's handle (``RayServeException`` when serve is not running)."""
    from skate.exceptions import RayServeException

    try:
        return skate.get_actor(CONTROLLER_NAME, namespace=NAMESPACE)
    except ValueError:
        raise RayServeException("serve is not running here: call serve.run(...) or "
                                "serve.start() first") from None


class RoutingClient:
    """Routers for every deployment this process calls, on one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.controller = controller()
        self.id = uuid.uuid4().hex[:12]
        self.node_id = skate.get_runtime_context().get_node_id()
        self.routers: dict = {}  # (app, deployment) -> Router
        self.apps: dict = {}  # app name -> (route_prefix or None, ingress deployment)
        self.version = -1
        self.first = asyncio.Event()
        self._stopped = False
        self._last_loads: dict = {}
        self._tasks = [loop.create_task(self._poll_forever()),
                       loop.create_task(self._report_forever())]

    def router(self, app: str, deployment: str) -> Router:
        key = (app, deployment)
        r = self.routers.get(key)
        if r is None:
            r = self.routers[key] = Router(app, deployment, self.node_id,
                                           on_demand=self._demand)
        return r

    async def known_router(self, app: str, deployment: str) -> Router:
        """The router of a deployment the controller knows (waits for the first table)."""
        from skate.exceptions import RayServeException

        if not self.first.is_set():
            await self.first.wait()
        if (app, deployment) not in self._known:
            raise RayServeException(f"there is no deployment {deployment!r} in application "
                                    f"{app!r}")
        return self.router(app, deployment)

    def stop(self) -> None:
        self._stopped = True
        for t in self._tasks:
            t.cancel()

    # -- the table ---------------------------------------------------------------------------
    _known: frozenset = frozenset()

    def _apply(self, snap: dict) -> None:
        self.version = snap["version"]
        self.apps = snap["apps"]
        self._known = frozenset(snap["deployments"])
        for key, info in snap["deployments"].items():
            self.router(*key).update(info)
        for key, r in self.routers.items():
            if key not in snap["deployments"]:
                r.update({"max_ongoing": r.chooser.max_ongoing, "max_queued": r.max_queued,
                          "request_timeout_s": r.request_timeout_s, "autoscaling": False,
                          "replicas": []})
        self.first.set()

    async def _poll_forever(self) -> None:
        from skate.exceptions import RayActorError

        while not self._stopped:
            try:
                snap = await self.controller.poll_routes.remote(self.version)
            except RayActorError:
                return  # serve was shut down
            except Exception:
                await asyncio.sleep(0.2)
                continue
            self._apply(snap)

    # -- load reports ------------------------------------------------------------------------
    def _loads(self) -> dict:
        return {key: r.load() for key, r in self.routers.items() if r.autoscaling}

    def _demand(self, router: Router) -> None:
        self.controller.record_load.remote(self.id, {(router.app_name, router.deployment):
                                                     router.load()})

    async def _report_forever(self) -> None:
        while not self._stopped:
            await asyncio.sleep(LOAD_PERIOD_S)
            loads = self._loads()
            if loads and (loads != self._last_loads or any(loads.values())):
                self.controller.record_load.remote(self.id, loads)
            self._last_loads = loads


_clients: dict = {}  # event loop -> RoutingClient
_lock = threading.Lock()


def client_for(loop: asyncio.AbstractEventLoop) -> RoutingClient:
    """This loop's routing client (made on first use; call on ``loop``'s thread)."""
    c = _clients.get(loop)
    if c is None or c._stopped:
        for old in [lp for lp in _clients if lp.is_closed()]:  # asyncio.run loops that ended
            del _clients[old]
        c = _clients[loop] = RoutingClient(loop)
    return c


def forget_all() -> None:
    """Stop every client (``serve.shutdown``): the next call finds the new controller."""
    for loop, c in list(_clients.items()):
        if loop.is_closed():
            continue
        try:
            loop.call_soon_threadsafe(c.stop)
        except RuntimeError:
            pass
    _clients.clear()


class BackgroundLoop:
    """An event loop on a daemon thread, for handles used from synchronous code."""

    _instance: "BackgroundLoop | None" = None

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="skate-serve-handles",
                                       daemon=True)
        self.thread.start()

    @classmethod
    def get(cls) -> "BackgroundLoop":
        with _lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

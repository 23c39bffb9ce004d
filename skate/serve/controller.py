"""The serve controller: a detached actor that makes the running replicas match the apps.

It holds every application's deployments; for each one a ``Reconciler``
(which replicas should start, stop, reconfigure) and, when autoscaling, an
``AutoscalingPolicy`` (how many there should be). Both are pure; this actor
is the part that acts: every ``TICK_S`` it feeds them the time, the routers'
load reports and what happened to replicas, and carries out their commands
as asyncio tasks — start a replica actor and ``initialize`` it, drain and
kill one, call ``reconfigure``, run health checks. Each replica has one
``watch`` call outstanding, which fails the moment its actor dies, so a
crash is replaced without waiting for a health check.

Routers learn the table (running replicas per deployment, route prefixes)
by long-polling ``poll_routes``. Replicas and the proxy are detached named
actors (as in Ray Serve), so they outlive the driver that deployed them;
``serve.shutdown`` stops each of them, then the controller. A proxy that
dies is started again.
"""

from __future__ import annotations

import asyncio
import hashlib
import pickle
import time
from dataclasses import dataclass, field

import skate
from skate.serve.autoscaling import AutoscalingPolicy
from skate.serve.controller_report import ReplicaGauges, StatusBoard
from skate.serve.deployment import DeploymentSpec
from skate.serve.reconciler import (
    HEALTHY,
    UNHEALTHY,
    Reconciler,
    Reconfigure,
    StartReplica,
    StopReplica,
    Target,
)
from skate.serve.replica import Replica
from skate.serve.routing_client import NAMESPACE

TICK_S = 0.05
POLL_TIMEOUT_S = 30.0
LOAD_STALE_S = 2.0  # a non-zero load report is refreshed every 0.25 s; older ones are gone
PROXY_NAME = "SERVE_PROXY_ACTOR"
DEPLOY_FAILED_AFTER = 3  # replicas in a row failing to start fail a deploy
RUNNING, DEPLOYING, DEPLOY_FAILED, DELETING, APP_UNHEALTHY = (
    "RUNNING", "DEPLOYING", "DEPLOY_FAILED", "DELETING", "UNHEALTHY")

ReplicaActor = skate.remote(Replica)


@dataclass
class _ReplicaState:
    actor: object
    version: str
    node_id: str = ""
    running: bool = False
    stopping: bool = False
    model_ids: frozenset = frozenset()
    next_health_at: float = 0.0
    checking: bool = False


@dataclass
class _Deployment:
    spec: DeploymentSpec
    reconciler: Reconciler
    policy: AutoscalingPolicy | None
    count: int
    replicas: dict = field(default_factory=dict)  # id -> _ReplicaState
    deleting: bool = False

    def config_version(self) -> str | None:
        uc = self.spec.config.user_config
        return None if uc is None else hashlib.sha1(pickle.dumps(uc)).hexdigest()[:16]


@dataclass
class _App:
    name: str
    route_prefix: str | None
    ingress: str
    deployments: list
    status: str = DEPLOYING
    message: str = ""
    deployed_at: float = field(default_factory=time.time)


class ServeController:
    """The actor class of the controller (one per cluster, named, in namespace "serve")."""

    def __init__(self, http_options: dict, controller_name: str):
        self.http_options = http_options
        self.name = controller_name
        self.apps: dict = {}  # name -> _App
        self.deployments: dict = {}  # (app, deployment) -> _Deployment
        self.version = 0
        self._changed: asyncio.Event | None = None
        self._snapshot: dict | None = None
        self._loads: dict = {}  # router id -> (time, {(app, dep): load})
        self._loop_task = None
        self.proxy = None
        self.proxy_address: tuple | None = None
        self._proxy_node = ""
        self._stopping = False
        self._tasks: set = set()
        self._gauges: ReplicaGauges | None = None  # made in start(): metrics need the actor
        self._board = StatusBoard(self.status)  # status() in the KV, for the dashboard

    # -- set-up ------------------------------------------------------------------------------
    async def start(self) -> dict:
        if self._loop_task is None:
            self._changed = asyncio.Event()
            self._gauges = ReplicaGauges()
            self._loop_task = asyncio.get_running_loop().create_task(self._run())
            self._spawn(self._board.run())
        return self.http_options

    async def ensure_proxy(self, node_id: str) -> tuple:
        """Start the HTTP proxy on ``node_id`` (once); returns (host, port) it listens on."""
        if self.proxy_address is not None:
            return self.proxy_address
        from skate.serve.proxy import ProxyActor
        from skate.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        host = self.http_options.get("host", "127.0.0.1")
        port = self.http_options.get("port", 8000)
        # detached, as Ray Serve's: they must outlive the driver that asked for them (the
        # controller works on its behalf); serve.shutdown stops them explicitly
        proxy = ProxyActor.options(
            name=PROXY_NAME, namespace=NAMESPACE, lifetime="detached",
            num_cpus=0, max_concurrency=100_000,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        ).remote(host, port, self.name, self.http_options.get("request_timeout_s"))
        try:
            self.proxy_address = tuple(await proxy.ready.remote())
        except Exception:
            skate.kill(proxy)
            raise
        self.proxy = proxy
        self._proxy_node = node_id
        self._spawn(self._watch_proxy(proxy))
        return self.proxy_address

    async def _watch_proxy(self, proxy) -> None:
        """A dead proxy is started again on its node (its port is the same)."""
        try:
            await proxy.watch.remote()
        except Exception:
            pass
        if self.proxy is proxy and not self._stopping:
            self.proxy = self.proxy_address = None
            while not self._stopping:
                try:
                    await self.ensure_proxy(self._proxy_node)
                    return
                except Exception:
                    await asyncio.sleep(1.0)  # the port may not be free yet

    # -- applications ------------------------------------------------------------------------
    async def deploy_app(self, name: str, route_prefix: str | None, specs: list) -> None:
        for other in self.apps.values():
            if other.name != name and route_prefix is not None and \
                    other.route_prefix == route_prefix:
                raise ValueError(f"route prefix {route_prefix!r} is already used by "
                                 f"application {other.name!r}")
        names = [s.name for s in specs]
        for key, d in list(self.deployments.items()):
            if key[0] == name and key[1] not in names:
                d.deleting = True
        for spec in specs:
            self._upsert(spec)
        self.apps[name] = _App(name, route_prefix, specs[-1].name, names)
        self._bump()

    def _upsert(self, spec: DeploymentSpec) -> None:
        key = (spec.app_name, spec.name)
        cfg = spec.config
        d = self.deployments.get(key)
        policy = AutoscalingPolicy(cfg.autoscaling_config) if cfg.autoscaling_config else None
        if d is None:
            d = self.deployments[key] = _Deployment(spec, Reconciler(spec.name), policy,
                                                    cfg.initial_replicas())
        else:
            same_policy = d.policy is not None and policy is not None and \
                d.policy.config == policy.config
            if not same_policy:
                d.policy = policy
                d.count = cfg.initial_replicas() if policy is None else max(
                    cfg.autoscaling_config.min_replicas,
                    min(cfg.autoscaling_config.max_replicas, d.count))
            d.spec, d.deleting = spec, False
        d.reconciler.set_target(Target(spec.version, d.count, d.config_version()))

    async def delete_app(self, name: str) -> None:
        app = self.apps.get(name)
        if app is None:
            return
        app.status = DELETING
        for key, d in self.deployments.items():
            if key[0] == name:
                d.deleting = True
        self._bump()
        while any(k[0] == name for k in self.deployments):
            await asyncio.sleep(TICK_S)
        self.apps.pop(name, None)
        self._bump()

    async def wait_app(self, name: str, timeout_s: float) -> tuple:
        """(status, message) once the app is RUNNING or DEPLOY_FAILED (or the time is up)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            app = self.apps.get(name)
            if app is None:
                return ("NOT_STARTED", f"no application {name!r}")
            if app.status in (RUNNING, DEPLOY_FAILED):
                return app.status, app.message
            await asyncio.sleep(0.01)
        app = self.apps.get(name)
        return (app.status, app.message) if app else ("NOT_STARTED", "")

    def app_info(self, name: str) -> dict | None:
        app = self.apps.get(name)
        if app is None:
            return None
        return {"name": name, "route_prefix": app.route_prefix, "ingress": app.ingress,
                "status": app.status}

    def list_apps(self) -> list:
        return sorted(self.apps)

    async def shutdown(self) -> None:
        self._stopping = True
        await asyncio.gather(*(self.delete_app(name) for name in list(self.apps)))
        if self.proxy is not None:
            try:
                await asyncio.wait_for(self.proxy.stop.remote(), 5)
            except Exception:
                pass
            skate.kill(self.proxy)
            self.proxy = self.proxy_address = None
        await self._board.publish()  # no applications now

    # -- reports from routers and replicas ------------------------------------------------------
    def record_load(self, router_id: str, loads: dict) -> None:
        self._loads[router_id] = (time.monotonic(), loads)

    def record_models(self, app: str, deployment: str, replica_id: str, model_ids: list) -> None:
        d = self.deployments.get((app, deployment))
        rs = d.replicas.get(replica_id) if d else None
        if rs is not None:
            rs.model_ids = frozenset(model_ids)
            self._bump()

    async def poll_routes(self, version: int) -> dict:
        if version == self.version:
            try:
                await asyncio.wait_for(self._changed.wait(), POLL_TIMEOUT_S)
            except asyncio.TimeoutError:
                pass
        return self._routes()

    def _bump(self) -> None:
        self.version += 1
        self._snapshot = None
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    def _routes(self) -> dict:
        if self._snapshot is None:
            deps = {}
            for key, d in self.deployments.items():
                cfg = d.spec.config
                deps[key] = {
                    "max_ongoing": cfg.max_ongoing_requests,
                    "max_queued": cfg.max_queued_requests,
                    "request_timeout_s": cfg.request_timeout_s,
                    "autoscaling": d.policy is not None,
                    "replicas": [(rid, rs.actor, rs.node_id, rs.model_ids)
                                 for rid, rs in sorted(d.replicas.items())
                                 if rs.running and not rs.stopping]}
            apps = {a.name: (a.route_prefix, a.ingress) for a in self.apps.values()
                    if a.status != DELETING}
            self._snapshot = {"version": self.version, "apps": apps, "deployments": deps}
        return self._snapshot

    # -- the loop ----------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            try:
                self._tick(time.monotonic())
            except Exception:  # a bug here must not stop reconciling everything else
                import traceback
                traceback.print_exc()
            await asyncio.sleep(TICK_S)

    def _tick(self, now: float) -> None:
        if self._gauges is not None:
            self._gauges.set(self.deployments)
        loads = self._fresh_loads(now)
        for key, d in list(self.deployments.items()):
            if d.policy is not None and not d.deleting:
                d.policy.observe(now, loads.get(key, 0))
                d.count = d.policy.decide(now, d.count)
            r = d.reconciler
            r.set_target(Target(d.spec.version, 0 if d.deleting else d.count,
                                d.config_version()))
            for cmd in r.step(now):
                self._carry_out(key, d, cmd)
            self._health_checks(key, d, now)
            if d.deleting and not d.replicas and not r.replicas:
                del self.deployments[key]
                self._bump()
        self._app_statuses()

    def _fresh_loads(self, now: float) -> dict:
        out: dict = {}
        for rid, (t, loads) in list(self._loads.items()):
            if now - t > LOAD_STALE_S:
                del self._loads[rid]
                continue
            for key, n in loads.items():
                out[key] = out.get(key, 0) + n
        return out

    def _app_statuses(self) -> None:
        for app in self.apps.values():
            if app.status == DELETING:
                continue
            deps = [self.deployments.get((app.name, n)) for n in app.deployments]
            states = [d.reconciler.status() for d in deps if d is not None]
            failing = [(n, msg) for n, d, (st, msg) in zip(app.deployments, deps, states)
                       if st == UNHEALTHY]
            if all(st == HEALTHY for st, _ in states):
                status, msg = RUNNING, ""
            elif failing and app.status in (RUNNING, APP_UNHEALTHY):
                status, msg = APP_UNHEALTHY, "; ".join(f"{n}: {m}" for n, m in failing)
            elif failing and any(d.reconciler._start_failures >= DEPLOY_FAILED_AFTER
                                 for d in deps if d is not None):
                status, msg = DEPLOY_FAILED, "; ".join(f"{n}: {m}" for n, m in failing)
            elif app.status == DEPLOY_FAILED:
                status, msg = app.status, app.message
            else:
                status, msg = DEPLOYING, "; ".join(m for _, m in states if m)
            app.status, app.message = status, msg

    # -- commands ------------------------------------------------------------------------------
    def _spawn(self, coro) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def _carry_out(self, key, d: _Deployment, cmd) -> None:
        if isinstance(cmd, StartReplica):
            self._spawn(self._start(key, d, cmd))
        elif isinstance(cmd, StopReplica):
            self._spawn(self._stop(key, d, cmd))
        elif isinstance(cmd, Reconfigure):
            self._spawn(self._reconfigure(d, cmd))

    async def _start(self, key, d: _Deployment, cmd: StartReplica) -> None:
        spec = d.spec
        cfg = spec.config
        opts = {"num_cpus": 1, "scheduling_strategy": "SPREAD", **cfg.ray_actor_options}
        opts["max_concurrency"] = max(opts.get("max_concurrency") or 0,
                                      cfg.max_ongoing_requests + 100)
        try:
            actor = ReplicaActor.options(
                name=f"SERVE_REPLICA::{spec.app_name}#{cmd.replica_id}", namespace=NAMESPACE,
                lifetime="detached", **opts).remote(
                spec.app_name, spec.name, cmd.replica_id, spec.serialized, spec.is_function,
                cfg.max_ongoing_requests, self.name)
        except Exception as e:
            d.reconciler.replica_failed(cmd.replica_id, f"{type(e).__name__}: {e}",
                                        time.monotonic())
            return
        rs = d.replicas[cmd.replica_id] = _ReplicaState(actor, cmd.version)
        try:
            info = await actor.initialize.remote(cfg.user_config)
        except Exception as e:
            d.replicas.pop(cmd.replica_id, None)
            d.reconciler.replica_failed(cmd.replica_id, _short(e), time.monotonic())
            _kill(actor)
            return
        if cmd.replica_id not in d.reconciler.replicas:  # stopped while starting
            d.replicas.pop(cmd.replica_id, None)
            _kill(actor)
            return
        rs.node_id, rs.running = info["node_id"], True
        rs.next_health_at = time.monotonic() + cfg.health_check_period_s
        d.reconciler.replica_started(cmd.replica_id)
        self._spawn(self._watch(key, d, cmd.replica_id, rs))
        self._bump()

    async def _watch(self, key, d: _Deployment, rid: str, rs: _ReplicaState) -> None:
        try:
            await rs.actor.watch.remote()
        except Exception as e:
            if not rs.stopping:
                self._lost(d, rid, rs, f"the replica died: {_short(e)}")

    def _lost(self, d: _Deployment, rid: str, rs: _ReplicaState, why: str) -> None:
        if d.replicas.get(rid) is rs:
            del d.replicas[rid]
            d.reconciler.replica_failed(rid, why, time.monotonic())
            _kill(rs.actor)
            self._bump()

    async def _stop(self, key, d: _Deployment, cmd: StopReplica) -> None:
        rs = d.replicas.get(cmd.replica_id)
        if rs is None:  # not created yet, or already gone
            d.reconciler.replica_stopped(cmd.replica_id)
            return
        rs.stopping = True
        self._bump()  # routers stop sending before the drain begins
        cfg = d.spec.config
        if cmd.graceful and rs.running:
            try:
                await asyncio.wait_for(
                    rs.actor.drain.remote(cfg.graceful_shutdown_wait_loop_s,
                                          cfg.graceful_shutdown_timeout_s),
                    cfg.graceful_shutdown_timeout_s + 5)
            except Exception:
                pass
        _kill(rs.actor)
        d.replicas.pop(cmd.replica_id, None)
        d.reconciler.replica_stopped(cmd.replica_id)

    async def _reconfigure(self, d: _Deployment, cmd: Reconfigure) -> None:
        rs = d.replicas.get(cmd.replica_id)
        if rs is None:
            return
        try:
            await rs.actor.reconfigure.remote(d.spec.config.user_config)
        except Exception as e:
            self._lost(d, cmd.replica_id, rs, f"reconfigure failed: {_short(e)}")
            return
        d.reconciler.reconfigured(cmd.replica_id, cmd.config_version)

    def _health_checks(self, key, d: _Deployment, now: float) -> None:
        for rid, rs in list(d.replicas.items()):
            if rs.running and not rs.stopping and not rs.checking and now >= rs.next_health_at:
                rs.checking = True
                self._spawn(self._check(d, rid, rs))

    async def _check(self, d: _Deployment, rid: str, rs: _ReplicaState) -> None:
        cfg = d.spec.config
        try:
            await asyncio.wait_for(rs.actor.check_health.remote(), cfg.health_check_timeout_s)
        except Exception as e:
            if not rs.stopping:
                why = "timed out" if isinstance(e, asyncio.TimeoutError) else _short(e)
                self._lost(d, rid, rs, f"health check failed: {why}")
            return
        finally:
            rs.checking = False
        rs.next_health_at = time.monotonic() + cfg.health_check_period_s

    # -- status ------------------------------------------------------------------------------
    def status(self) -> dict:
        apps = {}
        for app in self.apps.values():
            deps = {}
            for n in app.deployments:
                d = self.deployments.get((app.name, n))
                if d is None:
                    continue
                st, msg = d.reconciler.status()
                deps[n] = {"status": st, "message": msg,
                           "replica_states": d.reconciler.counts(),
                           "target_replicas": d.count}
            apps[app.name] = {"status": app.status, "message": app.message,
                              "route_prefix": app.route_prefix,
                              "last_deployed_time_s": app.deployed_at, "deployments": deps}
        proxy = None if self.proxy_address is None else {
            "host": self.proxy_address[0], "port": self.proxy_address[1]}
        return {"applications": apps, "proxy": proxy}


def _kill(actor) -> None:
    try:
        skate.kill(actor)
    except Exception:
        pass


def _short(e: BaseException) -> str:
    text = str(e).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[-1] if lines else ''}"[:2000]

"""The verbs: ``serve.run``, ``serve.deploy``, ``start``, ``status``, ``delete``, ``shutdown``.

They run in the user's process and talk to the controller actor; the first
call starts Skate (when not already initialised), the controller and the
HTTP proxy.
"""

from __future__ import annotations

import time

import skate
from skate.exceptions import RayServeException
from skate.serve import deployment as deployment_mod
from skate.serve import replica as replica_mod
from skate.serve import routing_client, schema
from skate.serve.config import DEFAULT_HTTP_HOST, DEFAULT_HTTP_PORT
from skate.serve.handle import DeploymentHandle

HTTP_OPTIONS = frozenset({"host", "port", "request_timeout_s", "location", "root_path",
                          "keep_alive_timeout_s"})


def _controller_actor():
    from skate.serve.controller import ServeController

    return skate.remote(ServeController)


def _controller(http_options: dict | None = None, create: bool = True):
    if not skate.is_initialized():
        if not create:
            raise RayServeException("serve is not running: Skate is not initialised here")
        skate.init()
    try:
        return skate.get_actor(routing_client.CONTROLLER_NAME, namespace=routing_client.NAMESPACE)
    except ValueError:
        if not create:
            raise RayServeException("serve is not running: call serve.run(...) or "
                                    "serve.start() first") from None
    from skate.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    opts = {"host": DEFAULT_HTTP_HOST, "port": DEFAULT_HTTP_PORT, **(http_options or {})}
    node = skate.get_runtime_context().get_node_id()
    ctrl = _controller_actor().options(
        name=routing_client.CONTROLLER_NAME, namespace=routing_client.NAMESPACE,
        lifetime="detached", get_if_exists=True, num_cpus=0, max_concurrency=100_000,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
    ).remote(opts, routing_client.CONTROLLER_NAME)
    skate.get(ctrl.start.remote())
    return ctrl


def start(http_options: dict | None = None, detached: bool = True, proxy_location=None,
          **_ignored) -> None:
    """Start serve's controller and its HTTP proxy (``serve.run`` does this for you).

    ``http_options``: ``host`` (default 127.0.0.1), ``port`` (default 8000),
    ``request_timeout_s``. A running serve keeps its options.

    >>> from skate import serve
    >>> serve.start(http_options={"host": "127.0.0.1", "port": 0})
    >>> serve.status().proxy["port"] > 0
    True
    >>> serve.shutdown()
    """
    if http_options is not None and not isinstance(http_options, dict):
        http_options = {k: getattr(http_options, k) for k in HTTP_OPTIONS
                        if getattr(http_options, k, None) is not None}
    opts = dict(http_options or {})
    unknown = sorted(set(opts) - HTTP_OPTIONS)
    if unknown:
        raise ValueError(f"http_options: unknown key(s) {', '.join(unknown)}; valid keys are "
                         f"{', '.join(sorted(HTTP_OPTIONS))}")
    port = opts.get("port", DEFAULT_HTTP_PORT)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"http_options: port must be an int in 0..65535, got {port!r}")
    ctrl = _controller(opts)
    skate.get(ctrl.ensure_proxy.remote(skate.get_runtime_context().get_node_id()))


def _check_route_prefix(route_prefix) -> None:
    if route_prefix is None:
        return
    if not isinstance(route_prefix, str) or not route_prefix.startswith("/"):
        raise ValueError(f"route_prefix must be None or a str starting with '/', got "
                         f"{route_prefix!r}")
    if route_prefix != "/" and route_prefix.endswith("/"):
        raise ValueError(f"route_prefix must not end with '/' (got {route_prefix!r})")
    if "{" in route_prefix or "}" in route_prefix:
        raise ValueError(f"route_prefix cannot contain wildcards, got {route_prefix!r}")


def _check_fits(specs: list) -> None:
    """A replica that no node could ever hold fails the deploy now, not by waiting forever."""
    nodes = [n for n in skate.nodes() if n.get("Alive", True)]
    for spec in specs:
        opts = spec.config.ray_actor_options
        want = {"CPU": opts.get("num_cpus", 1), "GPU": opts.get("num_gpus", 0),
                **opts.get("resources", {})}
        want = {k: v for k, v in want.items() if v}
        if not want:
            continue
        if not any(all(n.get("Resources", {}).get(k, 0) >= v for k, v in want.items())
                   for n in nodes):
            biggest = {k: max((n.get("Resources", {}).get(k, 0) for n in nodes), default=0)
                       for k in want}
            raise ValueError(f"deployment {spec.name!r} asks for {want} per replica, but no "
                             f"node has that much (largest: {biggest})")


def run(target, blocking: bool = False, name: str = "default", route_prefix: str | None = "/",
        _local_testing_mode: bool = False, timeout_s: float | None = None) -> DeploymentHandle:
    """Deploy an application and wait until its replicas are up; returns its ingress handle.

    ``target``: ``Deployment.bind(...)`` (or a deployment, class or function).
    ``route_prefix=None`` serves it to handles only. ``blocking=True`` then
    waits until interrupted. A constructor that keeps failing raises
    ``RuntimeError`` naming the error.

    >>> from skate import serve
    >>> @serve.deployment
    ... def hello(request):
    ...     return "hello"
    >>> handle = serve.run(hello.bind(), name="hello", route_prefix="/hello")
    >>> serve.status().applications["hello"].status
    'RUNNING'
    >>> serve.delete("hello")
    """
    app = deployment_mod.as_application(target)
    if not isinstance(name, str) or not name:
        raise ValueError(f"an application name must be a non-empty str, got {name!r}")
    _check_route_prefix(route_prefix)
    specs = deployment_mod.flatten(app, name)
    ctrl = _controller()
    _check_fits(specs)
    skate.get(ctrl.ensure_proxy.remote(skate.get_runtime_context().get_node_id()))
    skate.get(ctrl.deploy_app.remote(name, route_prefix, specs))
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
        status, message = skate.get(ctrl.wait_app.remote(name, wait))
        if status == "RUNNING":
            break
        if status == "DEPLOY_FAILED":
            raise RuntimeError(f"Deploying application {name!r} failed: {message}")
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"application {name!r} is not running after {timeout_s} s: "
                               f"{message or status}")
    handle = DeploymentHandle(specs[-1].name, name)
    if blocking:
        while True:
            time.sleep(3600)
    return handle


def deploy(target, name: str = "default", route_prefix: str | None = "/",
           **kwargs) -> DeploymentHandle:
    """Serve ``target`` over HTTP in one call: returns once its replicas are up.

    Accepts what ``serve.run`` does, plus a plain class, function or callable
    object (a model instance, say), which it wraps in a deployment.

    >>> from skate import serve
    >>> handle = serve.deploy(lambda request: "pong", name="ping", route_prefix="/ping")
    >>> serve.delete("ping")
    """
    return run(target, name=name, route_prefix=route_prefix, **kwargs)


def status() -> schema.ServeStatus:
    """Applications, their deployments and replicas, and the proxy, as the controller sees."""
    try:
        ctrl = _controller(create=False)
    except RayServeException:
        return schema.ServeStatus.from_dict({"applications": {}, "proxy": None})
    return schema.ServeStatus.from_dict(skate.get(ctrl.status.remote()))


def delete(name: str, _blocking: bool = True) -> None:
    """Remove an application: its replicas drain and stop, its route goes."""
    ctrl = _controller(create=False)
    ref = ctrl.delete_app.remote(name)
    if _blocking:
        skate.get(ref)


def shutdown() -> None:
    """Stop every application, the proxy and the controller (nothing of serve is left)."""
    if not skate.is_initialized():
        return
    try:
        ctrl = _controller(create=False)
    except RayServeException:
        return
    try:
        skate.get(ctrl.shutdown.remote(), timeout=60)
    finally:
        routing_client.forget_all()
        skate.kill(ctrl)


def get_app_handle(name: str) -> DeploymentHandle:
    """The handle of application ``name``'s ingress deployment."""
    ctrl = _controller(create=False)
    info = skate.get(ctrl.app_info.remote(name))
    if info is None:
        raise RayServeException(f"there is no application {name!r}")
    return DeploymentHandle(info["ingress"], name)


def get_deployment_handle(deployment_name: str, app_name: str | None = None,
                          **_ignored) -> DeploymentHandle:
    """A handle to one deployment (``app_name``: the caller's own app inside a replica)."""
    if app_name is None:
        ctx = replica_mod._context
        app_name = ctx.app_name if ctx is not None else "default"
    ctrl = _controller(create=False)
    info = skate.get(ctrl.app_info.remote(app_name))
    if info is None:
        raise RayServeException(f"there is no application {app_name!r}")
    return DeploymentHandle(deployment_name, app_name)


def get_replica_context() -> replica_mod.ReplicaContext:
    """Inside a replica: its app name, deployment, replica id and the user object."""
    return replica_mod.current_context()


def get_multiplexed_model_id() -> str:
    """The model id of the request being served ("" when it names none)."""
    return replica_mod.current_model_id()

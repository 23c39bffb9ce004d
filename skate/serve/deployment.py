"""``@serve.deployment``, ``.options`` and ``.bind``: what a user writes to describe an app.

A ``Deployment`` is a class or function plus its settings; ``.bind(*args)``
makes an ``Application`` — a deployment with constructor arguments, which may
themselves be applications (the composed deployment then receives a
``DeploymentHandle`` in their place). Nothing here starts anything:
``serve.run`` walks the application graph (``flatten``) and hands the
deployments to the controller.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass

from skate import cloudpickle
from skate.serve import config as config_mod


class Deployment:
    """A class or function served by replicas (made by ``@serve.deployment``).

    >>> from skate import serve
    >>> @serve.deployment(num_replicas=2)
    ... class Echo:
    ...     def __call__(self, request):
    ...         return "hi"
    >>> Echo.name, Echo.num_replicas
    ('Echo', 2)
    >>> Echo.options(name="echo2", num_replicas=1).name
    'echo2'
    """

    def __init__(self, func_or_class, name: str, config: config_mod.DeploymentConfig):
        if not (inspect.isclass(func_or_class) or inspect.isfunction(func_or_class)
                or inspect.ismethod(func_or_class) or callable(func_or_class)):
            raise TypeError(f"@serve.deployment needs a class or a function, got "
                            f"{type(func_or_class).__name__}")
        if not isinstance(name, str) or not name or "#" in name or "/" in name:
            raise ValueError(f"a deployment name must be a non-empty str without '#' or '/', "
                             f"got {name!r}")
        self.func_or_class = func_or_class
        self.name = name
        self.config = config

    @property
    def num_replicas(self):
        return self.config.num_replicas

    @property
    def max_ongoing_requests(self):
        return self.config.max_ongoing_requests

    @property
    def user_config(self):
        return self.config.user_config

    def options(self, **kwargs) -> "Deployment":
        """A copy with some options changed (same names as ``@serve.deployment``)."""
        name = kwargs.pop("name", self.name)
        return Deployment(self.func_or_class, name, self.config.merged(kwargs))

    def bind(self, *args, **kwargs) -> "Application":
        """This deployment with constructor arguments: an application ``serve.run`` can run."""
        return Application(self, args, kwargs)

    def __call__(self, *args, **kwargs):
        raise TypeError(f"deployment {self.name!r} cannot be called directly; use "
                        f"{self.name}.bind(...) and serve.run(...), then call its handle")

    def __repr__(self):
        return f"Deployment(name={self.name!r})"


@dataclass
class Application:
    """A bound deployment (``Deployment.bind(...)``), the root of an application graph."""

    deployment: Deployment
    args: tuple
    kwargs: dict

    def __repr__(self):
        return f"Application({self.deployment.name!r})"


def deployment(_func_or_class=None, *, name: str | None = None, **options):
    """Turn a class or function into a ``Deployment`` (usable bare or with options).

    Options (Ray Serve's): ``num_replicas`` (int or ``"auto"``),
    ``max_ongoing_requests``, ``max_queued_requests``, ``autoscaling_config``,
    ``ray_actor_options``, ``user_config``, ``health_check_period_s``,
    ``health_check_timeout_s``, ``graceful_shutdown_timeout_s``,
    ``graceful_shutdown_wait_loop_s``, ``request_timeout_s``, ``version``.

    >>> from skate import serve
    >>> @serve.deployment
    ... def hello(request):
    ...     return "hello"
    >>> hello.name
    'hello'
    """
    cfg = config_mod.from_options(options)

    def wrap(target):
        if isinstance(target, Deployment):
            raise TypeError("@serve.deployment is applied twice; use .options(...) instead")
        return Deployment(target, name or getattr(target, "__name__", type(target).__name__),
                          cfg)

    if _func_or_class is not None:
        if not callable(_func_or_class):
            raise TypeError(f"@serve.deployment needs a class or a function, got "
                            f"{type(_func_or_class).__name__}")
        return wrap(_func_or_class)
    return wrap


def as_application(target) -> Application:
    """What ``serve.run``/``serve.deploy`` accept: an Application, a Deployment (bound
    with no arguments), or a plain class, function or callable object (wrapped)."""
    if isinstance(target, Application):
        return target
    if isinstance(target, Deployment):
        return target.bind()
    if inspect.isclass(target) or inspect.isfunction(target):
        return deployment(target).bind()
    if callable(target):
        return deployment(_CallableHolder, name=type(target).__name__).bind(target)
    raise TypeError(f"serve.run needs an application (Deployment.bind(...)), a deployment, "
                    f"a class or a function, got {type(target).__name__}")


class _CallableHolder:
    """Serves a callable object (a model instance, say) given to ``serve.deploy``."""

    def __init__(self, target):
        self._target = target

    async def __call__(self, *args, **kwargs):
        out = self._target(*args, **kwargs)
        if inspect.isawaitable(out):
            out = await out
        return out


@dataclass
class DeploymentSpec:
    """One deployment of an application, as the controller receives it."""

    app_name: str
    name: str
    serialized: bytes  # cloudpickle of (func_or_class, init_args, init_kwargs)
    config: config_mod.DeploymentConfig
    version: str
    is_function: bool
    ingress: bool = False


class HandleMarker:
    """Stands in for a bound deployment among another deployment's constructor arguments;
    the replica turns it into a ``DeploymentHandle``."""

    def __init__(self, deployment_name: str, app_name: str):
        self.deployment_name = deployment_name
        self.app_name = app_name


def flatten(app: Application, app_name: str) -> list[DeploymentSpec]:
    """Every deployment of the graph rooted at ``app``, the ingress last.

    A deployment bound twice with different arguments must be given different
    names (``.options(name=...)``); the same Application object bound in two
    places is one deployment.
    """
    specs: dict[str, DeploymentSpec] = {}
    seen: dict[int, str] = {}

    def visit(node: Application) -> HandleMarker:
        if id(node) in seen:
            return HandleMarker(seen[id(node)], app_name)
        d = node.deployment
        args = tuple(_replace(a, visit) for a in node.args)
        kwargs = {k: _replace(v, visit) for k, v in node.kwargs.items()}
        if d.name in specs:
            raise ValueError(f"application {app_name!r} has two deployments named {d.name!r}; "
                             f"give one another name with .options(name=...)")
        try:
            blob = _dumps((d.func_or_class, args, kwargs))
        except Exception as e:
            raise TypeError(f"deployment {d.name!r} cannot be serialized (its class, function "
                            f"or arguments): {type(e).__name__}: {e}") from e
        version = d.config.version or hashlib.sha1(blob).hexdigest()[:16]
        specs[d.name] = DeploymentSpec(app_name, d.name, blob, d.config, version,
                                       not inspect.isclass(d.func_or_class))
        seen[id(node)] = d.name
        return HandleMarker(d.name, app_name)

    root = visit(app)
    out = [s for n, s in specs.items() if n != root.deployment_name]
    ingress = specs[root.deployment_name]
    ingress.ingress = True
    return out + [ingress]


def _dumps(value) -> bytes:
    try:
        from skate.serve.ingress import dumps
    except ImportError:  # no starlette: nothing of it to pickle either
        return cloudpickle.dumps(value)
    return dumps(value)


def _replace(value, visit):
    if isinstance(value, Application):
        return visit(value)
    if isinstance(value, (list, tuple)):
        items = [_replace(v, visit) for v in value]
        return type(value)(items) if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {k: _replace(v, visit) for k, v in value.items()}
    return value

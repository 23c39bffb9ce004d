"""``serve.status()`` objects, and the config file of ``serve deploy`` (Ray's schema).

A config file (YAML) lists applications::

    http_options: {host: 127.0.0.1, port: 8000}
    applications:
      - name: default
        route_prefix: /
        import_path: my_module:app      # an Application, or a function building one
        args: {}                        # passed to that function
        deployments:                    # per-deployment overrides
          - name: Model
            num_replicas: 2
            user_config: {threshold: 0.5}

``parse_config`` checks every key and names the wrong one.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from dataclasses import dataclass, field

from skate.serve import config as config_mod

APP_KEYS = frozenset({"name", "route_prefix", "import_path", "args", "deployments",
                      "runtime_env"})
TOP_KEYS = frozenset({"http_options", "applications", "proxy_location", "grpc_options",
                      "logging_config"})


@dataclass
class DeploymentStatus:
    name: str
    status: str
    message: str = ""
    replica_states: dict = field(default_factory=dict)
    target_replicas: int = 0


@dataclass
class ApplicationStatus:
    name: str
    status: str
    message: str = ""
    route_prefix: str | None = None
    last_deployed_time_s: float = 0.0
    deployments: dict = field(default_factory=dict)  # name -> DeploymentStatus


@dataclass
class ServeStatus:
    """What ``serve.status()`` returns; ``to_dict()`` is what ``serve status`` prints."""

    applications: dict = field(default_factory=dict)  # name -> ApplicationStatus
    proxy: dict | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "ServeStatus":
        apps = {}
        for name, a in d["applications"].items():
            deps = {n: DeploymentStatus(n, x["status"], x["message"], x["replica_states"],
                                        x["target_replicas"])
                    for n, x in a["deployments"].items()}
            apps[name] = ApplicationStatus(name, a["status"], a["message"], a["route_prefix"],
                                           a["last_deployed_time_s"], deps)
        return cls(apps, d.get("proxy"))

    def to_dict(self) -> dict:
        return {
            "proxy": self.proxy,
            "applications": {
                name: {"status": a.status, "message": a.message,
                       "route_prefix": a.route_prefix,
                       "last_deployed_time_s": round(a.last_deployed_time_s, 3),
                       "deployments": {
                           n: {"status": x.status, "message": x.message,
                               "replica_states": dict(x.replica_states)}
                           for n, x in a.deployments.items()}}
                for name, a in self.applications.items()},
        }


class ConfigError(ValueError):
    """A config file that cannot be deployed; the message names the key or path."""


def parse_config(data, source: str = "config") -> dict:
    """Check a loaded config file; returns it with defaults filled in."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with 'applications', got "
                          f"{type(data).__name__}")
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; valid keys are "
                          f"{', '.join(sorted(TOP_KEYS))}")
    apps = data.get("applications")
    if not isinstance(apps, list) or not apps:
        raise ConfigError(f"{source}: 'applications' must be a non-empty list")
    out, names, prefixes = [], set(), set()
    for i, app in enumerate(apps):
        where = f"{source}: applications[{i}]"
        if not isinstance(app, dict):
            raise ConfigError(f"{where} must be a mapping")
        unknown = sorted(set(app) - APP_KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys are "
                              f"{', '.join(sorted(APP_KEYS))}")
        if not isinstance(app.get("import_path"), str) or ":" not in app["import_path"] \
                and "." not in app["import_path"]:
            raise ConfigError(f"{where}: import_path must be 'module:attribute', got "
                              f"{app.get('import_path')!r}")
        name = app.get("name", "default")
        if name in names:
            raise ConfigError(f"{where}: two applications are named {name!r}")
        names.add(name)
        prefix = app.get("route_prefix", "/")
        if prefix is not None and prefix in prefixes:
            raise ConfigError(f"{where}: route_prefix {prefix!r} is used twice")
        prefixes.add(prefix)
        deps = app.get("deployments", [])
        if not isinstance(deps, list):
            raise ConfigError(f"{where}: deployments must be a list")
        for j, dep in enumerate(deps):
            if not isinstance(dep, dict) or "name" not in dep:
                raise ConfigError(f"{where}.deployments[{j}] must be a mapping with a 'name'")
            bad = sorted(set(dep) - config_mod.DEPLOYMENT_OPTIONS)
            if bad:
                raise ConfigError(f"{where}.deployments[{j}] ({dep['name']}): unknown key(s) "
                                  f"{', '.join(bad)}; valid keys are "
                                  f"{', '.join(sorted(config_mod.DEPLOYMENT_OPTIONS))}")
        args = app.get("args", {})
        if not isinstance(args, dict):
            raise ConfigError(f"{where}: args must be a mapping")
        out.append({"name": name, "route_prefix": prefix, "import_path": app["import_path"],
                    "args": args, "deployments": deps})
    http = data.get("http_options") or {}
    if not isinstance(http, dict):
        raise ConfigError(f"{source}: http_options must be a mapping")
    from skate.serve.api import HTTP_OPTIONS

    bad = sorted(set(http) - HTTP_OPTIONS)
    if bad:
        raise ConfigError(f"{source}: http_options: unknown key(s) {', '.join(bad)}; valid "
                          f"keys are {', '.join(sorted(HTTP_OPTIONS))}")
    return {"http_options": http, "applications": out}


def import_attr(path: str):
    """``module:attribute`` (or ``module.attribute``), importable from the working folder."""
    if ":" in path:
        module, _, attr = path.partition(":")
    else:
        module, _, attr = path.rpartition(".")
    if not module or not attr:
        raise ConfigError(f"import path {path!r} must be 'module:attribute'")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise ConfigError(f"cannot import {path!r}: no module named {e.name!r}") from None
    value = mod
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise ConfigError(f"cannot import {path!r}: module {module!r} has no "
                              f"attribute {attr!r}") from None
    return value


def build_application(app_cfg: dict):
    """The Application of one config entry, with its per-deployment overrides applied."""
    from skate.serve.deployment import as_application

    target = import_attr(app_cfg["import_path"])
    if inspect.isfunction(target):
        target = target(app_cfg["args"])  # an application builder, called as Ray does
    elif app_cfg["args"]:
        raise ConfigError(f"application {app_cfg['name']!r}: args are given but "
                          f"{app_cfg['import_path']!r} is not a function building an app")
    app = as_application(target)
    overrides = {d["name"]: {k: v for k, v in d.items() if k != "name"}
                 for d in app_cfg["deployments"]}
    if overrides:
        found = _apply_overrides(app, overrides, set())
        missing = sorted(set(overrides) - found)
        if missing:
            raise ConfigError(f"application {app_cfg['name']!r}: no deployment named "
                              f"{', '.join(missing)}")
    return app


def _apply_overrides(app, overrides: dict, found: set) -> set:
    from skate.serve.deployment import Application

    d = app.deployment
    if d.name in overrides:
        app.deployment = d.options(**overrides[d.name])
        found.add(d.name)
    for v in list(app.args) + list(app.kwargs.values()):
        if isinstance(v, Application):
            _apply_overrides(v, overrides, found)
    return found

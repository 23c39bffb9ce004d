"""The ``serve`` command: Ray Serve's command line, over ``skate.serve``.

    serve run module:app [key=value ...] [--name NAME] [--route-prefix /x]
              [--host 127.0.0.1] [--port 8000] [--address ADDR]
    serve run config.yaml [--host H] [--port P] [--address ADDR]
    serve deploy config.yaml [--address ADDR]
    serve status [--address ADDR]
    serve shutdown [--address ADDR] [-y]

``serve run`` serves in the foreground: it starts Skate (a private cluster, or
joins ``--address`` / SKATE_ADDRESS / RAY_ADDRESS), deploys, prints where, and
stops everything on Ctrl-C or SIGTERM. ``serve deploy`` puts a config file's
applications on a cluster started with ``skate start --head`` and exits while
they keep running (the serve controller is a detached actor); ``status`` and
``shutdown`` then look at and stop them.

``module:app`` names an Application (``Deployment.bind(...)``), a Deployment,
or a builder function that takes a dict (the ``key=value`` arguments, or a
config entry's ``args``) and returns either.

A user's mistake (a bad import path, a missing or malformed config file, an
unknown key, a bad option) prints one line ``serve: error: ...`` to stderr and
exits 2; a failure at run time (no cluster to join, a deploy that failed) exits
1. Neither prints a traceback.
"""

from __future__ import annotations

import argparse
import inspect
import os
import signal
import sys

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000


class UsageError(Exception):
    """The command line or a file it names is wrong: exit 2."""


class Failure(Exception):
    """The command was well formed but did not succeed: exit 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block: what is wrong and where to look
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# -- what to deploy ------------------------------------------------------------------------------
def _is_config_path(target: str) -> bool:
    return target.endswith((".yaml", ".yml")) or os.path.isfile(target)


def load_config(path: str) -> dict:
    """Read and check a config file; every problem is a ``UsageError`` naming the file."""
    try:
        import yaml
    except ImportError:
        raise UsageError("reading a config file needs PyYAML: pip install pyyaml") from None
    from skate.serve import schema
    from skate.serve.api import HTTP_OPTIONS

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise UsageError(f"no such config file: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path}: {e}") from None
    except yaml.YAMLError as e:
        from skate.scripts.yaml_errors import describe

        raise UsageError(describe(path, e)) from None
    if data is None:
        raise UsageError(f"{path}: the file is empty; it must list 'applications'")
    try:
        cfg = schema.parse_config(data, source=path)
    except schema.ConfigError as e:
        raise UsageError(str(e)) from None
    http = cfg["http_options"]
    if not isinstance(http, dict):
        raise UsageError(f"{path}: http_options must be a mapping")
    unknown = sorted(set(http) - HTTP_OPTIONS)
    if unknown:
        raise UsageError(f"{path}: http_options: unknown key(s) {', '.join(unknown)}; valid "
                         f"keys are {', '.join(sorted(HTTP_OPTIONS))}")
    return cfg


def build_config_apps(cfg: dict, path: str) -> list:
    """(name, route_prefix, Application) of every application of a checked config."""
    from skate.serve import schema

    apps = []
    for app_cfg in cfg["applications"]:
        _check_import_path(app_cfg["import_path"])
        try:
            app = schema.build_application(app_cfg)
        except (ValueError, TypeError) as e:  # ConfigError, and bad per-deployment options
            raise UsageError(f"{path}: application {app_cfg['name']!r}: {e}") from None
        except Exception as e:  # noqa: BLE001 - the user's module failed to import or build
            raise Failure(f"{path}: application {app_cfg['name']!r}: {_describe(e)}") from None
        _ship_by_value(app_cfg["import_path"])
        apps.append((app_cfg["name"], app_cfg["route_prefix"], app))
    return apps


def build_import_path_app(path: str, args: dict):
    """The Application ``path`` names: one, a Deployment (bound), or a builder's result."""
    from skate.serve import schema
    from skate.serve.deployment import Application, Deployment

    _check_import_path(path)
    try:
        target = schema.import_attr(path)
    except schema.ConfigError as e:
        raise UsageError(str(e)) from None
    except Exception as e:  # noqa: BLE001 - the user's module raised while importing
        raise Failure(f"importing {path!r} failed: {_describe(e)}") from None
    if isinstance(target, (Application, Deployment)):
        if args:
            raise UsageError(f"{path!r} is an application, not a builder function; "
                             f"arguments ({', '.join(args)}) can only be given to a builder")
        app = target if isinstance(target, Application) else target.bind()
    elif inspect.isfunction(target):
        try:
            app = target(args)
        except Exception as e:  # noqa: BLE001 - the user's builder failed
            raise Failure(f"the application builder {path!r} failed: {_describe(e)}") from None
        if isinstance(app, Deployment):
            app = app.bind()
        if not isinstance(app, Application):
            raise UsageError(f"the application builder {path!r} returned "
                             f"{type(app).__name__}; it must return an Application "
                             f"(Deployment.bind(...))")
    else:
        raise UsageError(f"{path!r} is of type {type(target).__name__}; it must name an "
                         f"Application (Deployment.bind(...)), a Deployment or a builder "
                         f"function")
    _ship_by_value(path)
    return app


def _check_import_path(path: str) -> None:
    module, sep, attr = path.partition(":") if ":" in path else path.rpartition(".")
    if not module or not sep or not attr:
        raise UsageError(f"import path {path!r} must be 'module:attribute' (or "
                         f"'module.attribute'), e.g. 'my_app:app'")


def _ship_by_value(path: str) -> None:
    """Pickle the user's module by value when it lives under the working folder: the
    replicas' workers then need not find it on their own path (a cluster started in
    another folder, say), as Ray's working_dir arranges."""
    from skate import cloudpickle

    name = path.partition(":")[0] if ":" in path else path.rpartition(".")[0]
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    if file and os.path.abspath(file).startswith(os.path.join(os.getcwd(), "")):
        cloudpickle.register_pickle_by_value(module)


def _describe(e: BaseException) -> str:
    if isinstance(e, SyntaxError):
        return f"SyntaxError: {e.msg} ({e.filename}, line {e.lineno})"
    return f"{type(e).__name__}: {e}"


def _app_args(pairs: list) -> dict:
    args = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"application arguments are key=value, got {pair!r}")
        args[key] = value
    return args


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, got {port}")
    return port


def _route_prefix(text: str) -> str:
    from skate.serve.api import _check_route_prefix

    try:
        _check_route_prefix(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


# -- talking to the cluster ----------------------------------------------------------------------
def _connect(address: str | None, log_to_driver: bool = False) -> str:
    """Join the running cluster (``--address``, else SKATE_ADDRESS/RAY_ADDRESS, else the
    head this machine started); returns the address used."""
    import skate
    from skate.core.config import address_from_env

    if address is None:
        env = address_from_env()
        address = env if env not in (None, "local") else "auto"
    if address == "local":
        raise UsageError("this command needs a running cluster; --address local would start "
                         "one that stops when the command exits")
    try:
        skate.init(address=address, log_to_driver=log_to_driver)
    except ConnectionError as e:
        if address == "auto":
            raise Failure("no Skate cluster is running on this machine; start one with "
                          "`skate start --head`, or pass --address HOST:PORT") from None
        raise Failure(str(e)) from None
    except ValueError as e:
        raise Failure(f"cannot join the cluster at {address!r}: {e}") from None
    return address


def _url(name: str, route_prefix: str | None) -> str:
    from skate import serve

    if route_prefix is None:
        return f"application {name!r} is running (no HTTP route; reach it by handle)"
    proxy = serve.status().proxy or {}
    return (f"application {name!r} at http://{proxy.get('host', '?')}:"
            f"{proxy.get('port', '?')}{route_prefix}")


def _deploy_all(apps: list, http_options: dict) -> list:
    """serve.start + serve.run of each app; returns one line per app."""
    from skate import serve

    try:
        serve.start(http_options=http_options)
    except ValueError as e:  # a bad http_options value
        raise UsageError(str(e)) from None
    except Exception as e:  # noqa: BLE001 - the proxy could not start (port in use, ...)
        raise Failure(f"starting serve failed: {_describe(e)}") from None
    proxy = serve.status().proxy or {}
    want = http_options.get("port")
    if want and proxy.get("port") not in (None, want):
        print(f"serve: note: serve is already running on port {proxy.get('port')}; the "
              f"requested http_options are not applied", file=sys.stderr, flush=True)
    lines = []
    for name, prefix, app in apps:
        try:
            serve.run(app, name=name, route_prefix=prefix)
        except (ValueError, TypeError) as e:  # a route prefix in use, a replica too big, ...
            raise Failure(f"deploying application {name!r} failed: {e}") from None
        except RuntimeError as e:  # a constructor that keeps failing: serve.run names it
            raise Failure(str(e)) from None
        except Exception as e:  # noqa: BLE001 - a timeout, a lost cluster, ...
            raise Failure(f"deploying application {name!r} failed: {_describe(e)}") from None
        lines.append(_url(name, prefix))
    return lines


# -- the commands --------------------------------------------------------------------------------
def _run(args) -> int:
    import skate
    from skate import serve

    cli_http = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if _is_config_path(args.target):
        if args.name is not None or args.route_prefix is not None or args.app_args:
            raise UsageError("--name, --route-prefix and key=value arguments go with an import "
                             "path; a config file names its applications itself")
        cfg = load_config(args.target)
        apps = build_config_apps(cfg, args.target)
        http = {**cfg["http_options"], **cli_http}
    else:
        app = build_import_path_app(args.target, _app_args(args.app_args))
        route_prefix = "/" if args.route_prefix is None else args.route_prefix
        apps = [(args.name or "default", route_prefix, app)]
        http = {"host": DEFAULT_HOST, "port": DEFAULT_PORT, **cli_http}

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            skate.init(address=args.address)
        except (ConnectionError, ValueError) as e:
            raise Failure(str(e)) from None
        for line in _deploy_all(apps, http):
            print(f"Serving {line} (Ctrl-C to stop).", flush=True)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        # a second signal while stopping ends the process at once (its cluster follows it)
        for s in previous:
            signal.signal(s, signal.SIG_DFL)
        try:
            if skate.is_initialized():
                serve.shutdown()
        finally:
            skate.shutdown()
    print("Stopped.", flush=True)
    return 0


def _deploy(args) -> int:
    import skate

    cfg = load_config(args.config)
    apps = build_config_apps(cfg, args.config)
    _connect(args.address)
    try:
        for line in _deploy_all(apps, cfg["http_options"]):
            print(f"Deployed {line}.", flush=True)
    finally:
        skate.shutdown()
    return 0


def _status(args) -> int:
    import yaml

    import skate
    from skate import serve

    _connect(args.address)
    try:
        print(yaml.safe_dump(serve.status().to_dict(), sort_keys=False), end="", flush=True)
    finally:
        skate.shutdown()
    return 0


def _shutdown(args) -> int:
    import skate
    from skate import serve

    if not args.yes:
        try:
            answer = input("This shuts down Serve on the cluster: every application on it "
                           "stops. Continue? [y/N] ")
        except EOFError:
            print()
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("Aborted.", file=sys.stderr)
            return 1
    _connect(args.address)
    try:
        st = serve.status()
        running = bool(st.applications) or st.proxy is not None
        serve.shutdown()
    finally:
        skate.shutdown()
    print("Shut down Serve." if running else "Serve was not running on this cluster.")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="serve", description="Deploy and manage Serve applications on Skate.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    address = "cluster to use: HOST:PORT, or 'auto' for the head `skate start --head` started"

    r = sub.add_parser("run", help="serve an application in the foreground (Ctrl-C stops it)",
                       description="Serve module:app, or every application of a config file, "
                                   "until Ctrl-C or SIGTERM.")
    r.add_argument("target", help="module:app, or a config file (.yaml)")
    r.add_argument("app_args", nargs="*", default=[], metavar="key=value",
                   help="arguments for an application builder function")
    r.add_argument("--name", default=None, help="application name (default: 'default')")
    r.add_argument("--route-prefix", type=_route_prefix, default=None,
                   help="HTTP route prefix (default: /)")
    r.add_argument("--host", default=None, help=f"HTTP host (default: {DEFAULT_HOST})")
    r.add_argument("--port", type=_port, default=None,
                   help=f"HTTP port (default: {DEFAULT_PORT}; 0 picks a free one)")
    r.add_argument("--address", default=None,
                   help="join this cluster (default: SKATE_ADDRESS / RAY_ADDRESS, else start "
                        "a private one)")

    d = sub.add_parser("deploy", help="deploy a config file's applications onto the cluster",
                       description="Deploy every application of a config file onto the running "
                                   "cluster; they keep running after this command exits.")
    d.add_argument("config", help="config file (.yaml)")
    d.add_argument("--address", default=None, help=address)

    s = sub.add_parser("status", help="applications and proxy of the cluster's Serve, as YAML")
    s.add_argument("--address", default=None, help=address)

    x = sub.add_parser("shutdown", help="stop every application and Serve itself")
    x.add_argument("--address", default=None, help=address)
    x.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    handlers = {"run": _run, "deploy": _deploy, "status": _status, "shutdown": _shutdown}
    try:
        p = _parser()
        args, rest = p.parse_known_args(argv)
        if args.command == "run":  # key=value arguments may come after options too
            args.app_args += [r for r in rest if "=" in r and not r.startswith("-")]
            rest = [r for r in rest if r not in args.app_args]
        if rest:
            raise UsageError(f"unrecognized arguments: {' '.join(rest)} (see `serve "
                             f"{args.command or ''} --help`)".replace("serve  ", "serve "))
        if args.command is None:
            p.print_help()
            return 2
        return handlers[args.command](args)
    except UsageError as e:
        print(f"serve: error: {e}", file=sys.stderr)
        return 2
    except Failure as e:
        print(f"serve: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("serve: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - one line, never a traceback
        print(f"serve: error: {_describe(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

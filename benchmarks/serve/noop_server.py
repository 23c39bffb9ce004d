"""Server side of the serve benchmarks: a no-op HTTP app on 127.0.0.1:PORT.

``--backend skate|ray`` serves the same no-op deployment through Skate serve (``import
skate as ray; from skate import serve``) or Ray Serve (``import ray; from ray import
serve``; run it with the Ray virtualenv's python)::

    @serve.deployment(num_replicas=N, max_ongoing_requests=M)
    class Noop:
        async def __call__(self, request):
            return "ok"

``--backend uvicorn`` is the baseline: a bare Starlette app returning
``PlainTextResponse("ok")`` on ``GET /``, one uvicorn worker (loop/http "auto": uvloop
and httptools when installed), no access log.

The script prints ``READY {json settings}`` once ``serve.run`` has returned (for
uvicorn: at application startup), then blocks until SIGINT/SIGTERM and shuts down
(``serve.shutdown()``, then ``shutdown()``).  With ``--startup`` it instead times the
phases (import, ``init()``, ``serve.start``, ``serve.run``, first HTTP 200 on GET /),
prints ``TIMING {json}``, shuts down (timed too) and exits.  ``torch_server.py``
reuses ``serve_main`` with its own app.  Usage::

    python benchmarks/serve/noop_server.py --backend skate --replicas 2 --port 8000
    /work/ray-venv/bin/python benchmarks/serve/noop_server.py --backend ray --port 8000
    python benchmarks/serve/noop_server.py --backend uvicorn --port 8000
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import signal
import sys
import threading
import time
import urllib.error
import urllib.request


def base_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--backend", choices=["skate", "ray", "uvicorn"], required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--max-ongoing", type=int, default=100, help="max_ongoing_requests")
    p.add_argument("--num-cpus", type=int, default=None,
                   help="init(num_cpus=...); default max(2, cpu count, replicas)")
    p.add_argument("--startup", action="store_true",
                   help="time the start-up phases, print TIMING {json}, shut down, exit")
    return p


def _emit(tag: str, obj: dict) -> None:
    print(f"{tag} {json.dumps(obj)}", flush=True)


def _first_200(port: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"GET / did not answer 200 within {timeout} s")
        time.sleep(0.01)


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass


def serve_main(args: argparse.Namespace, make_app, extra: dict | None = None) -> None:
    """init(), serve.start/serve.run make_app(serve), READY, block, shut down."""
    t0 = time.perf_counter()
    if args.backend == "ray":
        import ray
        from ray import serve
    else:
        import skate as ray
        from skate import serve
    t1 = time.perf_counter()
    num_cpus = args.num_cpus or max(2, os.cpu_count() or 1, args.replicas)
    init_kwargs = dict(include_dashboard=False, _node_ip_address="127.0.0.1", num_cpus=num_cpus)
    ray.init(**init_kwargs)
    t2 = time.perf_counter()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": args.port})
        t3 = time.perf_counter()
        serve.run(make_app(serve), route_prefix="/")
        t4 = time.perf_counter()
        settings = dict(backend=args.backend, version=getattr(ray, "__version__", "?"),
                        python=platform.python_version(), replicas=args.replicas,
                        max_ongoing_requests=args.max_ongoing, init_kwargs=dict(init_kwargs),
                        **(extra or {}))
        _emit("READY", settings)
        if args.startup:
            _first_200(args.port)
            t5 = time.perf_counter()
            _emit("TIMING", dict(import_s=t1 - t0, init_s=t2 - t1, serve_start_s=t3 - t2,
                                 serve_run_s=t4 - t3, first_200_s=t5 - t4, total_s=t5 - t1))
        else:
            _wait_for_signal()
    finally:
        t6 = time.perf_counter()
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
        if args.startup:
            _emit("SHUTDOWN", dict(shutdown_s=time.perf_counter() - t6))


def noop_app(args: argparse.Namespace):
    def make(serve):
        @serve.deployment(num_replicas=args.replicas, max_ongoing_requests=args.max_ongoing)
        class Noop:
            async def __call__(self, request):
                return "ok"

        return Noop.bind()

    return make


def uvicorn_main(args: argparse.Namespace) -> None:
    import starlette
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    have = {m: importlib.util.find_spec(m) is not None for m in ("uvloop", "httptools")}
    settings = dict(backend="uvicorn", version=uvicorn.__version__,
                    starlette=starlette.__version__, python=platform.python_version(),
                    workers=1, loop="uvloop" if have["uvloop"] else "asyncio",
                    http="httptools" if have["httptools"] else "h11", access_log=False)

    async def ok(request):
        return PlainTextResponse("ok")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        _emit("READY", settings)
        yield

    app = Starlette(routes=[Route("/", ok)], lifespan=lifespan)
    uvicorn.run(app, host="127.0.0.1", port=args.port, workers=1, log_level="warning",
                access_log=False)


def main() -> None:
    args = base_parser(__doc__.splitlines()[0]).parse_args()
    if args.backend == "uvicorn":
        if args.startup:
            sys.exit("--startup is for --backend skate|ray")
        uvicorn_main(args)
    else:
        serve_main(args, noop_app(args))


if __name__ == "__main__":
    main()

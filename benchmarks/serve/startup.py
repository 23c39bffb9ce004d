"""Start-up time of a serve app: Skate serve vs Ray Serve.

Each repetition runs ``noop_server.py --startup --replicas 2`` in a fresh Python
subprocess (Skate: this interpreter; Ray: ``--ray-python``), which times, with
``time.perf_counter``:

* ``import_s``: ``import ray; from ray import serve`` (or ``import skate as ray; from
  skate import serve``), reported but not in the total;
* ``init_s``: ``init(include_dashboard=False, _node_ip_address="127.0.0.1", num_cpus=...)``;
* ``serve_start_s``: ``serve.start(http_options={"host": "127.0.0.1", "port": P})``;
* ``serve_run_s``: ``serve.run(Noop.bind(), route_prefix="/")`` of a 2-replica no-op
  deployment, until it returns;
* ``first_200_s``: from then until a first ``GET /`` answers 200 (polled every 10 ms);
* ``total_s``: init + serve.start + serve.run + first 200;
* ``shutdown_s``: ``serve.shutdown()`` + ``shutdown()`` afterwards.

Reported: the median of ``--repeat`` runs (default 3) per phase and backend, and the
skate / ray ratio.  After each run the harness makes sure the subprocess and
everything it started are gone.  Usage::

    python benchmarks/serve/startup.py
    python benchmarks/serve/startup.py --backends ray --repeat 3 --json /tmp/startup.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from _harness import DEFAULT_RAY_PYTHON, Server, fmt, free_port

PHASES = ("import_s", "init_s", "serve_start_s", "serve_run_s", "first_200_s", "total_s",
          "shutdown_s")


def one_run(backend: str, args) -> dict:
    python = args.ray_python if backend == "ray" else sys.executable
    srv_args = ["--backend", backend, "--port", free_port(), "--replicas", args.replicas,
                "--max-ongoing", args.max_ongoing, "--startup"]
    if args.num_cpus:
        srv_args += ["--num-cpus", args.num_cpus]
    srv = Server(python, "noop_server.py", srv_args, name=f"{backend} startup")
    try:
        srv.start()
        ready = json.loads(srv.wait_line("READY ", args.timeout))
        timing = json.loads(srv.wait_line("TIMING ", args.timeout))
        timing.update(json.loads(srv.wait_line("SHUTDOWN ", args.timeout)))
        timing["settings"] = ready
        return timing
    finally:
        srv.stop(wait_exit=30.0)
        if srv.leftovers:
            print(f"# warning: {srv.leftovers} process(es) survived", file=sys.stderr)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="skate,ray", help="comma-separated: skate,ray")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--max-ongoing", type=int, default=100)
    p.add_argument("--num-cpus", type=int, default=None)
    p.add_argument("--ray-python", default=DEFAULT_RAY_PYTHON)
    p.add_argument("--timeout", type=float, default=300.0, help="per phase, seconds")
    p.add_argument("--json", metavar="OUT", help="write the raw runs here")
    args = p.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if set(backends) - {"skate", "ray"}:
        p.error("--backends takes skate and/or ray")

    runs: dict[str, list[dict]] = {}
    errors: dict[str, str] = {}
    for backend in backends:
        runs[backend] = []
        for i in range(args.repeat):
            try:
                r = one_run(backend, args)
            except Exception as e:  # noqa: BLE001  - report and go on with the other backend
                errors[backend] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
                print(f"# {backend} run {i + 1} FAILED: {e}", file=sys.stderr, flush=True)
                break
            runs[backend].append(r)
            print(f"# {backend} run {i + 1}: " + ", ".join(
                f"{k}={r[k]:.3f}" for k in PHASES), file=sys.stderr, flush=True)

    med = {b: {k: statistics.median(r[k] for r in rs) for k in PHASES}
           for b, rs in runs.items() if rs}
    cols = [b for b in backends if b in med]
    both = "skate" in med and "ray" in med
    head = "| phase (median s) | " + " | ".join(cols) + (" | skate / ray |" if both else " |")
    print(head)
    print("|---|" + "---:|" * (len(cols) + both))
    for k in PHASES:
        cells = [fmt(med[b][k], 3) for b in cols]
        if both:
            cells.append(fmt(med["skate"][k] / med["ray"][k], 2) if med["ray"][k] else "-")
        print(f"| {k} | " + " | ".join(cells) + " |")
    print()
    for b in cols:
        s = runs[b][0]["settings"]
        print(f"- {b}: {len(runs[b])} run(s), replicas={args.replicas}, " + ", ".join(
            f"{k}={v}" for k, v in s.items() if k not in ("backend", "replicas")))
    for b, e in errors.items():
        print(f"- {b}: FAILED: {e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(args=vars(args), runs=runs, median=med, errors=errors), f, indent=2)


if __name__ == "__main__":
    main()

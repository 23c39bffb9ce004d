"""HTTP overhead of a no-op serve deployment: Skate serve vs Ray Serve vs bare uvicorn.

For each server in {uvicorn, skate, ray} x replicas {1, 2} (uvicorn: one worker only)
x concurrency {1, 32}, measured with wrk (closed loop, keep-alive HTTP/1.1, one wrk
thread): requests/s and the 50th / 99th latency percentiles of ``GET /`` answering
"ok".  The servers are ``noop_server.py``: a bare Starlette app under one uvicorn
worker (the floor: what an ASGI server costs with no serving layer), and the same
no-op ``@serve.deployment`` under Skate serve and under Ray Serve (default
``max_ongoing_requests=100``, ``init(include_dashboard=False,
_node_ip_address="127.0.0.1", num_cpus=...)``).

Each server runs in its own subprocess (its own session) on a free port of 127.0.0.1:
the harness waits for ``READY`` and a 200 on ``GET /``, warms up with wrk for
``--warmup`` s at each concurrency, measures for ``--duration`` s, and stops the server
in ``finally`` (SIGINT -> ``serve.shutdown()`` and ``shutdown()``; then SIGTERM/SIGKILL
of its process group and of any process it started).  wrk shares the machine with the
server, so on a small machine the c=32 figures include that contention.

The table's ratio columns compare each row with uvicorn at the same concurrency
(rps ratio, p50 overhead in ms) and, for Skate rows, with Ray at the same replicas and
concurrency.  Usage::

    python benchmarks/serve/http_overhead.py                        # all, 5 s per row
    python benchmarks/serve/http_overhead.py --servers uvicorn,ray --duration 3
    python benchmarks/serve/http_overhead.py --ray-python /path/ray-venv/bin/python \\
        --json /tmp/serve_overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

from _harness import DEFAULT_RAY_PYTHON, Server, fmt, free_port, run_wrk

SERVERS = ("uvicorn", "skate", "ray")


def measure_server(server: str, replicas: int, args) -> list[dict]:
    python = args.ray_python if server == "ray" else (
        args.uvicorn_python if server == "uvicorn" else sys.executable)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    srv_args = ["--backend", server, "--port", port, "--replicas", replicas,
                "--max-ongoing", args.max_ongoing]
    if args.num_cpus:
        srv_args += ["--num-cpus", args.num_cpus]
    srv = Server(python, "noop_server.py", srv_args, name=f"{server} x{replicas}")
    rows = []
    try:
        srv.start()
        t0 = time.monotonic()
        info = srv.wait_ready(url, timeout=args.start_timeout)
        print(f"# {server} replicas={replicas} ready in {time.monotonic() - t0:.1f} s: "
              f"{json.dumps(info)}", file=sys.stderr, flush=True)
        for conc in args.concurrency:
            if args.warmup:
                run_wrk(url, conc, args.warmup, threads=args.wrk_threads)
            res = run_wrk(url, conc, args.duration, threads=args.wrk_threads)
            row = dict(server=server, replicas=replicas, concurrency=conc, **res, settings=info)
            print(f"# {server} r={replicas} c={conc}: {res['rps']:.0f} rps, "
                  f"p50 {res['p50_ms']:.3f} ms, p99 {res['p99_ms']:.3f} ms"
                  + (f", {res['non_2xx']} non-2xx" if res["non_2xx"] else "")
                  + (f", {res['socket_errors']} socket errors" if res["socket_errors"] else ""),
                  file=sys.stderr, flush=True)
            rows.append(row)
    except Exception as e:  # noqa: BLE001  - one server failing must not stop the others
        print(f"# {server} replicas={replicas} FAILED: {e}", file=sys.stderr, flush=True)
        rows.append(dict(server=server, replicas=replicas, concurrency=None,
                         error=f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"))
    finally:
        t0 = time.monotonic()
        srv.stop()
        print(f"# {server} replicas={replicas} stopped by {srv.stopped_by} in "
              f"{time.monotonic() - t0:.1f} s, {srv.leftovers} process(es) left",
              file=sys.stderr, flush=True)
    return rows


def add_ratios(rows: list[dict]) -> None:
    ok = [r for r in rows if "error" not in r]
    base = {r["concurrency"]: r for r in ok if r["server"] == "uvicorn"}
    ray = {(r["replicas"], r["concurrency"]): r for r in ok if r["server"] == "ray"}
    for r in ok:
        b = base.get(r["concurrency"])
        if b and r["server"] != "uvicorn":
            r["rps_vs_uvicorn"] = r["rps"] / b["rps"]
            r["p50_over_uvicorn_ms"] = r["p50_ms"] - b["p50_ms"]
        y = ray.get((r["replicas"], r["concurrency"]))
        if y and r["server"] == "skate":
            r["rps_vs_ray"] = r["rps"] / y["rps"]


def markdown(rows: list[dict]) -> str:
    out = ["| server | replicas | concurrency | rps | p50 ms | p99 ms | rps / uvicorn "
           "| p50 over uvicorn ms | skate / ray rps |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['server']} | {r['replicas']} | - | failed: {r['error'][:80]} "
                       "| | | | | |")
            continue
        ratio = r.get("rps_vs_uvicorn")
        over = r.get("p50_over_uvicorn_ms")
        vs_ray = r.get("rps_vs_ray")
        out.append(f"| {r['server']} | {r['replicas']} | {r['concurrency']} | {r['rps']:,.0f} "
                   f"| {fmt(r['p50_ms'], 3)} | {fmt(r['p99_ms'], 3)} "
                   f"| {fmt(ratio, 3)} | {'-' if over is None else f'{over:+.3f}'} "
                   f"| {fmt(vs_ray, 2)} |")
    return "\n".join(out)


def settings_lines(rows: list[dict], args) -> list[str]:
    seen, lines = set(), []
    for r in rows:
        s = r.get("settings")
        if s and r["server"] not in seen:
            seen.add(r["server"])
            lines.append(f"- {r['server']}: " + ", ".join(
                f"{k}={v}" for k, v in s.items() if k not in ("backend", "replicas")))
    lines.append(f"- wrk: -t{args.wrk_threads} -c{{{','.join(map(str, args.concurrency))}}} "
                 f"-d{args.duration}s --latency, warm-up {args.warmup} s per row, "
                 f"keep-alive HTTP/1.1 GET /; host: {platform.node()}, "
                 f"{os.cpu_count()} CPUs")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--servers", default=",".join(SERVERS),
                   help="comma-separated subset of uvicorn,skate,ray")
    p.add_argument("--replicas", default="1,2", help="replica counts for skate/ray")
    p.add_argument("--concurrency", default="1,32", help="wrk connection counts")
    p.add_argument("--duration", type=int, default=5, help="measured seconds per row")
    p.add_argument("--warmup", type=int, default=1, help="warm-up seconds per row (0: none)")
    p.add_argument("--max-ongoing", type=int, default=100, help="max_ongoing_requests")
    p.add_argument("--num-cpus", type=int, default=None, help="init(num_cpus=...)")
    p.add_argument("--wrk-threads", type=int, default=1)
    p.add_argument("--ray-python", default=DEFAULT_RAY_PYTHON)
    p.add_argument("--uvicorn-python", default=sys.executable,
                   help="python for the uvicorn baseline (uvloop/httptools used if installed)")
    p.add_argument("--start-timeout", type=float, default=300.0)
    p.add_argument("--json", metavar="OUT", help="write the raw results here")
    args = p.parse_args()
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    bad = set(servers) - set(SERVERS)
    if bad:
        p.error(f"unknown server(s): {', '.join(sorted(bad))}")
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    replicas = [int(r) for r in args.replicas.split(",")]

    rows: list[dict] = []
    for server in servers:
        for n in ([1] if server == "uvicorn" else replicas):
            rows.extend(measure_server(server, n, args))
    add_ratios(rows)
    print(markdown(rows))
    print()
    print("\n".join(settings_lines(rows, args)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(args=vars(args), results=rows), f,
                      indent=2)
        print(f"\nraw results: {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""Gain from @serve.batch on a small torch MLP: batched vs unbatched deployment.

Runs ``torch_server.py`` (a 64-256-256-10 MLP, ``torch.set_num_threads(1)``, one
replica by default; ``--hidden`` widens it) in ``--mode unbatched`` (the model runs on
each request's one row) and ``--mode batched`` (``@serve.batch(max_batch_size=32,
batch_wait_timeout_s=0.005)`` on an async method taking the list of rows), each in its
own subprocess, and loads it with wrk at ``--concurrency`` 32 (closed loop, keep-alive
HTTP/1.1) POSTing ``{"x": [64 floats]}`` (``post_x.lua``).  Reported per backend and
mode: requests/s, p50 / p99 latency, the mean batch size the replica saw during the
measurement, batched / unbatched requests/s, and (for scale) the model's own time per
1-row and per 32-row forward pass in this process.  Before measuring, one POST must
answer a class in 0..9.  Skate by default; ``--backends skate,ray`` adds Ray Serve
(needs torch in the Ray virtualenv).  Usage::

    python benchmarks/serve/torch_batching.py
    python benchmarks/serve/torch_batching.py --backends skate,ray --duration 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request

from _harness import DEFAULT_RAY_PYTHON, HERE, Server, fmt, free_port, run_wrk, wait_http
from torch_server import build_model

LUA = os.path.join(HERE, "post_x.lua")
MODES = ("unbatched", "batched")


def counters(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def model_alone(hidden: int, batch: int) -> dict:
    """ms per forward pass of 1 row and of `batch` rows, here, one torch thread."""
    try:
        import torch
    except ImportError:
        return {}
    torch.set_num_threads(1)
    model, out = build_model(hidden), {}
    with torch.inference_mode():
        for n in (1, batch):
            x = torch.randn(n, 64)
            for _ in range(20):
                model(x)
            t0, k = time.perf_counter(), 0
            while time.perf_counter() - t0 < 0.5:
                model(x)
                k += 1
            out[n] = (time.perf_counter() - t0) / k * 1e3
    return out


def measure(backend: str, mode: str, args) -> dict:
    python = args.ray_python if backend == "ray" else sys.executable
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    srv_args = ["--backend", backend, "--port", port, "--mode", mode, "--replicas",
                args.replicas, "--max-ongoing", args.max_ongoing,
                "--hidden", args.hidden, "--max-batch-size", args.max_batch_size,
                "--batch-wait-timeout", args.batch_wait_timeout]
    if args.num_cpus:
        srv_args += ["--num-cpus", args.num_cpus]
    srv = Server(python, "torch_server.py", srv_args, name=f"{backend} {mode}")
    try:
        srv.start()
        info = srv.wait_ready(url, timeout=args.start_timeout)
        body = json.dumps({"x": [0.01 * i for i in range(64)]}).encode()
        k = json.loads(wait_http(url, timeout=60, body=body))["class"]
        if not (isinstance(k, int) and 0 <= k < 10):
            raise RuntimeError(f"unexpected answer to POST: {k!r}")
        if args.warmup:
            run_wrk(url, args.concurrency, args.warmup, script=LUA)
        before = counters(url)
        res = run_wrk(url, args.concurrency, args.duration, threads=args.wrk_threads,
                      script=LUA)
        after = counters(url)
        batches = after["batches"] - before["batches"]
        res["mean_batch"] = (after["rows"] - before["rows"]) / batches if batches else None
        print(f"# {backend} {mode}: {res['rps']:.0f} rps, p50 {res['p50_ms']:.2f} ms, "
              f"p99 {res['p99_ms']:.2f} ms, mean batch {fmt(res['mean_batch'])}"
              + (f", {res['non_2xx']} non-2xx" if res["non_2xx"] else "")
              + (f", {res['socket_errors']} socket errors" if res["socket_errors"] else ""),
              file=sys.stderr, flush=True)
        return dict(backend=backend, mode=mode, concurrency=args.concurrency, **res,
                    settings=info)
    except Exception as e:  # noqa: BLE001  - report it, go on with the next one
        print(f"# {backend} {mode} FAILED: {e}", file=sys.stderr, flush=True)
        return dict(backend=backend, mode=mode,
                    error=f"{type(e).__name__}: {str(e).splitlines()[0][:300]}")
    finally:
        srv.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="skate", help="comma-separated: skate,ray")
    p.add_argument("--duration", type=int, default=5, help="measured seconds per run")
    p.add_argument("--warmup", type=int, default=1, help="warm-up seconds (0: none)")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--wrk-threads", type=int, default=1)
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--max-ongoing", type=int, default=100, help="max_ongoing_requests")
    p.add_argument("--hidden", type=int, default=256, help="MLP hidden width")
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--batch-wait-timeout", type=float, default=0.005)
    p.add_argument("--num-cpus", type=int, default=None)
    p.add_argument("--ray-python", default=DEFAULT_RAY_PYTHON)
    p.add_argument("--start-timeout", type=float, default=300.0)
    p.add_argument("--json", metavar="OUT", help="write the raw results here")
    args = p.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if set(backends) - {"skate", "ray"}:
        p.error("--backends takes skate and/or ray")

    alone = model_alone(args.hidden, args.max_batch_size)
    rows = [measure(b, m, args) for b in backends for m in MODES]
    print("| backend | mode | rps | p50 ms | p99 ms | mean batch | batched / unbatched rps |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['backend']} | {r['mode']} | failed: {r['error'][:80]} | | | | |")
            continue
        gain = "-"
        base = next((u for u in rows if u["backend"] == r["backend"]
                     and u["mode"] == "unbatched" and "error" not in u), None)
        if r["mode"] == "batched" and base:
            gain = f"{r['rps'] / base['rps']:.2f}x"
        print(f"| {r['backend']} | {r['mode']} | {r['rps']:,.0f} | {fmt(r['p50_ms'])} "
              f"| {fmt(r['p99_ms'])} | {fmt(r['mean_batch'])} | {gain} |")
    print(f"\nwrk -t{args.wrk_threads} -c{args.concurrency} -d{args.duration}s --latency "
          f"-s post_x.lua; replicas={args.replicas}, max_ongoing_requests={args.max_ongoing}, "
          f"@serve.batch(max_batch_size={args.max_batch_size}, "
          f"batch_wait_timeout_s={args.batch_wait_timeout}); "
          f"MLP 64-{args.hidden}-{args.hidden}-10; {os.cpu_count()} CPUs")
    if alone:
        b = args.max_batch_size
        print(f"model alone (this process, 1 torch thread): {alone[1]:.3f} ms per 1-row "
              f"forward, {alone[b]:.3f} ms per {b}-row forward ({alone[b] / b:.3f} ms/row)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(args=vars(args), model_alone_ms=alone, results=rows), f, indent=2)


if __name__ == "__main__":
    main()

"""Serve under fire: steady HTTP load while replicas are kill -9'd and a new version rolls out.

    python benchmarks/chaos/serve_kills.py [--seconds 60] [--concurrency 32] [--replicas 3]
        [--kill-every 10]

A deployment of ``--replicas`` replicas (1 ms of work per request) takes
``--concurrency`` closed-loop HTTP clients (httpx, keep-alive) for
``--seconds``; every ``--kill-every`` seconds the killer ``kill -9``s a live
replica's process, and half way through a new version is deployed (a rolling
update). Printed: requests, failures and the error rate; failures within 2 s
after a kill (a killed replica's requests in flight get 503) and outside those
windows (the target: none); p50/p99 latency of the successes; each kill's
recovery time (from the kill to the last failure it caused); the share of
answers from the new version over the last 5 s (1.0: the rollout finished).
Exit status 1 if a failure fell outside a kill's window or the rollout did
not finish.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import sys
import threading
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import httpx  # noqa: E402

import skate  # noqa: E402
from skate import serve  # noqa: E402
from skate.util import state  # noqa: E402

WINDOW_S = 2.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_app(version: int, replicas: int):
    @serve.deployment(num_replicas=replicas, ray_actor_options={"num_cpus": 0},
                      name="model", version=f"v{version}", health_check_period_s=1)
    class Model:
        async def __call__(self, request):
            await asyncio.sleep(0.001)
            return {"version": version}

    return Model.bind()


async def load(url: str, concurrency: int, seconds: float, log: list) -> None:
    stop_at = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        async def one_client():
            while time.monotonic() < stop_at:
                t = time.monotonic()
                try:
                    r = await client.get(url)
                    ok = r.status_code == 200
                    version = r.json()["version"] if ok else None
                    log.append((t, time.monotonic() - t, r.status_code, version))
                except Exception as e:  # noqa: BLE001 - a failure is a data point
                    log.append((t, time.monotonic() - t, type(e).__name__, None))

        await asyncio.gather(*(one_client() for _ in range(concurrency)))


def killer(seconds: float, every: float, kills: list, stop: threading.Event, seed: int):
    rng = random.Random(seed)
    next_kill = time.monotonic() + every
    while not stop.wait(0.1):
        if time.monotonic() < next_kill:
            continue
        next_kill += every
        alive = [a for a in state.list_actors(filters=[("state", "=", "ALIVE")], limit=1000)
                 if a.class_name.endswith("Replica") and a.pid]
        if alive:
            victim = rng.choice(alive)
            try:
                os.kill(victim.pid, signal.SIGKILL)
                kills.append(time.monotonic())
            except ProcessLookupError:
                pass


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--kill-every", type=float, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    skate.init(num_cpus=2)
    port = _free_port()
    log: list = []
    kills: list = []
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(make_app(1, args.replicas), name="app", route_prefix="/")
        stop = threading.Event()
        k = threading.Thread(target=killer, args=(args.seconds, args.kill_every, kills, stop,
                                                  args.seed), daemon=True)
        rollout_at = {}

        def rollout():
            time.sleep(args.seconds / 2)
            rollout_at["start"] = time.monotonic()
            serve.run(make_app(2, args.replicas), name="app", route_prefix="/")
            rollout_at["end"] = time.monotonic()

        r = threading.Thread(target=rollout, daemon=True)
        k.start()
        r.start()
        t0 = time.monotonic()
        asyncio.run(load(f"http://127.0.0.1:{port}/", args.concurrency, args.seconds, log))
        stop.set()
        k.join(10)
        r.join(60)
    finally:
        serve.shutdown()
        skate.shutdown()

    ok = [x for x in log if x[2] == 200]
    failed = [x for x in log if x[2] != 200]
    in_window = [x for x in failed if any(0 <= x[0] + x[1] - k_t <= WINDOW_S or
                                          0 <= k_t - x[0] <= x[1] for k_t in kills)]
    outside = [x for x in failed if x not in in_window]
    lat = sorted(x[1] for x in ok)
    recovery = []
    for k_t in kills:
        caused = [x[0] + x[1] for x in in_window if 0 <= x[0] + x[1] - k_t <= WINDOW_S]
        recovery.append(round(max(caused) - k_t, 3) if caused else 0.0)
    last = [x[3] for x in ok if x[0] > t0 + args.seconds - 5]
    new_share = sum(1 for v in last if v == 2) / len(last) if last else 0.0
    report = {
        "date": time.strftime("%Y-%m-%d"), "seconds": args.seconds,
        "concurrency": args.concurrency, "replicas": args.replicas,
        "requests": len(log), "requests_per_s": round(len(log) / args.seconds, 1),
        "failures": len(failed), "error_rate": round(len(failed) / max(1, len(log)), 5),
        "failures_in_kill_windows": len(in_window), "failures_elsewhere": len(outside),
        "failure_kinds": sorted({str(x[2]) for x in failed}),
        "kills": len(kills), "recovery_s": recovery,
        "p50_ms": round(lat[len(lat) // 2] * 1000, 2) if lat else None,
        "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 2) if lat else None,
        "rollout_s": round(rollout_at["end"] - rollout_at["start"], 2)
        if "end" in rollout_at else None,
        "new_version_share_last_5s": round(new_share, 3),
    }
    print(json.dumps(report, indent=2))
    return 0 if not outside and new_share == 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())

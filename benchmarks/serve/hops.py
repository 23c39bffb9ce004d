"""Where a served request's time goes, hop by hop (median of sequential round trips).

Measures, from an asyncio loop in the driver (as the proxy awaits replicas):
  1. an empty async-actor call round trip (the core's hop between two processes);
  2. ``Replica.handle_http`` on a no-op deployment's replica, with a real request
     envelope (the hop plus the replica's work: the Request, the user's call,
     the answer);
  3. the replica's own handling time, timed inside the replica.
Together with wrk's c=1 p50 for bare uvicorn and for the full Skate path
(``http_overhead.py``), the rest is the proxy's own work.

Run: python benchmarks/serve/hops.py [--n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import skate
from skate import serve


@skate.remote(num_cpus=0)
class Empty:
    async def ping(self):
        return None


@serve.deployment(ray_actor_options={"num_cpus": 0})
class Noop:
    async def __call__(self, request):
        return "ok"

    async def timed(self, n: int) -> float:
        """Median seconds of the replica's own handle_http work on one envelope."""
        from skate.serve.replica import current_replica

        rep = current_replica()
        env = _envelope()
        out = []
        for _ in range(n):
            t = time.perf_counter()
            await rep.handle_http(env)
            out.append(time.perf_counter() - t)
        return statistics.median(out)


def _envelope() -> tuple:
    return ("GET", "/", b"", [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk")], b"",
            "", ("127.0.0.1", 50000), ("127.0.0.1", 8000))


async def _median_round_trip(send, n: int) -> float:
    for _ in range(200):
        await send()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await send()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args()
    skate.init(num_cpus=2)
    serve.start(http_options={"port": 0})
    handle = serve.run(Noop.bind(), name="hops", route_prefix=None)
    from skate.serve.routing_client import CONTROLLER_NAME, NAMESPACE

    ctrl = skate.get_actor(CONTROLLER_NAME, namespace=NAMESPACE)
    routes = skate.get(ctrl.poll_routes.remote(-1))
    replica = routes["deployments"][("hops", "Noop")]["replicas"][0][1]
    empty = Empty.remote()
    env = _envelope()

    async def run():
        hop = await _median_round_trip(lambda: empty.ping.remote(), args.n)
        http = await _median_round_trip(lambda: replica.handle_http.remote(env), args.n)
        return hop, http
    hop, http = asyncio.run(run())
    inside = handle.timed.remote(args.n).result()
    print("| hop | median µs |\n|---|---:|")
    print(f"| empty async-actor call, round trip | {hop * 1e6:.0f} |")
    print(f"| replica.handle_http round trip (no-op deployment) | {http * 1e6:.0f} |")
    print(f"| of which the replica's own work (Request, user call, answer) "
          f"| {inside * 1e6:.0f} |")
    serve.shutdown()
    skate.shutdown()


if __name__ == "__main__":
    main()

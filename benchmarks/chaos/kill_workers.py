"""Throughput while a killer ``kill -9``s a random worker every 0.2 s, and without it.

Three workloads on a private 2-CPU node, each run quiet and then under the
killer (5 kills a second), all with unlimited retries:

- flat: ``--tasks`` 1 ms tasks submitted at once;
- nested: ``--tasks // 5`` tasks that each ``get`` one child task;
- actor: ``--tasks // 5`` 5 ms calls on one actor with ``max_restarts=-1,
  max_task_retries=-1``.

Every result that comes back is checked (a wrong one fails the run); a
workload that does not finish within ``--deadline`` seconds is reported with
how many results came back. Printed per workload: tasks/s quiet, tasks/s
under the killer, their ratio and the kills survived. ``--backend skate|ray``
picks the system (imported under the name ``ray``; the killer picks worker
processes by their command line), so Ray can
be measured the same way with its own interpreter::

    python benchmarks/chaos/kill_workers.py
    /work/ray-venv/bin/python benchmarks/chaos/kill_workers.py --backend ray
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)  # the killer is the chaos tests' own

from tests.core.chaos import WorkerKiller  # noqa: E402

#: (in a worker's command line, never in one's): Ray's agents are "ray::" processes too, but
#: its raylet dies with them, so only its workers are fair game
WORKER_MARKERS = {"skate": ("skate.core.worker", ()), "ray": ("ray::", ("Agent",))}


def workloads(ray, n: int) -> dict:
    @ray.remote(max_retries=-1)
    def flat(i):
        time.sleep(0.001)
        return i

    @ray.remote(max_retries=-1)
    def child(i):
        return i + 1

    @ray.remote(max_retries=-1)
    def parent(i):
        return ray.get(child.remote(i))

    @ray.remote(max_restarts=-1, max_task_retries=-1)
    class Echo:
        def echo(self, i):
            time.sleep(0.005)
            return i

    def finish(refs, expected, deadline_s):
        """How many results came back (each checked) within the deadline."""
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=deadline_s)
        index = {r: i for i, r in enumerate(refs)}
        for ref in ready:
            assert ray.get(ref) == expected[index[ref]], "a wrong result"
        return len(ready)

    def run_flat(deadline_s):
        return finish([flat.remote(i) for i in range(n)], list(range(n)), deadline_s)

    def run_nested(deadline_s):
        m = n // 5
        return finish([parent.remote(i) for i in range(m)], [i + 1 for i in range(m)],
                      deadline_s)

    def run_actor(deadline_s):
        m = n // 5
        a = Echo.remote()
        ray.get(a.echo.remote(-1), timeout=60)
        done = finish([a.echo.remote(i) for i in range(m)], list(range(m)), deadline_s)
        ray.kill(a)
        return done

    return {"flat": run_flat, "nested": run_nested, "actor": run_actor}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=sorted(WORKER_MARKERS), default="skate")
    p.add_argument("--tasks", type=int, default=3000)
    p.add_argument("--interval", type=float, default=0.2, help="seconds between kills")
    p.add_argument("--deadline", type=float, default=120,
                   help="seconds a workload may take before what finished is counted")
    p.add_argument("--json", help="also write the figures here")
    a = p.parse_args()
    ray = importlib.import_module(a.backend)
    ray.init(num_cpus=2)
    out = {}
    try:
        for name, fn in workloads(ray, a.tasks).items():
            fn(a.deadline)  # warm-up: workers started, functions exported
            t = time.perf_counter()
            total = fn(a.deadline)
            quiet = total / (time.perf_counter() - t)
            marker, exclude = WORKER_MARKERS[a.backend]
            with WorkerKiller(a.interval, seed=0, marker=marker, exclude=exclude) as k:
                t = time.perf_counter()
                done = fn(a.deadline)
                chaos = done / (time.perf_counter() - t)
            out[name] = {"quiet_per_s": quiet, "chaos_per_s": chaos, "kills": k.kills,
                         "finished": done, "total": total}
            missing = "" if done == total else f"  ONLY {done}/{total} within {a.deadline:.0f} s"
            print(f"{a.backend} {name:7s} quiet {quiet:8.0f}/s  under kills {chaos:8.0f}/s  "
                  f"({chaos / quiet:5.0%})  kills survived {k.kills}{missing}", flush=True)
    finally:
        ray.shutdown()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()

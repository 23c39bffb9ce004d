"""The state API against Ray's, in the same run: how long listing and summarizing take.

    python benchmarks/util/state_api.py [--tasks 5000] [--rounds 2] [--ray-python PATH]

Each round runs a child per system (interleaved, Skate first): ``init(num_cpus=2)``,
N finished tasks, 1000 objects held (10 KB each, in the store), 20 actors; it waits
until the state API lists every task as FINISHED (both record task events
asynchronously), then times each call (best of 3): ``list_tasks`` of 100 and of
every task, ``summarize_tasks``, ``list_objects``, ``summarize_objects``,
``list_actors``, ``list_workers``, ``timeline``. The child is this same file
with ``--child skate|ray``. Ray 2.60 comes from its own virtualenv (Skate never
depends on it). Printed: each call's seconds and Ray / Skate.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

CALLS = ("list_tasks_100", "list_tasks_all", "summarize_tasks", "list_objects",
         "summarize_objects", "list_actors", "list_workers", "timeline")


def child(system: str, n_tasks: int, cap: float) -> None:
    if system == "ray":
        import ray
        from ray.util import state

        # Ray refuses (RayStateApiException) a listing or summary past 10,000 records
        # unless told to truncate quietly; with fewer tasks nothing is cut either way
        lax = {"raise_on_missing_output": False}
    else:
        import skate as ray
        from skate.util import state

        lax = {}
    ray.init(num_cpus=2)

    @ray.remote
    def work(i):
        return i

    @ray.remote(num_cpus=0)
    class Idle:
        def ping(self):
            return 1

    assert sum(ray.get([work.remote(i) for i in range(n_tasks)])) == n_tasks * (n_tasks - 1) // 2
    held = [ray.put(b"x" * 10_000 + i.to_bytes(4, "little")) for i in range(1000)]
    actors = [Idle.remote() for _ in range(20)]
    ray.get([a.ping.remote() for a in actors])
    deadline = time.monotonic() + cap
    while True:  # task events reach the state API asynchronously in both systems
        s = state.summarize_tasks(**lax)
        done = s["cluster"]["summary"].get("work", {}).get("state_counts", {}).get("FINISHED", 0)
        if done >= n_tasks:
            break
        if time.monotonic() > deadline:
            print("DONE " + json.dumps({"error": f"only {done} of {n_tasks} tasks listed"}))
            return
        time.sleep(0.5)
    trace = os.path.join(tempfile.mkdtemp(), "trace.json")
    calls = {
        "list_tasks_100": lambda: state.list_tasks(limit=100, **lax),
        "list_tasks_all": lambda: state.list_tasks(limit=min(n_tasks + 1000, 10_000), **lax),
        "summarize_tasks": lambda: state.summarize_tasks(**lax),
        "list_objects": lambda: state.list_objects(limit=10_000, **lax),
        "summarize_objects": lambda: state.summarize_objects(**lax),
        "list_actors": lambda: state.list_actors(limit=1000, **lax),
        "list_workers": lambda: state.list_workers(limit=1000, **lax),
        "timeline": lambda: ray.timeline(trace),
    }
    out = {}
    for name in CALLS:
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            got = calls[name]()
            best = min(best, time.perf_counter() - t)
        out[name] = best
        if name == "list_tasks_all":
            out["tasks_listed"] = len(got)
        if name == "list_objects":
            out["objects_listed"] = len(got)
    del held, actors
    ray.shutdown()
    print("DONE " + json.dumps(out))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", type=int, default=5_000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--ray-python", default=None)
    p.add_argument("--child", choices=("skate", "ray"), default=None)
    p.add_argument("--cap", type=float, default=240)
    p.add_argument("--torch-threads", type=int, default=0)  # passed by run_child
    p.add_argument("--t0", type=float, default=0.0)  # passed by run_child
    args = p.parse_args()
    if args.child:
        child(args.child, args.tasks, args.cap)
        return
    from child_runs import DEFAULT_RAY_PYTHON, run_child

    ray_python = args.ray_python or DEFAULT_RAY_PYTHON
    runs: dict[str, list] = {"skate": [], "ray": []}
    for r in range(args.rounds):
        for system, python in (("skate", sys.executable), ("ray", ray_python)):
            res = run_child(python, ["--child", system, "--tasks", args.tasks], args.cap,
                            label=f"{system} round {r}", script=os.path.abspath(__file__))
            done = res["done"] or {"error": res["tail"][-500:]}
            runs[system].append(done)
            print(f"# {system} round {r}: {json.dumps(done)}", flush=True)
    print(f"\nstate API, {args.tasks} finished tasks, 1000 objects, 20 actors "
          f"({time.strftime('%Y-%m-%d')}); best over rounds, seconds")
    print(f"{'call':<20}{'skate':>10}{'ray':>10}{'ray/skate':>11}")
    for name in CALLS:
        s = [d[name] for d in runs["skate"] if name in d]
        y = [d[name] for d in runs["ray"] if name in d]
        if s and y:
            print(f"{name:<20}{min(s):>10.4f}{min(y):>10.4f}{min(y) / min(s):>10.1f}x")
    for key in ("tasks_listed", "objects_listed"):
        print(f"{key}: skate {[d.get(key) for d in runs['skate']]}, "
              f"ray {[d.get(key) for d in runs['ray']]}")


if __name__ == "__main__":
    main()

"""Task throughput on a simulated 3-node cluster, Skate against Ray.

A ``Cluster`` of three nodes with one CPU each (the head and two more) on
this machine; the driver submits ``--tasks`` trivial tasks (default 10,000)
with ``scheduling_strategy="SPREAD"`` all at once and gets every result. The
figure is tasks per second from the first submit to the last result, the
median of ``--rounds`` rounds after a warm-up round; the spread of the
results over the nodes is printed too.

``--backend skate|ray`` picks the system, imported under the name ``ray`` so
the measured code is the same; Ray runs with its own interpreter::

    python benchmarks/cluster/scheduling.py                        # Skate
    /work/ray-venv/bin/python benchmarks/cluster/scheduling.py --backend ray
    python benchmarks/cluster/scheduling.py --compare              # both, then the ratio

``--compare`` runs the two one after the other in subprocesses, then
``ray stop --force``, and checks that no Ray or Skate process is left.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import json
import os
import statistics
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULT_PREFIX = "SCHEDULING_RESULT "
#: command-line fragments of the processes a Ray cluster leaves if not stopped
RAY_MARKERS = ("raylet", "gcs_server", "ray::", "default_worker.py", "ray/dashboard",
               "log_monitor.py", "ray/autoscaler", "runtime_env/agent")


def run(backend: str, tasks: int, rounds: int, nodes: int) -> dict:
    if backend == "skate" and REPO_ROOT not in sys.path:
        sys.path.insert(0, REPO_ROOT)
    ray = importlib.import_module(backend)
    cluster_utils = importlib.import_module(f"{backend}.cluster_utils")

    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address)

        @ray.remote(scheduling_strategy="SPREAD")
        def trivial():
            return ray.get_runtime_context().get_node_id()

        def one_round(n):
            start = time.perf_counter()
            placed = ray.get([trivial.remote() for _ in range(n)])
            return time.perf_counter() - start, collections.Counter(placed)

        one_round(min(tasks, 1000))  # warm-up: workers started, function shipped
        rates, spreads = [], []
        for _ in range(rounds):
            seconds, counts = one_round(tasks)
            rates.append(tasks / seconds)
            spreads.append(sorted(counts.values(), reverse=True))
        return {"backend": backend, "tasks": tasks, "nodes": nodes, "rounds": rounds,
                "tasks_per_s": statistics.median(rates), "all_rates": rates,
                "per_node": spreads}
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


def _leftovers(skate_pid: int) -> list[str]:
    """Ray processes, and Skate processes of the session ``skate_pid`` created
    (session names carry their creator's pid; other Skate users are not ours)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(m in cmd for m in RAY_MARKERS) or f"-p{skate_pid}-" in cmd:
            found.append(f"{pid}: {cmd[:150]}")
    return found


def compare(args) -> int:
    results, pids = {}, {}
    for backend, python in (("skate", sys.executable), ("ray", args.ray_python)):
        cmd = [python, os.path.abspath(__file__), "--backend", backend, "--tasks",
               str(args.tasks), "--rounds", str(args.rounds), "--nodes", str(args.nodes)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=REPO_ROOT)
        pids[backend] = proc.pid
        stdout, stderr = proc.communicate(timeout=1800)
        lines = [ln for ln in stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
        if proc.returncode != 0 or not lines:
            print(stdout[-3000:], stderr[-3000:], sep="\n")
            raise SystemExit(f"the {backend} run failed (exit {proc.returncode})")
        results[backend] = json.loads(lines[-1][len(RESULT_PREFIX):])
        if backend == "ray":
            subprocess.run([os.path.join(os.path.dirname(args.ray_python), "ray"), "stop",
                            "--force"], check=False, capture_output=True, timeout=120)
    left = _leftovers(pids["skate"])
    s, r = results["skate"]["tasks_per_s"], results["ray"]["tasks_per_s"]
    print(f"{args.tasks} trivial SPREAD tasks over {args.nodes} one-CPU nodes "
          f"(median of {args.rounds} rounds)")
    print(f"{'backend':>8} | {'tasks/s':>9} | tasks per node (each round)")
    for name in ("skate", "ray"):
        res = results[name]
        print(f"{name:>8} | {res['tasks_per_s']:>9.0f} | {res['per_node']}")
    print(f"skate / ray = {s / r:.2f}x")
    print("processes left:", "none" if not left else "\n  " + "\n  ".join(left))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "ratio": s / r, "leftovers": left}, f, indent=1)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=["skate", "ray"], default="skate")
    p.add_argument("--tasks", type=int, default=10_000, help="tasks per round")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds; the median is reported")
    p.add_argument("--nodes", type=int, default=3, help="nodes, one CPU each, head included")
    p.add_argument("--compare", action="store_true",
                   help="run skate, then ray (with --ray-python), print the ratio")
    p.add_argument("--ray-python", default="/work/ray-venv/bin/python")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    if args.compare:
        return compare(args)
    res = run(args.backend, args.tasks, args.rounds, args.nodes)
    print(f"{args.backend}: {res['tasks_per_s']:.0f} tasks/s ({args.tasks} SPREAD tasks, "
          f"{args.nodes} nodes; rounds {[round(r) for r in res['all_rates']]}; "
          f"per node {res['per_node']})")
    print(RESULT_PREFIX + json.dumps(res), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

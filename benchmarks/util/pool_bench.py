"""Pool.map throughput: Skate's drop-in Pool vs the standard library's and Ray's.

Two workloads, on a warm pool of ``--processes`` processes (default: all CPUs):

* small: ``pool.map(square, range(10_000))``, default chunksize; the cost of the
  machinery itself (pickling, round trips, result collection).
* cpu:   ``pool.map(burn, range(100))``, each item spinning 50 ms of CPU time
  (``time.process_time``), so contention from other programs slows every backend
  alike; the ideal is ``100 * 0.05 / processes`` seconds.

Plus startup: from nothing to the first result (init + Pool + a first map).

    python benchmarks/util/pool_bench.py --backend skate
    python benchmarks/util/pool_bench.py --backend stdlib
    /work/ray-venv/bin/python benchmarks/util/pool_bench.py --backend ray
    python benchmarks/util/pool_bench.py --compare          # all three, one at a time, + table

``--backend ray`` needs only Ray in that interpreter; the script never imports
Skate there. ``--compare`` runs ``ray stop --force`` after the Ray run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SMALL_ITEMS = 10_000
CPU_ITEMS = 100
CPU_SECONDS = 0.05
RAY_PYTHON = "/work/ray-venv/bin/python"


def square(x):
    return x * x


def burn(x):
    start = time.process_time()
    while time.process_time() - start < CPU_SECONDS:
        pass
    return x


def make_pool(backend: str, processes: int):
    if backend == "stdlib":
        import multiprocessing

        return multiprocessing.Pool(processes)
    if backend == "ray":
        import ray
        from ray.util.multiprocessing import Pool

        ray.init(num_cpus=processes, include_dashboard=False, log_to_driver=False)
        return Pool(processes)
    if backend == "skate":
        try:
            import skate
        except ImportError:  # run from a checkout without installing
            sys.path.insert(
                0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            )
            import skate
        from skate.util.multiprocessing import Pool

        skate.init(num_cpus=processes, log_to_driver=False)
        return Pool(processes)
    raise ValueError(f"unknown backend {backend!r}")


def timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def run(backend: str, processes: int, repeat_small: int, repeat_cpu: int) -> dict:
    start = time.perf_counter()
    pool = make_pool(backend, processes)
    assert pool.map(square, range(processes)) == [i * i for i in range(processes)]
    startup = time.perf_counter() - start
    pool.map(square, range(SMALL_ITEMS))  # warm: functions shipped, workers imported
    expected = [i * i for i in range(SMALL_ITEMS)]
    small = timed(lambda: pool.map(square, range(SMALL_ITEMS)) == expected or 1 / 0, repeat_small)
    cpu = timed(lambda: pool.map(burn, range(CPU_ITEMS)), repeat_cpu)
    pool.terminate()
    return {
        "backend": backend,
        "processes": processes,
        "startup_s": startup,
        "small_median_s": statistics.median(small),
        "small_best_s": min(small),
        "small_items_per_s": SMALL_ITEMS / statistics.median(small),
        "cpu_median_s": statistics.median(cpu),
        "cpu_best_s": min(cpu),
        "cpu_ideal_s": CPU_ITEMS * CPU_SECONDS / processes,
    }


def report(r: dict) -> None:
    print(f"[{r['backend']}] {r['processes']} processes")
    print(f"  startup (init + Pool + first map)  {r['startup_s']:.3f} s")
    print(
        f"  small: map {SMALL_ITEMS} items       median {r['small_median_s'] * 1e3:.2f} ms "
        f"(best {r['small_best_s'] * 1e3:.2f} ms, {r['small_items_per_s']:,.0f} items/s)"
    )
    print(
        f"  cpu:   map {CPU_ITEMS} x 50 ms         median {r['cpu_median_s']:.3f} s "
        f"(best {r['cpu_best_s']:.3f} s, ideal {r['cpu_ideal_s']:.3f} s)"
    )


def compare(args) -> None:
    here = os.path.abspath(__file__)
    results = {}
    for backend, python in (
        ("skate", sys.executable),
        ("stdlib", sys.executable),
        ("ray", args.ray_python),
    ):
        cmd = [
            python,
            here,
            "--backend",
            backend,
            "--json",
            "-",
            "--processes",
            str(args.processes),
            "--repeat-small",
            str(args.repeat_small),
            "--repeat-cpu",
            str(args.repeat_cpu),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
        finally:
            if backend == "ray":
                ray_bin = os.path.join(os.path.dirname(python), "ray")
                subprocess.run([ray_bin, "stop", "--force"], capture_output=True, check=False)
        if proc.returncode != 0:
            sys.exit(f"the {backend} run failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
        results[backend] = json.loads(proc.stdout.strip().splitlines()[-1])
        report(results[backend])
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average (1, 5, 15 min) after the runs: {load}")
    rows = [
        (f"map {SMALL_ITEMS:,} small items, median", "small_median_s"),
        (f"map {SMALL_ITEMS:,} small items, best", "small_best_s"),
        (
            f"map {CPU_ITEMS} x 50 ms CPU, median "
            f"(ideal {CPU_ITEMS * CPU_SECONDS / args.processes:.2f} s)",
            "cpu_median_s",
        ),
        (f"map {CPU_ITEMS} x 50 ms CPU, best", "cpu_best_s"),
        ("startup: init + Pool + first map", "startup_s"),
    ]
    s, lib, ray = results["skate"], results["stdlib"], results["ray"]
    print("\n(ratios: the other's time / Skate's; above 1 means Skate is faster)")
    print("| workload | Skate | stdlib Pool | Ray Pool | stdlib / Skate | Ray / Skate |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, key in rows:
        print(
            f"| {label} | {_fmt(s[key])} | {_fmt(lib[key])} | {_fmt(ray[key])} | "
            f"{lib[key] / s[key]:.2f} | {ray[key] / s[key]:.2f} |"
        )


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 0.1 else f"{seconds:.3f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["skate", "stdlib", "ray"], default="skate")
    parser.add_argument("--compare", action="store_true", help="run all three backends")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat-small", type=int, default=30)
    parser.add_argument("--repeat-cpu", type=int, default=5)
    parser.add_argument("--json", help="also write the numbers as JSON here ('-': stdout)")
    parser.add_argument("--ray-python", default=RAY_PYTHON)
    args = parser.parse_args()
    if args.compare:
        compare(args)
        return
    result = run(args.backend, args.processes, args.repeat_small, args.repeat_cpu)
    if args.json == "-":
        print(json.dumps(result))
        return
    report(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()

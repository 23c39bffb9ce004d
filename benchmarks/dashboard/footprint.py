"""The dashboard's footprint: its process's memory with a full task history, and what its
API answers cost (bytes and time).

Starts a head with ``skate start --head`` in a private temp dir (so it touches no head
this machine runs), runs ``--tasks`` tiny tasks from a driver, waits until the task
history holds all of them, then reads the dashboard's RSS (and its peak, VmHWM) before
and after asking every page's API a few times.

    python benchmarks/dashboard/footprint.py [--tasks 10000] [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRIVER = """
import skate
skate.init(address="auto")
@skate.remote
def noop(i):
    return i
skate.get([noop.remote(i) for i in range({n})])
"""
ENDPOINTS = [
    ("tasks, page 1 of 50", "/api/tasks?per_page=50"),
    ("tasks, last page of 50", "/api/tasks?per_page=50&page={last}"),
    ("tasks, 500 per page", "/api/tasks?per_page=500"),
    ("tasks, filtered (state+name)", "/api/tasks?state=FINISHED&name=noop&per_page=50"),
    ("nodes", "/api/nodes"),
    ("actors", "/api/actors"),
    ("jobs", "/api/jobs/"),
    ("resource history", "/api/cluster/history"),
    ("log files", "/api/logs"),
    ("objects, page 1", "/api/objects"),
    ("objects by call site, stores", "/api/objects/summary"),
    ("libraries in use", "/api/libraries"),
    ("metrics, Prometheus text", "/metrics"),
    ("timeline", "/api/timeline"),
]


def _get(url: str) -> tuple[int, float]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as resp:
        body = resp.read()
    return len(body), time.perf_counter() - t0


def _mib(n: int) -> float:
    return round(n / 2**20, 1)


def _peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def measure(tasks: int, repeat: int) -> dict:
    temp = tempfile.mkdtemp(prefix="skd-bench-", dir="/tmp")
    env = {k: v for k, v in os.environ.items() if k not in ("SKATE_ADDRESS", "SKATE_TOKEN")}
    env.update(SKATE_TEMP_DIR=temp, PYTHONPATH=ROOT + os.pathsep + env.get("PYTHONPATH", ""))
    cli = [sys.executable, "-m", "skate.scripts.skate_cli"]
    subprocess.run(cli + ["start", "--head", "--port", "0", "--num-cpus", "2",
                          "--dashboard-port", "0"], env=env, check=True, capture_output=True)
    try:
        with open(os.path.join(temp, "current.json")) as f:
            info = json.load(f)
        url, dash = info["dashboard_url"], psutil.Process(info["dashboard_pid"])
        deadline = time.monotonic() + 30
        while True:
            try:
                _get(url + "/api/version")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        time.sleep(2.5)  # a sample or two, the sampler's imports done
        rss_empty = dash.memory_info().rss
        subprocess.run([sys.executable, "-c", DRIVER.format(n=tasks)], env=env, check=True)
        deadline = time.monotonic() + 60
        while json.loads(urllib.request.urlopen(url + "/api/tasks?per_page=1").read()
                         )["total"] < tasks:
            assert time.monotonic() < deadline, "the task history never filled"
            time.sleep(0.1)
        rss_full = dash.memory_info().rss
        rows = []
        last = -(-tasks // 50)
        for label, path in ENDPOINTS:
            sizes, times = [], []
            for _ in range(repeat):
                size, dt = _get(url + path.format(last=last))
                sizes.append(size)
                times.append(dt)
            rows.append({"endpoint": label, "path": path.format(last=last),
                         "bytes": sizes[-1], "ms_median": round(1000 * statistics.median(times),
                                                                1)})
        rss_after = dash.memory_info().rss
        time.sleep(2.5)  # the dashboard hands freed pages back after each sample
        return {"tasks": tasks, "repeat": repeat,
                "rss_mib_empty_history": _mib(rss_empty),
                "rss_mib_full_history_idle": _mib(rss_full),
                "rss_mib_after_requests": _mib(rss_after),
                "rss_mib_settled": _mib(dash.memory_info().rss),
                "peak_rss_mib": _mib(_peak_rss(dash.pid)), "endpoints": rows,
                "cpus": os.cpu_count(), "python": sys.version.split()[0]}
    finally:
        subprocess.run(cli + ["stop"], env=env, capture_output=True)
        shutil.rmtree(temp, ignore_errors=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(argv)
    r = measure(args.tasks, args.repeat)
    print(f"dashboard RSS: {r['rss_mib_empty_history']} MiB with an empty history, "
          f"{r['rss_mib_full_history_idle']} MiB with {r['tasks']} finished tasks, "
          f"{r['rss_mib_after_requests']} MiB right after the requests below, "
          f"{r['rss_mib_settled']} MiB 2.5 s later (peak {r['peak_rss_mib']} MiB)\n")
    print("| endpoint | path | response | median time |\n|---|---|---:|---:|")
    for row in r["endpoints"]:
        print(f"| {row['endpoint']} | `{row['path']}` | {row['bytes']:,} B | "
              f"{row['ms_median']} ms |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

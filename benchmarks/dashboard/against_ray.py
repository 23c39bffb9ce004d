"""The dashboard's memory against Ray's, in the same run, with the same task history.

    python benchmarks/dashboard/against_ray.py [--tasks 10000] [--ray-python PATH]

Skate: ``footprint.py``'s measurement (a head from ``skate start --head``, a driver
running ``--tasks`` tiny tasks, the dashboard process's RSS once the history holds
them, then after one request to each page's API). Ray 2.60 (its own virtualenv):
``ray start --head`` in a private temp dir, the same driver, then the RSS of its
dashboard processes (``dashboard.py``, the per-node ``dashboard/agent.py``, and the
head's runtime-env agent) once ``ray.util.state.summarize_tasks`` counts every task,
and after the same kind of requests (tasks list, summary, nodes, actors, jobs).
Printed: MiB for each and Ray / Skate.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
RAY_PYTHON = "/work/ray-venv/bin/python"
RAY_DRIVER = """
import ray, time
from ray.util import state
ray.init(address="auto")
@ray.remote
def noop(i):
    return i
ray.get([noop.remote(i) for i in range({n})])
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    s = state.summarize_tasks(raise_on_missing_output=False)["cluster"]["summary"]
    if s.get("noop", {{}}).get("state_counts", {{}}).get("FINISHED", 0) >= {n}:
        break
    time.sleep(1)
print("ok")
"""
RAY_PAGES = ["/api/v0/tasks?limit=100", "/api/v0/tasks/summarize", "/nodes?view=summary",
             "/api/v0/actors?limit=100", "/api/jobs/"]


def _mib(n: int) -> float:
    return round(n / 2**20, 1)


def ray_dashboard(ray_python: str, tasks: int) -> dict:
    temp = tempfile.mkdtemp(prefix="rayd-")
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    bin_dir = os.path.dirname(ray_python)
    ray = os.path.join(bin_dir, "ray")
    try:
        subprocess.run([ray, "start", "--head", "--num-cpus", "2", "--temp-dir", temp,
                        "--include-dashboard", "true", "--dashboard-port", "8266"],
                       check=True, capture_output=True, env=env, timeout=120)
        drv = subprocess.run([ray_python, "-c", RAY_DRIVER.format(n=tasks)],
                             capture_output=True, text=True, env=env, timeout=600)
        assert "ok" in drv.stdout, drv.stderr[-2000:]

        def procs():
            """RSS by kind of Ray's dashboard processes: the head (dashboard.py), its
            subprocess modules (ray-dashboard-*), the per-node agents."""
            out: dict = {}
            pss.clear()
            for p in psutil.process_iter(["cmdline"]):
                cmd = " ".join(p.info["cmdline"] or [])
                if "skate" in cmd:
                    continue
                for key in ("dashboard/dashboard.py", "ray-dashboard-", "dashboard/agent.py",
                            "runtime_env/agent/main.py"):
                    if key in cmd:
                        out[key] = out.get(key, 0) + p.memory_info().rss
                        # shared pages once (the modules are separate processes)
                        pss[key] = pss.get(key, 0) + p.memory_full_info().pss
                        break
            return out

        pss: dict = {}
        idle = procs()
        idle_pss = dict(pss)
        for page in RAY_PAGES:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:8266{page}", timeout=60).read()
            except Exception:  # noqa: BLE001 - a page Ray refuses still counts as asked
                pass
        after = procs()
        return {"idle_mib": {k: _mib(v) for k, v in idle.items()},
                "after_requests_mib": {k: _mib(v) for k, v in after.items()},
                "idle_pss_mib": {k: _mib(v) for k, v in idle_pss.items()},
                "all_idle_pss_mib": _mib(sum(idle_pss.values())),
                "dashboard_idle_mib": _mib(idle.get("dashboard/dashboard.py", 0)),
                "all_idle_mib": _mib(sum(idle.values())),
                "all_after_mib": _mib(sum(after.values()))}
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, env=env, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=10_000)
    p.add_argument("--ray-python", default=RAY_PYTHON)
    args = p.parse_args(argv)
    import footprint

    skate = footprint.measure(args.tasks, 1)
    ray = ray_dashboard(args.ray_python, args.tasks)
    print(json.dumps({"date": time.strftime("%Y-%m-%d"), "tasks": args.tasks,
                      "skate": skate, "ray": ray}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

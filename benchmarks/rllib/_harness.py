"""Shared plumbing for the rllib benchmarks: one measured run per fresh subprocess.

Not a benchmark itself.  ``run_child`` (from ``benchmarks/child_runs.py``) starts
``_child.py`` with the given Python in a new session, passing it the wall-clock time
just before the start (``--t0``) so every time it reports counts from process start
(interpreter start-up and imports included), and stops everything it started when it
ends: Ray's raylet, GCS and workers, Skate's runner processes, none outlives a run.
This module holds what the rllib scripts share besides: summaries, formatting, options.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # benchmarks/: the shared child_runs module

from child_runs import DEFAULT_RAY_PYTHON, REPO_ROOT, run_child  # noqa: E402,F401


# ----------------------------------------------------------------------------- reporting
def median_or_inf(xs: list) -> float:
    """Median where None (not solved) counts as +inf."""
    vals = [math.inf if x is None else x for x in xs]
    return statistics.median(vals) if vals else math.nan


def fmt(x, digits: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "not solved"
    if isinstance(x, float) and math.isnan(x):
        return "-"
    if isinstance(x, int) or (isinstance(x, float) and abs(x) >= 1000):
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def conditions(runs: list) -> str:
    """A line on the torch threads each system used and the load before the runs."""
    threads: dict = {}
    for r in runs:
        threads.setdefault(r["system"], set()).add(r.get("torch_threads"))
    loads = [r["loadavg_before"] for r in runs if r.get("loadavg_before") is not None]
    return ("torch threads (driver): " + ", ".join(
        f"{s} {'/'.join(str(t) for t in sorted(v, key=str))}" for s, v in threads.items())
        + (f"; 1-min load average before a run: {min(loads):.2f}..{max(loads):.2f} "
           f"on {os.cpu_count()} CPUs" if loads else ""))


def add_common_args(p) -> None:
    """The options every benchmark script takes: interpreters, threads, JSON output."""
    p.add_argument("--skate-python", default=sys.executable)
    p.add_argument("--ray-python", default=DEFAULT_RAY_PYTHON)
    p.add_argument("--torch-threads", type=int, default=0,
                   help="torch.set_num_threads(N) in every run, after building "
                        "(default 0: each library's own choice)")
    p.add_argument("--json", metavar="OUT", help="write every run, with its curve, here")


def python_for(system: str, args) -> str:
    """Skate's interpreter for Skate's runs, the peers' venv for SB3 and RLlib."""
    return args.skate_python if system.startswith("skate") else args.ray_python


def parse_systems(p, args, allowed: tuple) -> list:
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if not systems or set(systems) - set(allowed):
        p.error(f"--systems takes a comma-separated subset of {','.join(allowed)}")
    return systems


def solve_summary(system: str, seed: int, cap: float, out: dict) -> dict:
    """One time-to-target run (``run_child``'s answer) as the scripts record it."""
    done = out["done"] or {}
    last = out["points"][-1] if out["points"] else {}
    solved = bool(done.get("solved"))
    return {"system": system, "seed": seed, "solved": solved, "cap_s": cap,
            "wall_s": done.get("wall_s") if solved else None,
            "steps": done.get("steps", last.get("steps")),
            "final_return": done.get("ret", last.get("ret")),
            "reason": done.get("reason") or ("hard-killed" if out["hard_killed"] else
                                              f"exited {out['rc']}"),
            "startup_s": (out["ready"] or {}).get("wall_s"),
            "torch_threads": (out["ready"] or {}).get("torch_threads"),
            "loadavg_before": out["loadavg_before"],
            "curve": [[p["steps"], p["wall_s"], p["ret"]] for p in out["points"]],
            "leftovers": out["leftovers"], "tail": None if done else out["tail"]}


def write_json(path: str | None, data: dict) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(data, f, indent=1)
        print(f"\n(raw runs written to {path})")

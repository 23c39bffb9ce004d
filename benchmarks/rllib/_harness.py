"""Shared plumbing for the rllib benchmarks: one measured run per fresh subprocess.

Not a benchmark itself.  ``run_child`` starts ``_child.py`` with the given Python in a
new session (process group), passing it the wall-clock time just before the start
(``--t0``) so every time it reports counts from process start (interpreter start-up and
imports included).  It collects the child's ``READY`` / ``POINT`` / ``DONE`` lines,
enforces a hard deadline (the child's own cap plus a grace period) and, in ``finally``,
stops the child and everything it started: SIGTERM then SIGKILL to its process group,
then SIGKILL by pid to every process seen as its descendant or in its session while it
ran (checked by start time, so a reused pid is never hit).  Ray's raylet, GCS and
workers, Skate's runner processes: none outlives a run.
"""

from __future__ import annotations

import json
import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
CHILD = os.path.join(HERE, "_child.py")
DEFAULT_RAY_PYTHON = "/work/ray-venv/bin/python"  # ray[rllib]==2.60.0, stable-baselines3


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


# ----------------------------------------------------------------------------- processes
def _proc_table() -> dict[int, tuple[int, int, int]]:
    """{pid: (ppid, sid, start_time)} of every live, non-zombie process."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[0] != "Z":
                table[int(entry)] = (int(fields[1]), int(fields[3]), int(fields[19]))
    return table


def family(root: int) -> dict[int, int]:
    """{pid: start_time} of root, its descendants and every process in its session."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = set(), [root]
    while stack:
        pid = stack.pop()
        if pid in table and pid not in found:
            found.add(pid)
            stack.extend(children.get(pid, []))
    found |= {pid for pid, (_, sid, _) in table.items() if sid == root}
    return {pid: table[pid][2] for pid in found}


def alive(procs: dict[int, int]) -> list[int]:
    table = _proc_table()
    return [pid for pid, start in procs.items() if pid in table and table[pid][2] == start]


def _stop(proc: subprocess.Popen, known: dict[int, int]) -> int:
    """Stop proc and all it started; the number of processes that survived SIGKILL."""
    procs = {**known, **family(proc.pid)}
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is None or alive(procs):
            try:
                os.killpg(proc.pid, sig)
            except OSError:
                pass
            for p in alive(procs):
                try:
                    os.kill(p, sig)
                except OSError:
                    pass
        deadline = time.monotonic() + wait
        while (proc.poll() is None or alive(procs)) and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc.poll() is not None and not alive(procs):
            break
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass
    return len(alive(procs))


# ----------------------------------------------------------------------------- one run
def run_child(python: str, args: list, cap_s: float, grace_s: float = 60.0,
              label: str = "run", torch_threads: int = 0) -> dict:
    """Run ``python _child.py ARGS --cap CAP --t0 NOW``; its READY, POINTs and DONE.

    Returns ``{"ready": {...} | None, "points": [...], "done": {...} | None, "rc": int,
    "hard_killed": bool, "leftovers": int, "tail": str}``.
    """
    lines: list[str] = []
    out: dict = {"ready": None, "points": [], "done": None, "hard_killed": False,
                 "loadavg_before": os.getloadavg()[0]}
    t0 = time.time()
    cmd = [python, CHILD, *[str(a) for a in args], "--cap", str(cap_s),
           "--torch-threads", str(torch_threads), "--t0", repr(t0)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, errors="replace",
                            start_new_session=True, env=child_env(), cwd=REPO_ROOT)

    def read() -> None:
        for line in proc.stdout:
            line = line.rstrip("\n")
            kind, _, rest = line.partition(" ")
            if kind in ("READY", "POINT", "DONE") and rest.startswith("{"):
                d = json.loads(rest)
                if kind == "POINT":
                    out["points"].append(d)
                else:
                    out[kind.lower()] = d
            else:
                lines.append(line)
                del lines[:-60]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    known: dict[int, int] = {}
    deadline = time.monotonic() + cap_s + grace_s
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                out["hard_killed"] = True
                print(f"# {label}: past cap + {grace_s:.0f} s, killing it", file=sys.stderr)
                break
            known.update(family(proc.pid))
            time.sleep(1.0)
    finally:
        out["leftovers"] = _stop(proc, known)
        reader.join(5)
    out["rc"] = proc.returncode
    out["tail"] = "\n".join(lines[-25:])
    if out["leftovers"]:
        print(f"# warning: {label}: {out['leftovers']} process(es) survived SIGKILL",
              file=sys.stderr)
    if out["done"] is None and not out["hard_killed"]:
        print(f"# {label}: exited {proc.returncode} without DONE; output:\n{out['tail']}",
              file=sys.stderr)
    return out


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

"""Run one measured child process and make sure nothing it started outlives it.

Shared by the benchmark suites (rllib, sgd). ``run_child`` starts a script with a
given Python in a new session (process group), passing it the wall-clock time just
before the start (``--t0``) so every time it reports counts from process start. It
collects the child's ``READY`` / ``POINT`` / ``DONE`` lines (``KIND {json}``),
enforces a hard deadline (the child's own cap plus a grace period) and, in
``finally``, stops the child and everything it started: SIGTERM then SIGKILL to its
process group, then SIGKILL by pid to every process seen as its descendant or in its
session while it ran (checked by start time, so a reused pid is never hit).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

BENCHMARKS = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCHMARKS)
RLLIB_CHILD = os.path.join(BENCHMARKS, "rllib", "_child.py")
DEFAULT_RAY_PYTHON = "/work/ray-venv/bin/python"  # ray[default,serve,rllib,train]==2.60.0


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
              label: str = "run", torch_threads: int = 0, script: str | None = None) -> dict:
    """Run ``python SCRIPT ARGS --cap CAP --torch-threads N --t0 NOW`` (``script``: the
    rllib benchmarks' ``_child.py`` by default); its READY, POINTs and DONE.

    Returns ``{"ready": {...} | None, "points": [...], "done": {...} | None, "rc": int,
    "hard_killed": bool, "leftovers": int, "tail": str}``.
    """
    lines: list[str] = []
    out: dict = {"ready": None, "points": [], "done": None, "hard_killed": False,
                 "loadavg_before": os.getloadavg()[0]}
    t0 = time.time()
    cmd = [python, script or RLLIB_CHILD, *[str(a) for a in args], "--cap", str(cap_s),
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

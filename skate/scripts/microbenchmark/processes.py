"""Process cleanup: anything the backend started that survives shutdown() is ours.

Processes are remembered as {pid: start time} while the backend runs and are stopped
by pid at the end, checked by start time so that a reused pid is never hit.
"""

from __future__ import annotations

import os
import signal
import time


def descendants(pid: int) -> list[int]:
    """Pids of every descendant of `pid` (psutil if present, else /proc)."""
    try:
        import psutil

        try:
            return [p.pid for p in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            return []
    except ImportError:
        pass
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, stack = [], [pid]
    while stack:
        for c in children.get(stack.pop(), []):
            out.append(c)
            stack.append(c)
    return out


def start_time(pid: int):
    """The start time (clock ticks since boot) of `pid`, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def reap_leftovers(procs: dict[int, object], grace: float = 5.0) -> int:
    """SIGTERM, then SIGKILL, the given {pid: start_time} processes still alive."""
    def alive():
        return [p for p, st in procs.items() if st is not None and start_time(p) == st]

    deadline = time.time() + grace
    while alive() and time.time() < deadline:
        time.sleep(0.2)
    left = alive()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in left:
            try:
                os.kill(p, sig)
            except OSError:
                pass
        t = time.time() + 3.0
        while alive() and time.time() < t:
            time.sleep(0.1)
        left = alive()
        if not left:
            break
    return len(left)

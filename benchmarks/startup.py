"""Cold-start time and idle memory of a backend (Skate or Ray).

For ``--backend ray|skate`` (imported as ``ray``), each repetition runs in a fresh
Python subprocess and measures:

* ``init_to_first_result_s``: wall time from calling ``init()`` until
  ``ray.get(f.remote())`` has returned (split into ``init_s`` and ``first_task_s``;
  ``import_s`` is reported separately and not included);
* ``idle_rss_mib``: total resident memory of the driver plus every process the backend
  started, measured ``--idle-wait`` seconds (default 2) after the first result, i.e. a
  fresh idle cluster.  ``idle_pss_mib`` (proportional set size, which does not count
  shared pages more than once) is reported too where the kernel provides it.

"Every process the backend started" = all descendants of the driver, plus processes
that appeared after the driver started and are not descendants (daemons that were
reparented, e.g. to init) if they are in the driver's session (same SID) or carry the
cluster's session directory name (from the context ``init()`` returns) on their
command line.

After each repetition the backend is shut down and any of those processes that
survive are terminated (by pid), so repetitions do not disturb each other.

Usage::

    python benchmarks/startup.py --backend skate
    /path/ray-venv/bin/python benchmarks/startup.py --backend ray --json ray_startup.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time

MIB = 1024 * 1024
RESULT_PREFIX = "STARTUP_RESULT "
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------
# Process table helpers (psutil if available, else /proc)
# ----------------------------------------------------------------------------
def _proc_table() -> dict[int, dict]:
    """{pid: {ppid, sid, start, cmd, name}} for every visible process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat.rsplit(")", 1)[1].split()
            ppid, sid, start = int(fields[1]), int(fields[3]), int(fields[19])
            state = fields[0]
        except (OSError, ValueError, IndexError):
            continue
        if state == "Z":  # zombies hold no memory
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            cmd = ""
        table[pid] = dict(ppid=ppid, sid=sid, start=start, cmd=cmd or f"[{name}]", name=name)
    return table


def _descendants(table: dict[int, dict], root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, info in table.items():
        children.setdefault(info["ppid"], []).append(pid)
    out, stack = [], [root]
    while stack:
        for c in children.get(stack.pop(), []):
            out.append(c)
            stack.append(c)
    return out


def _memory(pid: int) -> tuple[int, int | None]:
    """(rss_bytes, pss_bytes or None) of one process."""
    try:
        import psutil

        try:
            p = psutil.Process(pid)
            rss = p.memory_info().rss
            try:
                pss = getattr(p.memory_full_info(), "pss", None)
            except (psutil.AccessDenied, psutil.ZombieProcess, AttributeError, OSError):
                pss = None
            return rss, pss
        except psutil.NoSuchProcess:
            return 0, 0
        except psutil.Error:
            pass
    except ImportError:
        pass
    rss = 0
    pss = None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                    break
    except OSError:
        return 0, 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    return rss, pss


def _session_markers(ray, ctx) -> list[str]:
    """Strings that appear on the command lines of this cluster's daemons.

    Both Ray's and Skate's init() return a context whose address_info carries the
    session directory; its basename is on the daemons' command lines.
    """
    markers = []
    info = getattr(ctx, "address_info", None)
    if info is None and isinstance(ctx, dict):
        info = ctx
    if isinstance(info, dict):
        sd = info.get("session_dir")
        if isinstance(sd, str) and sd.strip("/"):
            markers.append(os.path.basename(sd.rstrip("/")))
    if ray.__name__ == "ray":
        try:
            markers.append(ray._private.worker._global_node.session_name)  # noqa: SLF001
        except Exception:  # noqa: BLE001
            pass
    # very short markers would match unrelated command lines
    return [m for m in dict.fromkeys(markers) if m and len(m) >= 8]


def _alive(procs: dict[int, int]) -> list[int]:
    left = []
    for pid, start in procs.items():
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[19]) == start and fields[0] != "Z":
                left.append(pid)
        except (OSError, ValueError, IndexError):
            pass
    return left


def _terminate(procs: dict[int, int], grace: float) -> tuple[int, int]:
    """Wait up to `grace` s for {pid: start_time} to exit, then SIGTERM/SIGKILL them.

    Returns (number that had to be signalled, number still alive at the end).
    """
    deadline = time.time() + grace
    while _alive(procs) and time.time() < deadline:
        time.sleep(0.2)
    left = _alive(procs)
    signalled = len(left)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not left:
            break
        for pid in left:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        t = time.time() + 3
        while _alive(procs) and time.time() < t:
            time.sleep(0.1)
        left = _alive(procs)
    return signalled, len(left)


def _reap_descendants(me: int, grace: float) -> None:
    table = _proc_table()
    _terminate({pid: table[pid]["start"] for pid in _descendants(table, me)}, grace)


# ----------------------------------------------------------------------------
# Child: one measurement in a fresh interpreter
# ----------------------------------------------------------------------------
def _import_backend(name: str):
    if name == "ray":
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        return importlib.import_module(name)
    except ImportError:
        if name != "skate":
            raise
        if REPO_ROOT not in sys.path:
            sys.path.insert(0, REPO_ROOT)
        pp = os.environ.get("PYTHONPATH", "")
        if REPO_ROOT not in pp.split(os.pathsep):
            os.environ["PYTHONPATH"] = REPO_ROOT + (os.pathsep + pp if pp else "")
        return importlib.import_module(name)


def _init_kwargs(args) -> dict:
    kwargs = {}
    if args.backend == "ray":
        # Keep Ray on the loopback interface (this benchmark needs no other network).
        kwargs["_node_ip_address"] = "127.0.0.1"
    if args.init_kwargs:
        kwargs.update(json.loads(args.init_kwargs))
    return kwargs


def _child(args) -> dict:
    me = os.getpid()
    my_sid = os.getsid(0)
    before = {pid: info["start"] for pid, info in _proc_table().items()}

    t0 = time.perf_counter()
    ray = _import_backend(args.backend)
    t1 = time.perf_counter()

    @ray.remote
    def f():
        return 1

    init_kwargs = _init_kwargs(args)
    t2 = time.perf_counter()
    ctx = ray.init(**init_kwargs)
    t3 = time.perf_counter()
    assert ray.get(f.remote()) == 1
    t4 = time.perf_counter()

    time.sleep(args.idle_wait)

    table = _proc_table()
    markers = _session_markers(ray, ctx)
    desc = set(_descendants(table, me))
    extra = set()
    for pid, info in table.items():
        if pid == me or pid in desc:
            continue
        if before.get(pid) == info["start"]:
            continue  # existed before we started
        if info["sid"] == my_sid or any(m and m in info["cmd"] for m in markers):
            # new since we started, not ours by parentage (e.g. a daemon reparented
            # to init), but in our session or carrying our cluster's session name
            extra.add(pid)
    counted = [me] + sorted(desc) + sorted(extra)
    procs = []
    total_rss = 0
    total_pss = 0
    pss_ok = True
    for pid in counted:
        rss, pss = _memory(pid)
        if rss == 0 and pss == 0:
            continue
        total_rss += rss
        if pss is None:
            pss_ok = False
        else:
            total_pss += pss
        info = table.get(pid, {})
        procs.append(
            dict(
                pid=pid,
                rss_mib=round(rss / MIB, 1),
                pss_mib=None if pss is None else round(pss / MIB, 1),
                relation="driver" if pid == me else ("descendant" if pid in desc else "other"),
                cmd=info.get("cmd", "")[:160],
            )
        )

    # Shut down and make sure nothing we started outlives this repetition.
    ours = {pid: table[pid]["start"] for pid in counted if pid != me and pid in table}
    now = _proc_table()
    for pid in _descendants(now, me):  # anything spawned since
        ours.setdefault(pid, now[pid]["start"])
    t5 = time.perf_counter()
    try:
        ray.shutdown()
    except Exception as e:  # noqa: BLE001
        print(f"shutdown failed: {e}", file=sys.stderr)
    t6 = time.perf_counter()
    signalled, left = _terminate(ours, grace=args.stop_grace)

    return dict(
        backend=args.backend,
        version=str(getattr(ray, "__version__", "unknown")),
        init_kwargs=init_kwargs,
        import_s=t1 - t0,
        init_s=t3 - t2,
        first_task_s=t4 - t3,
        init_to_first_result_s=t4 - t2,
        import_init_first_result_s=(t1 - t0) + (t4 - t2),
        shutdown_s=t6 - t5,
        idle_wait_s=args.idle_wait,
        num_processes=len(procs),
        idle_rss_mib=total_rss / MIB,
        idle_pss_mib=(total_pss / MIB) if pss_ok else None,
        processes=procs,
        leftover_processes_killed=signalled - left,
        leftover_processes_alive=left,
        session_markers=markers,
    )


# ----------------------------------------------------------------------------
# Parent: repeat the child, aggregate, print
# ----------------------------------------------------------------------------
def _summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return dict(
        mean=statistics.fmean(values),
        median=statistics.median(values),
        min=min(values),
        max=max(values),
        std=statistics.pstdev(values) if len(values) > 1 else 0.0,
        values=values,
    )


def _run_parent(args) -> dict:
    python = args.python or sys.executable
    cmd = [
        python,
        os.path.abspath(__file__),
        "--child",
        "--backend",
        args.backend,
        "--idle-wait",
        str(args.idle_wait),
        "--stop-grace",
        str(args.stop_grace),
    ]
    if args.init_kwargs:
        cmd += ["--init-kwargs", args.init_kwargs]
    env = dict(os.environ)
    if args.backend == "ray":
        env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    runs, errors = [], []
    for i in range(args.repeat):
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=args.timeout, env=env,
                cwd=REPO_ROOT,
            )
        except subprocess.TimeoutExpired as e:
            errors.append(f"run {i + 1}: timed out after {e.timeout} s")
            print(f"run {i + 1}: FAILED: timed out after {e.timeout} s", flush=True)
            continue
        wall = time.perf_counter() - t0
        result = None
        for line in proc.stdout.splitlines():
            if line.startswith(RESULT_PREFIX):
                result = json.loads(line[len(RESULT_PREFIX) :])
        if result is None:
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
            msg = f"run {i + 1}: exit code {proc.returncode}: " + " | ".join(tail)
            errors.append(msg)
            print(f"run {i + 1}: FAILED: {msg}", flush=True)
            continue
        result["process_wall_s"] = wall
        runs.append(result)
        print(
            f"run {i + 1}: init->first result {result['init_to_first_result_s']:.3f} s "
            f"(import {result['import_s']:.3f} s, init {result['init_s']:.3f} s, "
            f"first task {result['first_task_s']:.3f} s); idle RSS "
            f"{result['idle_rss_mib']:.1f} MiB in {result['num_processes']} processes"
            + (
                f", PSS {result['idle_pss_mib']:.1f} MiB"
                if result.get("idle_pss_mib") is not None
                else ""
            ),
            flush=True,
        )
        if args.verbose:
            for p in result["processes"]:
                print(
                    f"    {p['pid']:>7} {p['rss_mib']:>8.1f} MiB  {p['relation']:<10} {p['cmd']}"
                )
        if result.get("leftover_processes_alive"):
            print(
                f"    warning: {result['leftover_processes_alive']} process(es) survived "
                "shutdown and could not be killed",
                flush=True,
            )

    out = dict(
        backend=args.backend,
        version=runs[0]["version"] if runs else None,
        python=python,
        cpus=os.cpu_count(),
        repeat=args.repeat,
        init_kwargs=_init_kwargs(args),
        init_to_first_result_s=_summary([r["init_to_first_result_s"] for r in runs]),
        import_s=_summary([r["import_s"] for r in runs]),
        import_init_first_result_s=_summary([r["import_init_first_result_s"] for r in runs]),
        init_s=_summary([r["init_s"] for r in runs]),
        first_task_s=_summary([r["first_task_s"] for r in runs]),
        shutdown_s=_summary([r["shutdown_s"] for r in runs]),
        idle_rss_mib=_summary([r["idle_rss_mib"] for r in runs]),
        idle_pss_mib=_summary([r.get("idle_pss_mib") for r in runs]),
        num_processes=_summary([r["num_processes"] for r in runs]),
        runs=runs,
        errors=errors,
    )
    return out


def _fmt(summary, unit, digits):
    if not summary:
        return "n/a"
    return (
        f"{summary['mean']:.{digits}f} {unit} (median {summary['median']:.{digits}f}, "
        f"min {summary['min']:.{digits}f}, max {summary['max']:.{digits}f}, "
        f"n={len(summary['values'])})"
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", default="skate", help="module to import as `ray` (skate|ray)")
    p.add_argument("--repeat", type=int, default=3, help="fresh-subprocess repetitions")
    p.add_argument("--idle-wait", type=float, default=2.0, help="seconds idle before RSS")
    p.add_argument(
        "--init-kwargs",
        default=None,
        help='JSON dict of init() keyword arguments, e.g. \'{"include_dashboard": false}\'',
    )
    p.add_argument("--python", default=None, help="interpreter for the measured subprocess")
    p.add_argument("--timeout", type=float, default=180, help="seconds per repetition")
    p.add_argument("--stop-grace", type=float, default=10.0, help=argparse.SUPPRESS)
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--verbose", "-v", action="store_true", help="list the counted processes")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        try:
            result = _child(args)
        except BaseException:
            # Never leave a half-started cluster behind.
            _reap_descendants(os.getpid(), grace=2.0)
            raise
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return result

    print(
        f"# startup benchmark: backend={args.backend} repeat={args.repeat} "
        f"idle_wait={args.idle_wait:g}s init_kwargs={json.dumps(_init_kwargs(args))}",
        flush=True,
    )
    out = _run_parent(args)
    print(f"backend: {args.backend} {out['version'] or ''}".rstrip())
    print("init -> first task result:", _fmt(out["init_to_first_result_s"], "s", 3))
    print("  init() alone:           ", _fmt(out["init_s"], "s", 3))
    print("  first task:             ", _fmt(out["first_task_s"], "s", 3))
    print("import time (not included):", _fmt(out["import_s"], "s", 3))
    print("import + init + first task:", _fmt(out["import_init_first_result_s"], "s", 3))
    print("idle cluster RSS:         ", _fmt(out["idle_rss_mib"], "MiB", 1))
    if out["idle_pss_mib"]:
        print("idle cluster PSS:         ", _fmt(out["idle_pss_mib"], "MiB", 1))
    print("processes:                ", _fmt(out["num_processes"], "", 0))
    if out["errors"]:
        print(f"{len(out['errors'])} repetition(s) failed")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == "__main__":
    res = main()
    sys.exit(0 if (res and (res.get("runs") or res.get("init_s") is not None)) else 1)

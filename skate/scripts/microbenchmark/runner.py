"""One run: start the backend, run the selected lines, stop it and what it left behind.

A benchmark that raises (or runs past ``--timeout``) prints ``<name> FAILED: <error>``
and the run goes on with the next one; if the failure left the backend unusable it is
restarted first.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

from . import actors, async_actors, objects, placement_groups, tasks
from .backend import backend_version, import_backend
from .catalog import PG_CREATE_REMOVAL, SIZES
from .harness import Alarm, BenchmarkSkipped, measure, result_line, write_json
from .processes import descendants, reap_leftovers, start_time
from .remotes import define_remotes

FAMILIES = (objects, tasks, actors, async_actors, placement_groups)


def run(args, selected):
    """Run the `selected` lines with the options `args`; return {name: [mean, std]}."""
    timeout = args.timeout if args.timeout is not None else 60 + 10 * args.duration
    results: dict[str, list[float]] = {}
    failures: dict[str, str] = {}

    def fail_all(names, msg):
        for n in names:
            failures[n] = msg
            print(f"{n} FAILED: {msg}", flush=True)

    try:
        ray = import_backend(args.backend)
    except Exception as e:  # noqa: BLE001
        fail_all(selected, f"cannot import backend {args.backend!r}: {type(e).__name__}: {e}")
        write_json(args.json, results)
        return results

    init_kwargs = {"num_cpus": args.num_cpus}
    if PG_CREATE_REMOVAL in selected:
        init_kwargs["resources"] = {"custom": 100}
    if args.backend == "ray":
        # No dashboard (it competes for the CPUs being measured) and loopback only.
        init_kwargs.update(include_dashboard=False, _node_ip_address="127.0.0.1")
    if args.init_kwargs:
        init_kwargs.update(json.loads(args.init_kwargs))

    sizes = SIZES["full" if args.full_size else "small"]
    n_cpu = max(2, (os.cpu_count() or 2) // 2)
    print(
        f"# backend={args.backend} version={backend_version(ray)} "
        f"python={sys.version.split()[0]} cpus={os.cpu_count()} "
        f"init={json.dumps(init_kwargs, sort_keys=True)} duration={args.duration:g}s "
        f"warmup={args.warmup:g}s sizes={'full' if args.full_size else 'small'}",
        flush=True,
    )

    me = os.getpid()
    started: dict[int, object] = {}

    def remember_children():
        for p in descendants(me):
            started.setdefault(p, start_time(p))

    def start_backend():
        with Alarm(timeout):
            ray.init(**init_kwargs)
        remember_children()

    def stop_backend():
        remember_children()
        try:
            with Alarm(60):
                ray.shutdown()
        except BaseException as e:  # noqa: BLE001
            print(f"# shutdown failed: {type(e).__name__}: {e}", file=sys.stderr)

    try:
        start_backend()
        remotes = define_remotes(ray)
    except BaseException as e:  # noqa: BLE001
        if isinstance(e, KeyboardInterrupt):
            raise
        fail_all(selected, f"init failed: {type(e).__name__}: {e}")
        stop_backend()
        reap_leftovers(started)
        write_json(args.json, results)
        return results

    benches = {}
    for family in FAMILIES:
        benches.update(family.benchmarks(ray, remotes, sizes, n_cpu))

    def healthy() -> bool:
        try:
            with Alarm(20):
                return ray.get(remotes.ping.remote()) == 1
        except BaseException:  # noqa: BLE001
            return False

    backend_ok = True
    for idx, name in enumerate(selected):
        if not backend_ok:
            fail_all([name], "backend unavailable (restart after an earlier failure failed)")
            continue

        def timeit(fn, multiplier=1):
            return measure(fn, multiplier, args.duration, args.warmup, args.rounds)

        if args.pause > 0:
            time.sleep(args.pause)  # let the previous benchmark's cleanup settle

        try:
            with Alarm(timeout):
                mean, sd = benches[name](timeit)
        except BenchmarkSkipped as e:
            print(f"{name} SKIPPED: {e}", flush=True)
            continue
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001  (includes BenchmarkTimeout)
            msg = f"{type(e).__name__}: {e}".strip()
            msg = " ".join(msg.split())[:500]
            failures[name] = msg
            print(f"{name} FAILED: {msg}", flush=True)
            if os.environ.get("SKATE_BENCH_TRACEBACK"):
                traceback.print_exc()
            # Keep going: restart the backend if the failure left it unusable.
            if idx + 1 < len(selected) and not healthy():
                print("# backend unhealthy after failure; restarting it", file=sys.stderr)
                stop_backend()
                try:
                    start_backend()
                    backend_ok = healthy()
                except BaseException as e2:  # noqa: BLE001
                    if isinstance(e2, KeyboardInterrupt):
                        raise
                    print(f"# restart failed: {type(e2).__name__}: {e2}", file=sys.stderr)
                    backend_ok = False
            continue
        results[name] = [mean, sd]
        print(result_line(name, mean, sd), flush=True)
        write_json(args.json, results)

    stop_backend()
    left = reap_leftovers(started)
    if left:
        print(f"# warning: {left} backend process(es) could not be stopped", file=sys.stderr)
    write_json(args.json, results)
    return results


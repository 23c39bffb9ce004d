"""The object store past its capacity: spills and restores lose nothing; a full disk is a
clear error that harms nothing stored before.

    python benchmarks/chaos/object_store.py [--store-mb 100] [--times 3] [--object-mb 10]
        [--disk-mb 0]

With ``--store-mb`` of shared memory, the driver and a task put ``--times`` x
that in ``--object-mb`` objects, keeping every reference, each filled with a
value of its own; then every object is read back (restored from the spill
folder when it is on disk) and checked, twice in a shuffled order. The node
manager's and the driver's private memory (USS) must stay within 150 MB of
where they started: spilled bytes live on disk, not in a process.

``--disk-mb N`` (root: it mounts a tmpfs of N MB for the session folder)
runs the same with a spill disk smaller than the data: puts past the space
get ``OutOfDiskError`` and everything stored before reads back exactly.
Printed: bytes written, spilled, restored, the memory figures and seconds;
exit status 1 if a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

import numpy as np
import psutil

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _node_manager() -> psutil.Process:
    for p in psutil.Process().children(recursive=True):
        if "skate.core.node_manager" in " ".join(p.cmdline()):
            return p
    raise RuntimeError("no node manager among this process's children")


def run(store_mb: int, times: int, object_mb: int) -> dict:
    import skate
    from skate.exceptions import OutOfDiskError
    from skate.util import state

    skate.init(num_cpus=1, object_store_memory=store_mb * 2**20)
    size = object_mb * 2**20
    out: dict = {"failures": [], "out_of_disk_at": None}
    try:
        nm = _node_manager()
        uss0 = {"node_manager": nm.memory_full_info().uss,
                "driver": psutil.Process().memory_full_info().uss}

        @skate.remote
        def make(i, n):
            return np.full(n, i % 251, dtype=np.uint8)

        t0 = time.perf_counter()
        refs = []
        n_objects = times * store_mb // object_mb
        for i in range(n_objects):
            try:  # every other object is a task's result, put by a worker
                ref = make.remote(i, size) if i % 2 else skate.put(
                    np.full(size, i % 251, dtype=np.uint8))
                skate.wait([ref])
                if i % 2:
                    skate.get(ref)  # raises the worker's OutOfDiskError, if any
                refs.append((i, ref))
            except (OutOfDiskError, skate.exceptions.RayTaskError) as e:
                if not isinstance(e, OutOfDiskError) and "OutOfDiskError" not in str(e):
                    raise
                out["out_of_disk_at"] = i
                out["error"] = str(e).splitlines()[0][:200]
                break
        out["write_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        order = list(refs)
        for _ in range(2):
            random.Random(len(order)).shuffle(order)
            for i, ref in order:
                a = skate.get(ref)
                if a.shape != (size,) or int(a[0]) != i % 251 or int(a[-1]) != i % 251 or \
                        int(a.sum(dtype=np.int64)) != size * (i % 251):
                    out["failures"].append(f"object {i} read back wrong")
                del a
        out["read_s"] = time.perf_counter() - t0
        stats = next(n["object_store"] for n in state.cluster_status()["nodes"])
        uss1 = {"node_manager": nm.memory_full_info().uss,
                "driver": psutil.Process().memory_full_info().uss}
        out.update(objects=len(refs), written_mb=len(refs) * object_mb,
                   spilled_mb=stats["spilled_bytes_total"] // 2**20,
                   restored_mb=stats["restored_bytes_total"] // 2**20,
                   uss_growth_mb={k: round((uss1[k] - uss0[k]) / 2**20, 1) for k in uss0})
        for who, grown in out["uss_growth_mb"].items():
            if grown > 150:
                out["failures"].append(f"{who}'s private memory grew by {grown} MB")
        if out["out_of_disk_at"] is None and stats["spilled_bytes_total"] == 0:
            out["failures"].append("nothing was spilled")
    finally:
        skate.shutdown()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--store-mb", type=int, default=100)
    p.add_argument("--times", type=int, default=3)
    p.add_argument("--object-mb", type=int, default=10)
    p.add_argument("--disk-mb", type=int, default=0)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child or not args.disk_mb:
        out = run(args.store_mb, args.times, args.object_mb)
        if args.disk_mb and out["out_of_disk_at"] is None:
            out["failures"].append("the small disk never filled up")
        print(json.dumps(out, indent=2))
        return 1 if out["failures"] else 0
    if os.geteuid() != 0:
        print("--disk-mb mounts a tmpfs: run as root", file=sys.stderr)
        return 2
    disk = tempfile.mkdtemp(prefix="skate-small-disk-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.disk_mb}m", "tmpfs", disk],
                   check=True)
    try:
        env = dict(os.environ, SKATE_TEMP_DIR=os.path.join(disk, "sessions"))
        return subprocess.run([sys.executable, os.path.abspath(__file__), "--child",
                               "--store-mb", str(args.store_mb), "--times", str(args.times),
                               "--object-mb", str(args.object_mb), "--disk-mb",
                               str(args.disk_mb)], env=env, cwd=REPO_ROOT).returncode
    finally:
        subprocess.run(["umount", "-l", disk], check=False)
        os.rmdir(disk)


if __name__ == "__main__":
    sys.exit(main())

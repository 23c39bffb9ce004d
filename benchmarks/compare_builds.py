"""Compare two builds (source trees) of Skate in one sitting: did a change slow anything?

::

    python benchmarks/compare_builds.py --old /work/baseline --new /work/main --rounds 3 \\
        [--filter NAME ...] [--duration S] [--startup] [--markdown PATH] [--json PATH]

Runs each tree's own microbenchmark (the package ``skate/scripts/microbenchmark`` or,
in older trees, the file ``skate/scripts/microbenchmark.py``) alternately, old, new,
old, new, ..., one process at a time, so slow phases of a shared machine hit both
builds alike. Each run has its tree first on ``PYTHONPATH`` and its tree as the working
directory: the backend starts its processes with ``python -m skate...``, which puts
the working directory first on their sys.path, and they inherit ``PYTHONPATH``. Before
measuring, a short check run prints which ``skate`` the driver and a worker of each
tree import, and the comparison stops if it is not that tree's.

Per line it prints the median over rounds of each build's mean rate, new/old, and
flags lines where new/old is below ``--threshold`` (default 0.90) or that only the new
build failed. With ``--startup`` it also runs each tree's ``benchmarks/startup.py``
(old, then new) and compares the medians, oriented so that < 1 means the new build is
worse (old/new for times and memory). Exit status: 0 if no microbenchmark line is
flagged, 1 if one is, 2 if a check run failed; startup rows are flagged for information
only (times of a few milliseconds are mostly noise).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile

from compare_ray import (
    benchmark_order,
    fmt_num,
    load_json,
    machine_meta,
    parse_micro,
    run_streamed,
)

SIDES = ("old", "new")

# Run in a fresh interpreter of the measured tree: where the driver's and a worker's
# skate come from.
CHECK = r"""
import os
import skate
print("skate driver:", os.path.dirname(os.path.abspath(skate.__file__)), flush=True)
skate.init(num_cpus=1)
try:
    @skate.remote
    def where():
        import skate
        return os.path.dirname(os.path.abspath(skate.__file__))
    print("skate worker:", skate.get(where.remote(), timeout=60), flush=True)
finally:
    skate.shutdown()
"""

# (label, key in startup.py's JSON, unit, digits)
STARTUP_ROWS = (
    ("startup: init() to first task result (median)", "init_to_first_result_s", "s", 3),
    ("startup: import time (median)", "import_s", "s", 3),
    ("startup: import + init() + first task result (median)",
     "import_init_first_result_s", "s", 3),
    ("idle cluster RSS, driver + all backend processes (median)", "idle_rss_mib", "MiB", 1),
    ("idle cluster PSS, driver + all backend processes (median)", "idle_pss_mib", "MiB", 1),
)


def micro_entry(tree: str) -> str:
    """The microbenchmark of `tree` to run by path: the package, else the single file."""
    pkg = os.path.join(tree, "skate", "scripts", "microbenchmark")
    if os.path.isfile(os.path.join(pkg, "__main__.py")):
        return pkg
    single = pkg + ".py"
    if os.path.isfile(single):
        return single
    raise SystemExit(f"{tree}: no skate/scripts/microbenchmark(.py)")


def tree_env(tree: str) -> dict:
    """This environment with `tree` first on PYTHONPATH (children and workers inherit it)."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != tree]
    env["PYTHONPATH"] = os.pathsep.join([tree, *rest])
    return env


def check_tree(python, tree, outdir, label, timeout) -> bool:
    """Run CHECK for `tree`; True if its driver and a worker both import `tree`'s skate."""
    log = os.path.join(outdir, f"check_{label}.log")
    script = os.path.join(outdir, "check_skate.py")  # a file, so the echoed command is short
    with open(script, "w") as f:
        f.write(CHECK)
    run_streamed([python, script], f"check {label}", log, tree_env(tree), timeout, cwd=tree)
    want = os.path.realpath(os.path.join(tree, "skate"))
    seen = {}
    with open(log, errors="replace") as f:
        for line in f:
            for who in ("driver", "worker"):
                prefix = f"skate {who}: "
                if line.startswith(prefix):
                    seen[who] = os.path.realpath(line[len(prefix):].strip())
    ok = seen.get("driver") == want and seen.get("worker") == want
    if not ok:
        print(f"[check {label}] expected skate from {want}, got {seen}", flush=True)
    return ok


def _median(values):
    return statistics.median(values) if values else None


def micro_rows(runs, order, threshold):
    """Rows (name, unit, old, new, ratio, flag) from {side: [parse_micro() per round]}."""
    names = list(order)
    for side in SIDES:
        for m in runs[side]:
            for key in ("results", "failed", "skipped"):
                names += [n for n in m[key] if n not in names]
    rows = []
    for name in names:
        med, status = {}, {}
        for side in SIDES:
            med[side] = _median([m["results"][name][0] for m in runs[side]
                                 if name in m["results"]])
            if any(name in m["failed"] for m in runs[side]):
                status[side] = "failed"
            elif any(name in m["skipped"] for m in runs[side]):
                status[side] = "skipped"
        if med["old"] is None and med["new"] is None and not status:
            continue
        ratio = med["new"] / med["old"] if med["old"] and med["new"] is not None else None
        flag = ""
        if ratio is not None and ratio < threshold:
            flag = f"SLOWER (< {threshold:.2f})"
        if status.get("new") == "failed" and status.get("old") != "failed":
            flag = (flag + "; " if flag else "") + "new failed"
        cells = [fmt_num(med[s]) if med[s] is not None else f"n/a ({status.get(s, 'absent')})"
                 for s in SIDES]
        unit = "GB/s" if "gigabytes" in name else "per s"
        rows.append((name, unit, cells[0], cells[1], ratio, flag))
    return rows


def startup_rows(startup, threshold):
    """Rows like micro_rows for startup.py's medians; the ratio is old/new (< 1: new worse)."""
    rows = []
    for label, key, unit, digits in STARTUP_ROWS:
        vals = {s: ((startup.get(s) or {}).get(key) or {}).get("median") for s in SIDES}
        if all(v is None for v in vals.values()):
            continue
        ratio = vals["old"] / vals["new"] if vals["old"] and vals["new"] else None
        flag = f"WORSE (< {threshold:.2f})" if ratio is not None and ratio < threshold else ""
        cells = ["n/a" if vals[s] is None else f"{vals[s]:.{digits}f}" for s in SIDES]
        rows.append((label, unit, cells[0], cells[1], ratio, flag))
    return rows


HEADERS = ("benchmark", "unit", "old (median)", "new (median)", "new vs old", "flag")


def _cells(row):
    ratio = "n/a" if row[4] is None else f"{row[4]:.3f}"
    return (row[0], row[1], row[2], row[3], ratio, row[5])


def text_table(rows) -> str:
    """The rows as an aligned plain-text table."""
    table = [HEADERS] + [_cells(r) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADERS))]
    lines = []
    for i, r in enumerate(table):
        lines.append("  ".join(c.ljust(w) if j in (0, 5) else c.rjust(w)
                               for j, (c, w) in enumerate(zip(r, widths))).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows, meta) -> str:
    """The rows as a markdown section, with how they were measured."""
    out = [
        "## Skate: new build vs old build",
        "",
        f"Measured {meta['date']} on {meta['cpus']} CPU(s) ({meta['cpu_model']}), "
        f"{meta['mem_gib']:.0f} GiB RAM, {meta['os']}.",
        "",
        f"- old: `{meta['old']}`; new: `{meta['new']}`",
        f"- microbenchmark `--duration {meta['duration']:g}`, {meta['rounds']} round(s) "
        "per build, interleaved (old, new, old, new, ...); each cell is the median over "
        "rounds of the run's mean rate",
        "- new vs old: new/old for rates, old/new for times and memory, so < 1 always "
        f"means the new build is worse; flagged below {meta['threshold']:.2f}",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in rows:
        cells = list(_cells(r))
        cells[0] = cells[0].replace("|", "\\|")
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    return "\n".join(out)


def _parse_args(argv):
    p = argparse.ArgumentParser(description="Compare the microbenchmarks of two Skate trees.")
    p.add_argument("--old", required=True, help="source tree of the old build")
    p.add_argument("--new", required=True, help="source tree of the new build")
    p.add_argument("--rounds", type=int, default=3, help="runs per build, interleaved")
    p.add_argument("--filter", action="append", default=[], help="microbenchmark name substring")
    p.add_argument("--duration", type=float, default=2.0, help="seconds per microbenchmark")
    p.add_argument("--warmup", type=float, default=None, help="microbenchmark warmup seconds")
    p.add_argument("--micro-args", default="", help="extra microbenchmark args (one string)")
    p.add_argument("--micro-timeout", type=float, default=1800, help="seconds per micro run")
    p.add_argument("--threshold", type=float, default=0.90, help="flag new/old below this")
    p.add_argument("--startup", action="store_true", help="also compare benchmarks/startup.py")
    p.add_argument("--repeat", type=int, default=3, help="startup repetitions")
    p.add_argument("--startup-timeout", type=float, default=900, help="seconds per startup run")
    p.add_argument("--python", default=sys.executable, help="interpreter for both builds")
    p.add_argument("--skip-check", action="store_true", help="do not check which skate runs")
    p.add_argument("--outdir", default=None, help="keep raw logs/JSON here (default: a temp dir)")
    p.add_argument("--markdown", default=None, help="write a markdown table here")
    p.add_argument("--json", default=None, help="write all raw results here")
    return p.parse_args(argv)


def main(argv=None) -> int:
    """Run the comparison; return the exit status (0 ok, 1 a line flagged, 2 bad setup)."""
    args = _parse_args(argv)
    trees = {"old": os.path.abspath(args.old), "new": os.path.abspath(args.new)}
    entries = {s: micro_entry(trees[s]) for s in SIDES}
    outdir = args.outdir or tempfile.mkdtemp(prefix="skate-builds-")
    os.makedirs(outdir, exist_ok=True)

    if not args.skip_check:
        for s in SIDES:
            if not check_tree(args.python, trees[s], outdir, s, 300):
                return 2

    runs = {s: [] for s in SIDES}
    for i in range(args.rounds):
        for s in SIDES:
            base = os.path.join(outdir, f"micro_{s}.run{i + 1}")
            for stale in (base + ".json", base + ".log"):  # a reused --outdir
                if os.path.exists(stale):
                    os.remove(stale)
            cmd = [args.python, entries[s], "--backend", "skate",
                   "--duration", str(args.duration), "--json", base + ".json"]
            if args.warmup is not None:
                cmd += ["--warmup", str(args.warmup)]
            for f in args.filter:
                cmd += ["--filter", f]
            cmd += args.micro_args.split()
            label = f"micro {s} run {i + 1}/{args.rounds}"
            run_streamed(cmd, label, base + ".log", tree_env(trees[s]), args.micro_timeout,
                         cwd=trees[s])
            runs[s].append(parse_micro(base + ".json", base + ".log"))

    startup = {}
    if args.startup:
        for s in SIDES:
            path = os.path.join(outdir, f"startup_{s}.json")
            cmd = [args.python, os.path.join(trees[s], "benchmarks", "startup.py"),
                   "--backend", "skate", "--repeat", str(args.repeat), "--json", path]
            run_streamed(cmd, f"startup {s}", path[:-5] + ".log", tree_env(trees[s]),
                         args.startup_timeout, cwd=trees[s])
            startup[s] = load_json(path)

    micro = micro_rows(runs, benchmark_order(entries["new"]), args.threshold)
    rows = micro + startup_rows(startup, args.threshold)
    flagged = [r for r in micro if r[5]]
    print()
    print(text_table(rows))
    print(f"\n{len(flagged)} of {len(micro)} microbenchmark line(s) flagged; "
          f"raw logs and JSON: {outdir}")

    meta = machine_meta()
    meta.update(old=trees["old"], new=trees["new"], duration=args.duration,
                rounds=args.rounds, threshold=args.threshold)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown_table(rows, meta))
        print(f"markdown table written to {args.markdown}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(meta=meta, micro=runs, startup=startup,
                           rows=[dict(zip(("benchmark", "unit", "old", "new", "ratio", "flag"),
                                          r)) for r in rows]), f, indent=2)
    return 1 if flagged else 0


if __name__ == "__main__":
    sys.exit(main())

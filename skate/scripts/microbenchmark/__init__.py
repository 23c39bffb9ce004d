"""Backend-agnostic core microbenchmarks (the benchmark set of ``ray microbenchmark``).

The same code measures Skate or real Ray, so both can be compared line by line::

    skate microbenchmark --filter "actor calls" --duration 1   # skate
    python -m skate.scripts.microbenchmark                     # skate (default)
    python skate/scripts/microbenchmark                        # by path, same thing
    /path/ray-venv/bin/python skate/scripts/microbenchmark --backend ray

Every benchmark prints a line in Ray's format::

    single client get calls (Plasma Store) per second 10234.5 +- 120.3

A benchmark that raises (or runs past ``--timeout``) prints ``<name> FAILED: <error>``
and the run goes on with the next one, so a half-built backend still gives numbers.

The backend module is imported at run time (``importlib.import_module(backend)``, bound
to the name ``ray``); no module of this package imports skate or ray at module level,
only the standard library and numpy, so the package also runs by path under a Ray-only
virtualenv. The modules import each other relatively; ``__main__.py`` loads the package
itself when it is run by path.

Modules: ``catalog`` (line names, sizes), ``harness`` (options, timing, output),
``runner`` (one run), ``backend``, ``remotes``, ``processes``, and the workloads by
family: ``objects``, ``tasks``, ``actors``, ``async_actors``, ``placement_groups``.

Workload sizes are scaled down for a small (2-core) machine; each line is still a
rate per single operation (tasks/s, calls/s, GB/s), so the sizes change how long one
timed call takes, not the unit. ``--full-size`` restores Ray's original sizes.
"""

from __future__ import annotations

import sys

from .catalog import BENCHMARK_NAMES, SIZES
from .harness import parse_args, select

__all__ = ["BENCHMARK_NAMES", "SIZES", "main"]


def main(argv=None):
    """Run the microbenchmark with the command line `argv`; return {name: [mean, std]}."""
    args = parse_args(argv)
    selected = select(args.filter)
    if args.list:
        for n in selected:
            print(n)
        return {}
    if not selected:
        print(f"no benchmark matches {args.filter!r}", file=sys.stderr)
        return {}
    # Imported here so that --list stays cheap.
    from .runner import run

    return run(args, selected)

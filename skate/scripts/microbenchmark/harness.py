"""Options, timing and output: what every benchmark line shares.

Ray's output format (``NAME per second MEAN +- STD``), the ``--json`` file, the
``--filter`` selection, and ``measure``, a copy of the timing loop of Ray's timeit().
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time

import numpy as np

from .catalog import BENCHMARK_NAMES


class BenchmarkTimeout(Exception):
    """Raised (from a SIGALRM handler) when one benchmark runs past --timeout."""


class BenchmarkSkipped(Exception):
    """Raised by a benchmark whose feature the backend does not provide."""


class Alarm:
    """Context manager: raise BenchmarkTimeout in the main thread after `seconds`."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.active = False
        self.old = None

    def _handler(self, signum, frame):
        raise BenchmarkTimeout(f"timed out after {self.seconds:g} s")

    def __enter__(self):
        if (
            self.seconds
            and self.seconds > 0
            and hasattr(signal, "setitimer")
            and threading.current_thread() is threading.main_thread()
        ):
            self.old = signal.signal(signal.SIGALRM, self._handler)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
            self.active = True
        return self

    def __exit__(self, *exc):
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.old)
            self.active = False
        return False


def measure(fn, multiplier, duration, warmup, rounds):
    """Rate of `fn` calls times `multiplier` per second: (mean, std) over `rounds`.

    Like Ray's timeit(): a warmup of at least one call estimates the cost of one call,
    then `rounds` timed rounds of duration/rounds seconds each run `fn` in chunks of
    `step` calls (one chunk ~ 1/10 of a round) until the round's time is used up.
    """
    start = time.perf_counter()
    count = 0
    while True:
        fn()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= warmup:
            break
    per_call = elapsed / count
    round_time = max(duration / rounds, 1e-3)
    step = max(1, int(round_time / 10.0 / max(per_call, 1e-9)))
    stats = []
    for _ in range(rounds):
        start = time.perf_counter()
        count = 0
        while time.perf_counter() - start < round_time:
            for _ in range(step):
                fn()
            count += step
        end = time.perf_counter()
        stats.append(multiplier * count / (end - start))
    return float(np.mean(stats)), float(np.std(stats))


def parse_args(argv):
    """The command line of the microbenchmark (the same for both backends)."""
    p = argparse.ArgumentParser(
        description="Ray-style core microbenchmarks for Skate or Ray (same workload)."
    )
    p.add_argument("--backend", default="skate", help="module to import as `ray` (skate|ray)")
    p.add_argument(
        "--filter",
        action="append",
        default=[],
        help="only run benchmarks whose name contains this substring (repeatable)",
    )
    p.add_argument("--duration", type=float, default=2.0, help="timed seconds per benchmark")
    p.add_argument("--warmup", type=float, default=0.5, help="warmup seconds per benchmark")
    p.add_argument("--rounds", type=int, default=4, help="timed rounds (for the +- std)")
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="give up on one benchmark after this many seconds (default 60 + 10*duration)",
    )
    p.add_argument("--num-cpus", type=int, default=4, help="num_cpus for init()")
    p.add_argument(
        "--init-kwargs",
        default=None,
        help="JSON dict of extra init() keyword arguments, applied last (for ray the "
        'defaults are {"include_dashboard": false, "_node_ip_address": "127.0.0.1"})',
    )
    p.add_argument("--full-size", action="store_true", help="use Ray's original sizes")
    p.add_argument("--json", default=None, help="write {name: [mean, std]} here")
    p.add_argument("--list", action="store_true", help="list benchmark names and exit")
    p.add_argument(
        "--pause", type=float, default=0.5, help="seconds to idle before each benchmark"
    )
    return p.parse_args(argv)


def select(filters) -> list[str]:
    """Benchmark names, in Ray's order, that contain any of `filters` (all if none)."""
    return [n for n in BENCHMARK_NAMES if not filters or any(s in n for s in filters)]


def result_line(name: str, mean: float, sd: float) -> str:
    """One result in Ray's format: ``NAME per second MEAN +- STD``."""
    return f"{name} per second {round(mean, 2)} +- {round(sd, 2)}"


def write_json(path, results):
    """Write {name: [mean, std]} to `path` atomically (nothing if `path` is empty)."""
    if not path:
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=2)
    os.replace(tmp, path)

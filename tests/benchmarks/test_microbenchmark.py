"""The microbenchmark package runs every way it is started, and compare_builds' table logic."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skate_only

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MICRO = os.path.join(ROOT, "skate", "scripts", "microbenchmark")
RAY_PYTHON = "/work/ray-venv/bin/python"
# Appended, so that benchmarks/serve, benchmarks/tune, ... never shadow an installed module.
sys.path.append(os.path.join(ROOT, "benchmarks"))

import compare_builds
import compare_ray

from skate.scripts.microbenchmark.catalog import BENCHMARK_NAMES


def _run(cmd):
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.parametrize("cmd", [
    [sys.executable, "-m", "skate.scripts.microbenchmark"],
    [sys.executable, MICRO],
    [sys.executable, os.path.join(MICRO, "__main__.py")],
    [sys.executable, "-m", "skate.scripts.skate_cli", "microbenchmark"],
], ids=["module", "dir", "file", "cli"])
def test_list_every_entry(cmd):
    assert _run(cmd + ["--list"]).splitlines() == BENCHMARK_NAMES


@pytest.mark.skipif(not os.path.exists(RAY_PYTHON), reason="no Ray virtualenv")
def test_list_by_path_without_skate():
    # The Ray virtualenv cannot import skate: the package must load itself by path.
    assert _run([RAY_PYTHON, MICRO, "--list", "--filter", "actor"]).splitlines() == [
        n for n in BENCHMARK_NAMES if "actor" in n]


def test_compare_ray_reads_the_order_without_importing_skate():
    assert compare_ray.benchmark_order() == BENCHMARK_NAMES


def test_one_line_runs(tmp_path):
    out = tmp_path / "micro.json"
    log = _run([sys.executable, MICRO, "--filter", "single client get calls",
                "--duration", "0.05", "--warmup", "0.01", "--pause", "0", "--json", str(out)])
    assert compare_ray.LINE_RE.match(log.splitlines()[-1])
    assert list(json.loads(out.read_text())) == ["single client get calls (Plasma Store)"]


def test_compare_builds_flags_slower_and_newly_failing_lines():
    def run(results, failed=()):
        return {"results": {n: [v, 0.0] for n, v in results.items()},
                "failed": {n: "boom" for n in failed}, "skipped": {}, "header": ""}

    runs = {"old": [run({"a": 100.0, "b": 100.0, "c": 100.0}),
                    run({"a": 120.0, "b": 100.0, "c": 100.0})],
            "new": [run({"a": 95.0, "b": 80.0}, failed=["c"]),
                    run({"a": 105.0, "b": 85.0}, failed=["c"])]}
    rows = {r[0]: r for r in compare_builds.micro_rows(runs, ["a", "b", "c"], 0.90)}
    assert rows["a"][4] == pytest.approx(100.0 / 110.0) and rows["a"][5] == ""
    assert rows["b"][4] == pytest.approx(82.5 / 100.0) and rows["b"][5].startswith("SLOWER")
    assert rows["c"][4] is None and rows["c"][5] == "new failed"

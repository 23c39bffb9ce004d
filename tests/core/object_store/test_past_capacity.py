"""The object store written to 3x its capacity, and with a spill disk too small: nothing
stored is lost, memory stays bounded, a full disk is OutOfDiskError
(benchmarks/chaos/object_store.py, run as a user would)."""

import json
import os
import subprocess
import sys

import pytest

from tests.core.utils import REPO_ROOT

pytestmark = pytest.mark.skate_only
SCRIPT = os.path.join(REPO_ROOT, "benchmarks", "chaos", "object_store.py")


def _run(*args):
    proc = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO_ROOT)
    out = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert proc.returncode == 0 and out["failures"] == [], proc.stdout + proc.stderr[-3000:]
    return out


def test_three_times_the_store_spills_restores_and_reads_back_exactly():
    out = _run("--store-mb", "100", "--times", "3")
    assert out["objects"] == 30 and out["spilled_mb"] >= 200 and out["restored_mb"] > 0


@pytest.mark.skipif(os.geteuid() != 0, reason="a small spill disk is a tmpfs mount: root")
def test_a_full_spill_disk_is_out_of_disk_and_harms_nothing():
    out = _run("--store-mb", "100", "--times", "3", "--disk-mb", "160")
    assert out["out_of_disk_at"] is not None and "no space left" in out["error"]
    assert out["objects"] == out["out_of_disk_at"]  # all stored before it read back exactly

"""The core chaos benchmark, short: a 3-node cluster losing workers and a node keeps every
result, every actor call number and every CPU (benchmarks/chaos/core_cluster.py)."""

import json
import os
import subprocess
import sys

import pytest

from tests.core.utils import REPO_ROOT

pytestmark = [pytest.mark.skate_only, pytest.mark.slow]


def test_nothing_lost_under_worker_and_node_kills():
    script = os.path.join(REPO_ROOT, "benchmarks", "chaos", "core_cluster.py")
    proc = subprocess.run([sys.executable, script, "--tasks", "2000", "--calls", "300",
                           "--objects", "20", "--worker-kill-s", "1", "--node-kill-s", "4",
                           "--deadline", "240"],
                          capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    report = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert proc.returncode == 0 and report["failures"] == [], proc.stdout + proc.stderr[-3000:]
    assert report["worker_kills"] >= 2 and report["node_kills"] >= 1, report

"""Every runnable example in skate.tune's docstrings runs (in a fresh process, like a user)."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skate_only

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_tune_docstring_examples_run(tmp_path):
    env = dict(os.environ, SKATE_RESULTS_DIR=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--doctest-modules",
         "-o", "addopts=", "skate/tune", "skate/train"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]

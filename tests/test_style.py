"""Style is settled by ruff (lint rules and line length live in pyproject.toml)."""

import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skate_only


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff is not installed")
def test_ruff_check_clean():
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "skate", "tests", "benchmarks", "examples"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"ruff check failed:\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_mypy_core_clean():
    # files, python_version and the other settings come from [tool.mypy] in pyproject.toml
    proc = subprocess.run(
        [sys.executable, "-m", "mypy"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"mypy failed:\n{proc.stdout}\n{proc.stderr}"

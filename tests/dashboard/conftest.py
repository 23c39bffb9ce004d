"""A head with its dashboard, started as a user would (``skate start --head``), for the
end-to-end tests of this folder.

Each head lives in a temporary ``SKATE_TEMP_DIR`` of its own, so it neither sees nor
disturbs a head this machine (or another test run) started; the dashboard takes a free
port (``--dashboard-port 0``). Teardown runs ``skate stop`` and waits, with a deadline,
until the control store, the node manager and the dashboard are gone.
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from dataclasses import dataclass

import psutil
import pytest

from tests.core.utils import REPO_ROOT, wait_for_condition


@dataclass
class Head:
    url: str
    token: str
    session_dir: str
    env: dict  #: for processes that should find this head (skate.init(address="auto"), CLI)
    info: dict  #: what `skate start` recorded

    def cli(self, *args, check=True, timeout=60):
        proc = subprocess.run([sys.executable, "-m", "skate.scripts.skate_cli", *args],
                              capture_output=True, text=True, timeout=timeout, env=self.env)
        if check:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    def driver(self, code, timeout=60):
        """Run ``code`` as a driver of this head; its CompletedProcess (checked: exit 0)."""
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                              text=True, timeout=timeout, env=self.env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    def get(self, path, token=False):
        req = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer "
                                                               f"{self.token}"} if token else {})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())


def _alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@contextlib.contextmanager
def started_head(*flags):
    """``skate start --head`` with ``flags`` in a private temp dir; stopped on exit."""
    temp = tempfile.mkdtemp(prefix="skd-", dir="/tmp")  # short: Unix socket paths <= 107 bytes
    env = {k: v for k, v in os.environ.items()
           if k not in ("SKATE_TOKEN", "SKATE_ADDRESS", "RAY_ADDRESS")}
    env.update(SKATE_TEMP_DIR=temp, PYTHONUNBUFFERED="1",
               PYTHONPATH=REPO_ROOT + os.pathsep + env.get("PYTHONPATH", ""))
    start = subprocess.run([sys.executable, "-m", "skate.scripts.skate_cli", "start", "--head",
                            "--port", "0", "--num-cpus", "2", "--dashboard-port", "0", *flags],
                           capture_output=True, text=True, timeout=60, env=env)
    pids = []
    try:
        assert start.returncode == 0, start.stdout + start.stderr
        with open(os.path.join(temp, "current.json")) as f:
            info = json.load(f)
        pids = info["pids"] + ([info["dashboard_pid"]] if info.get("dashboard_pid") else [])
        with open(os.path.join(info["session_dir"], "token")) as f:
            token = f.read().strip()
        head = Head(info.get("dashboard_url", ""), token, info["session_dir"], env, info)
        if head.url:
            wait_for_condition(lambda: head.get("/api/version"), timeout=30)
        yield head
    finally:
        subprocess.run([sys.executable, "-m", "skate.scripts.skate_cli", "stop"],
                       capture_output=True, timeout=60, env=env)
        try:
            wait_for_condition(lambda: not any(_alive(p) for p in pids), timeout=15)
        finally:
            shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def head():
    """One head with its dashboard for a test module."""
    with started_head() as h:
        yield h


def wait_until(fn, timeout=20, interval=0.05):
    """``fn()``'s first truthy value, polling until ``timeout`` (AssertionError then)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline, f"{fn} not true within {timeout}s"
        time.sleep(interval)

"""The control store kill -9'd under a running driver: the driver fails with a clear error
within seconds (never a hang), and the head restarted on its session directory brings the
detached actor back."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.core.utils import wait_for_condition
from tests.scripts.test_cli import run_driver, skate_cli

pytestmark = pytest.mark.skate_only


def test_a_killed_control_store_fails_drivers_clearly_and_a_restart_brings_actors_back(
        tmp_path):
    from skate.core.node import read_current

    if read_current() is not None:
        pytest.skip("a Skate head is already running on this machine")
    session = str(tmp_path / "session")
    skate_cli("start", "--head", "--num-cpus", "2", "--port", "6393", "--session-dir", session,
              "--include-dashboard", "false")
    driver = None
    try:
        made = run_driver("""
            import skate
            skate.init(address="auto", namespace="killed")
            @skate.remote
            class Keeper:
                def get(self):
                    return "kept"
            k = Keeper.options(name="keeper", lifetime="detached").remote()
            assert skate.get(k.get.remote()) == "kept"
        """)
        assert made.returncode == 0, made.stderr
        driver = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
            import time, skate
            skate.init(address="auto", namespace="killed")
            @skate.remote
            def slow():
                time.sleep(600)
            ref = slow.remote()
            print("waiting", flush=True)
            t = time.monotonic()
            try:
                skate.get(ref)
            except Exception as e:
                print(f"ERROR after {time.monotonic() - t:.1f}s: {type(e).__name__}: {e}",
                      flush=True)
        """)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert driver.stdout.readline().strip() == "waiting"
        gcs_pid = read_current()["pids"][0]
        os.kill(gcs_pid, signal.SIGKILL)
        t0 = time.monotonic()
        out, err = driver.communicate(timeout=60)
        assert time.monotonic() - t0 < 30, "the driver hung after the control store died"
        assert "ERROR after" in out and "is gone" in out, out + err
        assert "Traceback" not in out
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
            driver.wait()
        skate_cli("stop")
    skate_cli("start", "--head", "--num-cpus", "1", "--port", "6393", "--session-dir", session,
              "--include-dashboard", "false")
    try:
        def back():
            again = run_driver("""
                import skate
                skate.init(address="auto", namespace="killed")
                print(skate.get(skate.get_actor("keeper").get.remote(), timeout=30))
            """)
            return again.stdout.strip() == "kept"

        wait_for_condition(back, timeout=60)
    finally:
        skate_cli("stop")

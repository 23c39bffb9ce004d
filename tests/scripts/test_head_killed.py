"""The control store kill -9'd under a running driver. Started again (`skate start --head`),
the running work goes on: the task finishes, actors keep their state in the same processes
(adopted, not restarted), the driver rejoins as its job. Never back: the driver fails with
a clear error once the reconnect timeout passes (never a hang), and a full restart on the
session directory brings the detached actor back."""

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


RUNNING_DRIVER = """
    import os, sys, time
    import skate
    skate.init(address="auto", namespace="restarted")

    @skate.remote
    class Counter:
        def __init__(self):
            self.n = 0
        def incr(self):
            self.n += 1
            return self.n, os.getpid()

    @skate.remote
    def slow(x):
        time.sleep(3)  # the workload: a task still running when the control store dies
        return x * 2

    detached = Counter.options(name="counter", lifetime="detached").remote()
    mine = Counter.remote()
    (n1, pid1), (n2, pid2) = skate.get([detached.incr.remote(), mine.incr.remote()])
    ref = slow.remote(21)
    sys.stdout.write("READY\\n")
    sys.stdout.flush()
    sys.stdin.readline()  # the control store was killed and started again meanwhile
    assert skate.get(ref, timeout=60) == 42
    assert skate.get(detached.incr.remote(), timeout=30) == (2, pid1)
    assert skate.get(mine.incr.remote(), timeout=30) == (2, pid2)
    assert skate.get(skate.get_actor("counter").incr.remote(), timeout=30) == (3, pid1)
    assert skate.get([slow.remote(i) for i in range(3)], timeout=60) == [0, 2, 4]
    sys.stdout.write("DONE\\n")
"""


def test_a_restarted_control_store_adopts_the_running_work(tmp_path):
    from skate.core.node import read_current

    if read_current() is not None:
        pytest.skip("a Skate head is already running on this machine")
    skate_cli("start", "--head", "--num-cpus", "2", "--port", "6394",
              "--include-dashboard", "false")
    driver = subprocess.Popen([sys.executable, "-c", textwrap.dedent(RUNNING_DRIVER)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert driver.stdout.readline() == "READY\n", driver.stderr.read()
        head = read_current()
        os.kill(head["pids"][0], signal.SIGKILL)
        wait_for_condition(lambda: not _alive(head["pids"][0]), timeout=10)
        restarted = skate_cli("start", "--head")
        assert "Restarted the control store" in restarted.stdout
        assert read_current()["pids"][1:] == head["pids"][1:]  # the same node manager
        driver.stdin.write("go\n")
        driver.stdin.flush()
        out, err = driver.communicate(timeout=120)
        assert driver.returncode == 0 and out == "DONE\n", out + err
        again = run_driver("""
            import skate
            skate.init(address="auto", namespace="restarted")
            from skate.util.state import list_actors
            print(skate.get(skate.get_actor("counter").incr.remote(), timeout=30)[0])
            (rec,) = list_actors(filters=[("name", "=", "counter")])
            print(rec.state, rec.num_restarts)
        """)
        assert again.stdout.split("\n")[:2] == ["4", "ALIVE 0"], again.stdout + again.stderr
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        skate_cli("stop")


def _alive(pid):
    from skate.core.pids import alive

    return alive(pid)


def test_a_control_store_that_does_not_come_back_fails_drivers_clearly(tmp_path,
                                                                       monkeypatch):
    monkeypatch.setenv("SKATE_GCS_RECONNECT_TIMEOUT_S", "3")  # the head's and the driver's
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
        assert float(out.split("ERROR after ")[1].split("s:")[0]) >= 2.5  # it waited for it
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

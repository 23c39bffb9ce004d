"""Worker output forwarded to the driver (log_to_driver)."""

import re

from tests.core.utils import run_driver

DRIVER = """
import sys
skate.init(num_cpus=1{extra})

@skate.remote
def task():
    print("hello-from-task-xyz")
    print("stderr-from-task-xyz", file=sys.stderr)
    return 1

@skate.remote
class Printer:
    def say(self):
        print("hello-from-actor-xyz")
        return 2

assert skate.get(task.remote()) == 1
p = Printer.remote()
assert skate.get(p.say.remote()) == 2
print("driver-done-marker")
skate.shutdown()
"""


def _lines_with(text, needle):
    return [line for line in text.splitlines() if needle in line]


def test_worker_output_reaches_driver(shutdown_only):
    proc = run_driver(DRIVER.format(extra=""))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "driver-done-marker" in out
    task_lines = _lines_with(out, "hello-from-task-xyz")
    assert task_lines, f"task output missing from driver stdout:\n{out[-3000:]}"
    # Prefixed with the producing process, e.g. "(task pid=1234) hello...".
    assert any(re.search(r"pid=\d+", line) for line in task_lines), task_lines
    actor_lines = _lines_with(out, "hello-from-actor-xyz")
    assert actor_lines and any(re.search(r"pid=\d+", line) for line in actor_lines), out[-3000:]
    # Worker stderr goes to the driver's stderr, not stdout.
    assert "stderr-from-task-xyz" not in out
    err_lines = _lines_with(proc.stderr, "stderr-from-task-xyz")
    assert err_lines and any(re.search(r"pid=\d+", line) for line in err_lines), proc.stderr[-3000:]


def test_log_to_driver_false(shutdown_only):
    proc = run_driver(DRIVER.format(extra=", log_to_driver=False"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "driver-done-marker" in proc.stdout
    assert "hello-from-task-xyz" not in proc.stdout
    assert "hello-from-actor-xyz" not in proc.stdout
    assert "stderr-from-task-xyz" not in proc.stderr
    assert "hello-from-task-xyz" not in proc.stderr


def test_many_lines_arrive_in_order(shutdown_only):
    code = """
skate.init(num_cpus=1, log_to_driver=True)

@skate.remote
def chatty():
    for i in range(200):
        print(f"chatty-line-{i:03d}")
    return 0

skate.get(chatty.remote())
skate.shutdown()
"""
    proc = run_driver(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = [int(m.group(1)) for m in re.finditer(r"chatty-line-(\d{3})", proc.stdout)]
    assert seen == list(range(200)), proc.stdout[-2000:]

"""The node's memory monitor end to end: a real task that allocates until the node's memory
threshold is passed is killed, its caller gets OutOfMemoryError (or a retry, Ray 2.x's
policy), and the node lives on with its CPUs back.

The node starts with a threshold a little above what the machine uses now
(SKATE_MEMORY_USAGE_THRESHOLD, inherited by the node manager), so a task
that allocates GRACE bytes more passes it. Every allocation stops by itself
at CAP bytes: a monitor that never kills fails the test (no error raised),
instead of eating the machine.
"""

import os

import pytest

import skate
from skate.core.node_manager.memory_monitor import MemoryReader
from skate.exceptions import ActorDiedError, OutOfMemoryError
from tests.core.utils import wait_for_condition, wait_for_file

pytestmark = pytest.mark.skate_only  # Ray's threshold would be the machine's 0.95

GiB = 2**30
GRACE = int(1.5 * GiB)  # between what is used now and the threshold (a node's start fits)
CAP = 5 * GiB  # no task allocates more than this
STEP = 100 * 2**20


@pytest.fixture(scope="module")
def node():
    reading = MemoryReader().read(0.0)
    if reading.limit - reading.used < CAP + 2 * GiB:
        pytest.skip("not enough free memory here to run a task into the memory monitor")
    threshold = (reading.used + GRACE) / reading.limit
    saved = {k: os.environ.get(k) for k in ("SKATE_MEMORY_USAGE_THRESHOLD",
                                            "SKATE_MEMORY_MONITOR_REFRESH_MS")}
    os.environ["SKATE_MEMORY_USAGE_THRESHOLD"] = f"{threshold:.4f}"
    os.environ["SKATE_MEMORY_MONITOR_REFRESH_MS"] = "100"
    if skate.is_initialized():
        skate.shutdown()
    try:
        skate.init(num_cpus=2)
        yield threshold
    finally:
        skate.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _attempts(path):
    try:
        with open(path) as f:
            return len(f.read().splitlines())
    except FileNotFoundError:
        return 0


@skate.remote
def grow(attempts_file=None, grow_on_attempts=1_000_000):
    """Allocate (and touch) STEP bytes at a time up to CAP; the attempts that it should not
    grow on return at once."""

    if attempts_file is not None:
        with open(attempts_file, "a") as f:
            f.write("attempt\n")
        if _attempts(attempts_file) > grow_on_attempts:
            return "done"
    return _grow_here()


@skate.remote
def hold(started_file, release_file):
    """Keep a lease (and a CPU) until ``release_file`` exists."""
    open(started_file, "w").close()
    wait_for_file(release_file, timeout=60)
    return "held"


@skate.remote
def one():
    return 1


def _cpus_back():
    return skate.available_resources().get("CPU") == 2


def test_a_task_past_the_threshold_fails_with_out_of_memory(node):
    with pytest.raises(OutOfMemoryError) as info:
        skate.get(grow.options(max_retries=0).remote(), timeout=120)
    text = str(info.value)
    assert "running low on memory" in text and "max_retries=0" in text
    assert f"memory usage threshold of {float(f'{node:.4f}')}" in text
    # the node lives on: its CPUs come back and the next task runs
    wait_for_condition(_cpus_back, timeout=30)
    assert skate.get(one.remote(), timeout=60) == 1


def test_the_callers_last_task_is_not_retried(node, tmp_path):
    attempts = str(tmp_path / "attempts")
    with pytest.raises(OutOfMemoryError, match="last task"):
        skate.get(grow.options(max_retries=3).remote(attempts), timeout=120)
    assert _attempts(attempts) == 1  # not retried: it would only be killed again
    wait_for_condition(_cpus_back, timeout=30)


def test_a_task_killed_beside_its_callers_other_task_is_retried(node, tmp_path):
    started, release = str(tmp_path / "started"), str(tmp_path / "release")
    attempts = str(tmp_path / "attempts")
    holder = hold.remote(started, release)
    try:
        wait_for_file(started, timeout=60)
        # grows on its first two attempts, killed each time as the newest of two tasks:
        # OOM retries do not spend max_retries (Ray 2.x), so the third attempt runs
        ref = grow.options(max_retries=1).remote(attempts, grow_on_attempts=2)
        assert skate.get(ref, timeout=120) == "done"
        assert _attempts(attempts) == 3
    finally:
        open(release, "w").close()
    assert skate.get(holder, timeout=60) == "held"
    wait_for_condition(_cpus_back, timeout=30)


@skate.remote(max_restarts=0)
class Grower:
    def grow(self):
        return _grow_here()

    def ping(self):
        return "pong"


def _grow_here():
    import time

    chunks = []
    while len(chunks) * STEP < CAP:
        chunk = bytearray(STEP)
        chunk[::4096] = b"\x01" * len(range(0, STEP, 4096))  # resident, page by page
        chunks.append(chunk)
        time.sleep(0.02)  # paced: the monitor reads every 100 ms
    return "survived"


def test_an_actor_killed_for_memory_says_so_in_its_death(node):
    actor = Grower.remote()
    assert skate.get(actor.ping.remote(), timeout=60) == "pong"
    with pytest.raises(ActorDiedError):
        skate.get(actor.grow.remote(), timeout=120)
    with pytest.raises(ActorDiedError, match="low on memory"):
        skate.get(actor.ping.remote(), timeout=60)
    wait_for_condition(_cpus_back, timeout=30)

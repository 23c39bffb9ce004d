"""``cancel`` of a ref another process owns (made by a task submitted inside a task)
reaches its owner, which cancels the task.

Differential: passes against real Ray too (SKATE_TEST_AGAINST_RAY=1).
"""

import pytest

import skate
from skate.exceptions import RayError, TaskCancelledError
from tests.core.utils import wait_for_file


@pytest.fixture
def cluster(start_cluster):
    return start_cluster(num_cpus=3)


@skate.remote
def wait_long(started):
    open(started, "w").close()
    wait_for_file(started + ".never", timeout=120)
    return "not cancelled"


@skate.remote
def spawn(started):
    return [wait_long.remote(started)]  # the child's ref, owned by this task's worker


@pytest.mark.parametrize("force", [False, True])
def test_cancel_a_ref_owned_by_another_worker(cluster, tmp_path, force):
    started = str(tmp_path / "started")
    [child] = skate.get(spawn.remote(started), timeout=30)
    wait_for_file(started, timeout=30)
    skate.cancel(child, force=force)
    # Skate: the cancelled task's own error; Ray with force may report its owner's worker
    # as gone instead (it kills a worker); either way the task never finishes
    expected = TaskCancelledError if skate.__name__ == "skate" or not force else RayError
    with pytest.raises(expected):
        skate.get(child, timeout=30)

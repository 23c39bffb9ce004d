"""10,000 queued infeasible tasks do not stop feasible ones: those run to completion with the
right results while the infeasible ones stay pending, and all of those cancel cleanly."""

import pytest

import skate
from skate.exceptions import TaskCancelledError
from tests.core.utils import wait_for_condition

INFEASIBLE = 10_000
FEASIBLE = 200

# the node warns that no node can ever fit num_cpus=100: expected here
pytestmark = pytest.mark.filterwarnings("ignore:A task or actor needs")


@pytest.fixture
def cluster(start_cluster):
    return start_cluster(num_cpus=2)


@skate.remote
def square(i):
    return i * i


def test_feasible_tasks_run_past_ten_thousand_infeasible_ones(cluster):
    stuck = [square.options(num_cpus=100).remote(i) for i in range(INFEASIBLE)]
    try:
        refs = [square.remote(i) for i in range(FEASIBLE)]
        assert skate.get(refs, timeout=120) == [i * i for i in range(FEASIBLE)]
        ready, not_ready = skate.wait(stuck, num_returns=len(stuck), timeout=0)
        assert ready == [] and len(not_ready) == INFEASIBLE
    finally:
        for ref in stuck:
            skate.cancel(ref)
    ready, _ = skate.wait(stuck, num_returns=len(stuck), timeout=60)
    assert len(ready) == INFEASIBLE
    for ref in (stuck[0], stuck[-1]):
        with pytest.raises(TaskCancelledError):
            skate.get(ref, timeout=10)
    cancelled = 0
    for ref in stuck:
        try:
            skate.get(ref, timeout=10)
        except TaskCancelledError:
            cancelled += 1
    assert cancelled == INFEASIBLE
    # nothing of them is left waiting on the node, and its CPUs are free
    wait_for_condition(lambda: skate.available_resources().get("CPU") == 2, timeout=30)
    assert skate.get(square.remote(7), timeout=60) == 49

"""Actor calls and their arguments: resolved by the caller before they reach the actor.

Differential: passes against real Ray too (SKATE_TEST_AGAINST_RAY=1).
"""

import pytest

import skate
from tests.core.utils import touch, wait_for_file


@pytest.fixture
def cluster(start_cluster):
    return start_cluster(num_cpus=2)


@skate.remote
def value_when_released(path, value):
    wait_for_file(path, timeout=60)
    return value


@skate.remote
class Recorder:
    def __init__(self):
        self.seen = []

    def add(self, x):
        self.seen.append(x)
        return x + 1

    def log(self):
        return self.seen


@skate.remote
def call_from_elsewhere(actor, x):
    return skate.get(actor.add.remote(x))


def test_a_call_waiting_for_its_argument_does_not_hold_up_other_callers(cluster, tmp_path):
    a = Recorder.remote()
    release = str(tmp_path / "release")
    waiting = a.add.remote(value_when_released.remote(release, 10))
    # another caller's call, arguments ready, runs while the first still waits
    assert skate.get(call_from_elsewhere.remote(a, 1), timeout=30) == 2
    touch(release)
    assert skate.get(waiting, timeout=30) == 11
    assert skate.get(a.log.remote()) == [1, 10]


def test_calls_from_one_caller_keep_their_order(cluster, tmp_path):
    a = Recorder.remote()
    release = str(tmp_path / "release")
    first = a.add.remote(value_when_released.remote(release, 1))
    second = a.add.remote(2)
    touch(release)
    assert skate.get([first, second], timeout=30) == [2, 3]
    assert skate.get(a.log.remote()) == [1, 2]


@skate.remote
def fails():
    raise ValueError("argument failed")


def test_a_call_whose_argument_failed_raises_that_error(cluster):
    a = Recorder.remote()
    with pytest.raises(ValueError, match="argument failed"):
        skate.get(a.add.remote(fails.remote()), timeout=30)
    assert skate.get(a.add.remote(5)) == 6

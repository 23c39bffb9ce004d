"""Unit tests of the node manager's pure start policies: failed-start back-off, watchdog."""

import pytest

from skate.core.node_manager.start_policy import StartBackoff, Watchdog

pytestmark = pytest.mark.skate_only


def test_first_failure_retries_at_once_then_backs_off_doubling_to_the_cap():
    b = StartBackoff(base_s=0.1, max_s=0.5, give_up_after=100)
    waits = [b.failed("k", now=10.0, returncode=-9) - 10.0 for _ in range(6)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.4, 0.5, 0.5])
    assert b.ready_at("other") == 0.0  # keys are independent
    assert b.total_failures == 6


def test_a_registered_worker_ends_the_streak():
    b = StartBackoff(base_s=0.1, max_s=1.0, give_up_after=2)
    b.failed("k", 0.0, 1)
    b.started("k")
    assert b.ready_at("k") == 0.0
    b.failed("k", 5.0, 1)
    assert not b.gave_up("k")  # one crash since the last good start
    assert b.failed("k", 5.0, 1) == pytest.approx(5.1)
    assert b.gave_up("k")


def test_only_workers_that_exited_on_their_own_count_toward_giving_up():
    b = StartBackoff(give_up_after=3)
    for code in (1, 1, -9, 1, 1):  # a kill from outside breaks the crash streak
        b.failed("k", 0.0, code)
    assert not b.gave_up("k")
    b.failed("k", 0.0, 1)
    assert b.gave_up("k")
    b.reset("k")
    assert not b.gave_up("k") and b.ready_at("k") == 0.0


def test_sigterm_counts_as_a_kill_and_a_segfault_as_a_crash():
    b = StartBackoff(give_up_after=1)
    b.failed("t", 0.0, -15)
    assert not b.gave_up("t")
    b.failed("s", 0.0, -11)
    assert b.gave_up("s")


def test_watchdog_trips_only_after_a_whole_stall_period():
    w = Watchdog(stall_s=1.0)
    assert w.tick(0.0, [1, 2]) == []
    assert w.tick(0.9, [1, 2]) == []
    assert w.tick(1.2, [1]) == [(1, pytest.approx(1.2))]  # 2 got its worker meanwhile
    assert w.trips == 1
    assert w.tick(1.3, [1]) == []  # repaired at 1.2: a new period began there
    assert w.tick(2.3, [1]) == [(1, pytest.approx(1.1))]
    assert w.tick(2.4, [2]) == []  # 2's streak began again at 2.4; 1's ended
    assert w.tick(3.0, [1]) == []  # so 1 starts over too
    assert w.trips == 2


def test_watchdog_with_nothing_stalled_never_trips():
    w = Watchdog(stall_s=0.5)
    for t in range(100):
        assert w.tick(t * 0.1, []) == []
    assert w.trips == 0

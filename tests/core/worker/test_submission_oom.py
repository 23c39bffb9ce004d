"""What the submitter's policy (skate/core/worker/submission.py) does with a task whose worker
the node's memory monitor killed: Ray 2.x's retry policy, fed causes; no processes."""

from __future__ import annotations

import pytest

from skate import exceptions as exc
from skate.core.worker import submission as sm
from skate.core.worker import task_retries as tr
from skate.core.worker.submission import Submission, TaskRecord

pytestmark = pytest.mark.skate_only

KEY = ((("CPU", 1.0),), "None", None)
LOST = ConnectionError("lost")
OOM_RETRY = (tr.OUT_OF_MEMORY, "Task was killed due to the node running low on memory.", True)
OOM_LAST = (tr.OUT_OF_MEMORY, "Task was killed due to the node running low on memory.", False)


def task(max_retries=3, **kw) -> TaskRecord:
    return TaskRecord(task_id=b"\x01" * 4, key=KEY, resources={"CPU": 1.0}, env_vars=None,
                      fn_key=b"fn", fn_blob=b"blob", fn_name="grow", args_blob=b"", deps=[],
                      held=[], return_ids=[b"r"], max_retries=max_retries,
                      retry_exceptions=False, max_calls=0, **kw)


def test_without_a_cause_a_lost_worker_is_a_crash():
    assert tr.settle(task(), False, LOST, None) == tr.RETRY
    assert tr.settle(task(max_retries=0), False, LOST, None) == tr.CRASHED


def test_an_oom_kill_with_max_retries_0_fails_with_out_of_memory():
    t = task(max_retries=0)
    assert tr.settle(t, False, LOST, OOM_RETRY) == tr.OOM
    err = tr.oom_error(t, OOM_RETRY)
    assert isinstance(err, exc.OutOfMemoryError) and isinstance(err, exc.RayError)
    assert "running low on memory" in str(err) and "max_retries=0" in str(err)
    assert "grow" in str(err) and t.task_id.hex() in str(err)


def test_an_oom_kill_is_retried_without_spending_max_retries():
    t = task(max_retries=1)
    for _ in range(5):  # Ray 2.x: as long as the monitor says so, not max_retries times
        assert tr.settle(t, False, LOST, OOM_RETRY) == tr.OOM_RETRY
        t.attempt += 1
        t.oom_retries += 1
    assert tr.retries_left(t)  # a crash now still has its one retry
    assert tr.settle(t, False, LOST, None) == tr.RETRY
    t.attempt += 1
    assert not tr.retries_left(t)
    assert tr.settle(t, False, LOST, None) == tr.CRASHED


def test_forever_retries_too():
    assert tr.settle(task(max_retries=-1), False, LOST, OOM_RETRY) == tr.OOM_RETRY


def test_the_callers_last_task_there_is_not_retried():
    t = task(max_retries=-1)
    assert tr.settle(t, False, LOST, OOM_LAST) == tr.OOM
    assert "last task" in str(tr.oom_error(t, OOM_LAST))


def test_a_cancelled_task_is_cancelled_whatever_killed_it():
    t = task()
    t.cancelled = True
    assert tr.settle(t, False, LOST, OOM_RETRY) == tr.CANCELLED


def test_an_unknown_cause_is_a_crash():
    assert tr.settle(task(max_retries=0), False, LOST, ("SOMETHING_ELSE", "m", True)) == \
        tr.CRASHED


def test_retry_delays_double_from_one_second_to_a_minute():
    t = task()
    delays = []
    for n in range(1, 10):
        t.oom_retries = n
        delays.append(tr.oom_retry_delay(t))
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_lease_requests_say_whether_the_next_task_is_retriable():
    s = Submission("local")
    out: list = []
    s.enqueue(task(max_retries=0), 0.0, out)
    assert [c[1].retriable for c in out if c[0] == sm.REQUEST_LEASE] == [False]
    out = []
    s.enqueue(task(max_retries=3), 0.0, out)  # the same key: asked for with the head's
    assert [c[1].retriable for c in out if c[0] == sm.REQUEST_LEASE] == [False]
    s2 = Submission("local")
    out = []
    s2.enqueue(task(max_retries=3), 0.0, out)
    assert [c[1].retriable for c in out if c[0] == sm.REQUEST_LEASE] == [True]

"""The control store's bounded task history (skate/core/control_store/tasks.py)."""

import pytest

from skate.core import protocol as p
from skate.core.control_store.tasks import TaskTable

pytestmark = pytest.mark.skate_only  # a unit test of Skate internals

OWNER = {"job_id": "01", "name": "f", "func_or_class_name": "f", "type": "NORMAL_TASK",
         "required_resources": {"CPU": 1}}
A = b"\xaa" * 12


def test_a_task_goes_through_its_states_with_times():
    table = TaskTable()
    table.add([(A, 0, p.PENDING_ARGS_AVAIL, 0.010, OWNER),
               (A, 0, p.PENDING_NODE_ASSIGNMENT, 0.011, None),
               (A, 0, p.SUBMITTED_TO_WORKER, 0.012, None)])
    worker = {"job_id": "01", "node_id": "n1", "worker_pid": 7}  # where it ran
    table.add([(A, 0, p.RUNNING, 0.013, worker), (A, 0, p.RUNNING_IN_RAY_GET, 0.014, None),
               (A, 0, p.RUNNING, 0.015, None), (A, 0, p.RUN_ENDED, 0.0155, None)])
    table.add([(A, 0, p.FINISHED, 0.016, None)])
    table.validate()
    (rec,) = table.select()
    assert rec["task_id"] == A.hex() and rec["state"] == p.FINISHED
    assert rec["node_id"] == "n1" and rec["worker_pid"] == 7
    assert (rec["creation_time_ms"], rec["start_time_ms"], rec["end_time_ms"]) == (10, 13, 16)
    assert [e["state"] for e in rec["events"]] == [
        p.PENDING_ARGS_AVAIL, p.PENDING_NODE_ASSIGNMENT, p.SUBMITTED_TO_WORKER, p.RUNNING,
        p.RUNNING_IN_RAY_GET, p.RUNNING, p.FINISHED]
    (slice_,) = table.timeline()
    assert slice_["ph"] == "X" and slice_["name"] == "f" and slice_["tid"] == "worker 7"
    assert slice_["ts"] == pytest.approx(13_000) and slice_["dur"] == pytest.approx(2_500)


def test_batches_out_of_order_and_late_running_do_not_reopen():
    table = TaskTable()
    table.add([(A, 0, p.RUNNING, 13.0, {"job_id": "01", "node_id": "n1"})])  # the worker first
    table.add([(A, 0, p.PENDING_ARGS_AVAIL, 10.0, OWNER),
               (A, 0, p.FAILED, 20.0, {"error_type": "ValueError", "error_message": "boom"})])
    table.add([(A, 0, p.RUNNING, 19.0, None)])  # a late worker batch
    table.validate()
    (rec,) = table.select()
    assert rec["state"] == p.FAILED and rec["error_type"] == "ValueError"
    assert rec["job_id"] == "01" and rec["name"] == "f"
    assert [e["created_ms"] for e in rec["events"]] == [10_000, 13_000, 19_000, 20_000]


def test_a_worker_first_without_its_job_moves_to_its_job():
    table = TaskTable(max_per_job=10)
    table.add([(A, 0, p.RUNNING, 13.0, {"node_id": "n1"})])
    table.add([(A, 0, p.PENDING_ARGS_AVAIL, 10.0, OWNER)])
    table.validate()
    assert list(table.order["01"]) == [(A, 0)] and not table.order[""]


def test_attempts_are_records_of_their_own():
    table = TaskTable()
    table.add([(A, 0, p.FAILED, 5.0, OWNER), (A, 1, p.FINISHED, 9.0, OWNER)])
    assert [(r["attempt_number"], r["state"]) for r in table.select()] == \
        [(1, p.FINISHED), (0, p.FAILED)]


def test_history_is_bounded_oldest_finished_first():
    table = TaskTable(max_per_job=3)
    table.add([(b"a", 0, p.RUNNING, 1.0, OWNER)])  # still running: kept
    for i, tid in enumerate([b"b", b"c", b"d", b"e"]):
        table.add([(tid, 0, p.FINISHED, 2.0 + i, OWNER)])
        table.validate()
    assert sorted(r["task_id"] for r in table.select()) == [b"a".hex(), b"d".hex(), b"e".hex()]
    assert table.dropped["01"] == 2
    table.add([(b"f", 0, p.RUNNING, 9.0, OWNER), (b"g", 0, p.RUNNING, 9.5, OWNER)])
    table.validate()  # nothing finished left to drop: the oldest of any state goes
    assert sorted(r["task_id"] for r in table.select()) == [b"a".hex(), b"f".hex(), b"g".hex()]
    assert table.summary()["dropped"] == {"01": 4}
    table.add([(b"x", 0, p.RUNNING, 1.0, dict(OWNER, job_id="02"))])  # its own bound
    assert len(table.select()) == 4


def test_the_attempts_that_ended_first_go_first_past_open_ones():
    # a nested workload: parents submitted first stay open while their children end
    table = TaskTable(max_per_job=4)
    table.add([(b"p1", 0, p.RUNNING, 1.0, OWNER), (b"p2", 0, p.RUNNING, 1.1, OWNER),
               (b"c1", 0, p.RUNNING, 2.0, OWNER), (b"c2", 0, p.RUNNING, 2.1, OWNER)])
    table.add([(b"c2", 0, p.FINISHED, 3.0, OWNER)])  # c2 ends before c1
    table.add([(b"c1", 0, p.FAILED, 3.5, OWNER)])
    table.add([(b"c3", 0, p.RUNNING, 4.0, OWNER)])
    table.validate()
    assert sorted(r["task_id"] for r in table.select()) == sorted(
        t.hex() for t in (b"p1", b"p2", b"c1", b"c3"))  # c2, the first to end, went
    table.add([(b"c4", 0, p.RUNNING, 5.0, OWNER)])
    table.validate()
    assert b"c1".hex() not in {r["task_id"] for r in table.select()}
    assert table.dropped["01"] == 2


def test_filters_limit_and_summary():
    table = TaskTable()
    for i in range(5):
        name = "g" if i < 2 else "f"
        table.add([(b"t%d" % i, 0, p.FINISHED if i % 2 else p.RUNNING, float(i),
                    dict(OWNER, name=name, func_or_class_name=name))])
    running = table.select([("state", True, p.RUNNING)])
    assert [r["task_id"] for r in running] == [b"t4".hex(), b"t2".hex(), b"t0".hex()]
    assert [r["task_id"] for r in table.select([("state", False, p.RUNNING)], limit=1)] == \
        [b"t3".hex()]
    assert [r["name"] for r in table.select([("task_id", True, b"t1".hex())])] == ["g"]
    assert [r["task_id"] for r in table.select([("state", True, p.RUNNING)], limit=1,
                                               offset=1)] == [b"t2".hex()]
    assert [r["task_id"] for r in table.select(limit=2, offset=3)] == \
        [b"t1".hex(), b"t0".hex()]
    assert table.select(offset=5) == []
    assert table.summary()["summary"] == {"f": {p.RUNNING: 2, p.FINISHED: 1},
                                          "g": {p.RUNNING: 1, p.FINISHED: 1}}


def test_validate_catches_a_broken_table():
    table = TaskTable()
    table.add([(A, 0, p.RUNNING, 1.0, OWNER)])
    table.order["01"].clear()
    with pytest.raises(AssertionError, match="disagree"):
        table.validate()


def test_a_late_event_does_not_bring_back_a_dropped_attempt():
    table = TaskTable(max_per_job=2)
    for i in range(3):  # the owner's events: each finished; the first is dropped
        table.add([(b"t%d" % i, 0, p.FINISHED, float(i), OWNER)])
    assert sorted(r["task_id"] for r in table.select()) == [b"t1".hex(), b"t2".hex()]
    table.add([(b"t0", 0, p.RUNNING, 0.5, {"node_id": "n", "worker_id": "w"})])  # the worker's
    assert sorted(r["task_id"] for r in table.select()) == [b"t1".hex(), b"t2".hex()]
    assert table.dropped["01"] == 1
    table.validate()

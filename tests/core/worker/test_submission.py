"""The submitter's policy (skate/core/worker/submission.py), fed events: no processes, no sleeps.

Connections and node managers are opaque to the state machine, so strings stand in for them.
"""

from __future__ import annotations

import pytest

from skate import exceptions as exc
from skate.core import serialization
from skate.core.protocol import BOUNCED, NEED_FUNCTION
from skate.core.worker import submission as sm
from skate.core.worker import task_retries as tr
from skate.core.worker.submission import Submission, TaskRecord

pytestmark = pytest.mark.skate_only  # a unit test of Skate internals

KEY = ((("CPU", 1.0),), "None", None)
SPREAD_KEY = ((("CPU", 1.0),), "None", "SPREAD")


def ok_reply(run_s=0.5, app_error=False, exiting=False, returns=None):
    return ("ok", returns or [("i", 0, b"", [])], app_error, exiting, run_s)


class Driver:
    """Feeds a Submission and keeps what its commands asked for; validates after each step."""

    def __init__(self):
        self.s = Submission("local")
        self.now = 100.0
        self.tasks: list[TaskRecord] = []
        self.requests: list = []  # asked for, not answered yet
        self.pushes: list = []  # (task, lease, blob), not answered yet
        self.returned: list = []  # (raylet, lease_id, kill)
        self.failed: list = []  # (task, error)
        self.retry_later: list = []
        self.leases = 0

    def run(self, out):
        for c in out:
            if c[0] == sm.PUSH:
                self.pushes.append(c[1:])
            elif c[0] == sm.REQUEST_LEASE:
                c[1].raylet = c[1].address or "raylet-local"
                self.requests.append(c[1])
            elif c[0] == sm.RETURN_LEASE:
                self.returned.append(c[1:])
            elif c[0] == sm.RETRY_LATER:
                self.retry_later.append(c[1])
            else:
                assert c[0] == sm.FAIL
                self.failed.append(c[1:])
        self.s.validate([t for t in self.tasks if not t.done])

    def task(self, key=KEY, **kw) -> TaskRecord:
        i = len(self.tasks)
        kw.setdefault("max_retries", 3)
        t = TaskRecord(task_id=i.to_bytes(4, "big"), key=key, resources={"CPU": 1.0},
                       env_vars=None, fn_key=b"fn", fn_blob=b"blob", fn_name=f"f{i}",
                       args_blob=b"", deps=[], held=[], return_ids=[b"r%d" % i],
                       retry_exceptions=kw.pop("retry_exceptions", False), max_calls=0,
                       strategy=key[2], **kw)
        self.tasks.append(t)
        return t

    def enqueue(self, *tasks):
        for t in tasks:
            out: list = []
            self.s.enqueue(t, self.now, out)
            self.run(out)

    def answer(self, req, value, ok=True, conn="conn", connected=True):
        self.requests.remove(req)
        out: list = []
        self.s.answered(req, ok, value, conn, self.now, connected, out)
        self.run(out)

    def grant(self, req=None, node="local"):
        req = req or self.requests[0]
        self.leases += 1
        n = self.leases
        self.answer(req, (n, f"w{n}", f"addr{n}", [], node), conn=f"conn{n}")

    def reply(self, push=None, value=None, ok=True) -> str:
        push = push or self.pushes[0]
        self.pushes.remove(push)
        task, w, _ = push
        out: list = []
        verdict = self.s.replied(task, w, ok, ok_reply() if value is None else value, self.now,
                                 out)
        if verdict == sm.DONE:
            task.done = True
        self.run(out)
        return verdict

    def tick(self) -> bool:
        out: list = []
        held = self.s.tick(self.now, out)
        self.run(out)
        return held

    def make_short(self, key=KEY):
        self.s.keys[key].set_avg(0.0001)


def test_one_key_one_lease():
    d = Driver()
    t = d.task()
    d.enqueue(t)
    assert len(d.requests) == 1 and d.requests[0].hops == 0 and d.requests[0].address is None
    d.grant()
    assert [(p[0], p[2]) for p in d.pushes] == [(t, b"blob")]
    assert d.reply() == sm.DONE
    t2 = d.task()
    d.enqueue(t2)  # the same lease, no new request; the function is not sent twice
    assert not d.requests and [(p[0], p[2]) for p in d.pushes] == [(t2, None)]


def test_lease_requests_capped_per_key():
    d = Driver()
    d.enqueue(*[d.task() for _ in range(40)])
    assert len(d.requests) == sm.MAX_LEASE_REQUESTS_PER_KEY
    d.answer(d.requests[0], None)  # cancelled: one slot free, asked again on the next dispatch
    d.enqueue(d.task())
    assert len(d.requests) == sm.MAX_LEASE_REQUESTS_PER_KEY


def test_pipelining_only_for_short_tasks():
    d = Driver()
    d.enqueue(*[d.task() for _ in range(10)])
    d.grant()
    assert len(d.pushes) == 1  # the average starts pessimistic: one at a time
    while d.s.keys[KEY].avg_run_s >= sm.SHORT_TASK_S:  # a moving average of short runs
        d.enqueue(d.task())
        d.reply(value=ok_reply(run_s=0.0001))
    assert len(d.pushes) == sm.PIPELINE_DEPTH
    d2 = Driver()
    d2.enqueue(*[d2.task() for _ in range(10)])
    d2.grant()
    for _ in range(9):
        d2.reply(value=ok_reply(run_s=0.05))
        assert len(d2.pushes) == 1


def test_bounced_requeued_at_front_and_depth_drops():
    d = Driver()
    d.enqueue(d.task())
    d.grant()
    d.make_short()
    d.enqueue(*[d.task() for _ in range(6)])
    assert len(d.pushes) == 4
    second = d.pushes[1]
    assert d.reply(second, value=BOUNCED) == sm.REQUEUED
    k = d.s.keys[KEY]
    assert k.depth == 1 and k.queue[0] is second[0]
    assert len(d.pushes) == 3  # over the new depth until those answer


def test_cancelled_task_that_bounces_fails_cancelled():
    """Cancelled while it waited behind a slow task on its worker: it never ran, so it is
    failed as cancelled (never dropped, which would leave its ref pending for ever)."""
    d = Driver()
    d.enqueue(d.task())
    d.grant()
    d.make_short()
    d.enqueue(d.task())
    second = d.pushes[1]
    assert d.s.cancel(second[0]) is second[1]  # in flight: the shell tells the worker
    assert d.reply(second, value=BOUNCED) == sm.REQUEUED
    assert [(t, type(e)) for t, e in d.failed] == [(second[0], exc.TaskCancelledError)]
    assert second[0] not in d.s.keys[KEY].queue


def test_need_function_resends_it():
    d = Driver()
    d.enqueue(d.task())
    d.grant()
    d.make_short()
    d.enqueue(d.task())
    first, second = d.pushes
    assert first[2] == b"blob" and second[2] is None
    d.reply(first, value=BOUNCED)
    d.reply(second, value=NEED_FUNCTION)
    assert [p[2] for p in d.pushes] == [b"blob"]  # the next push carries it again


def test_spill_followed_up_to_max_hops_then_retry_later():
    d = Driver()
    d.enqueue(d.task())
    for hop in range(1, sm.MAX_SPILL_HOPS + 1):
        d.answer(d.requests[0], ("spill", f"nm{hop}", f"node{hop}"))
        (req,) = d.requests
        assert (req.hops, req.address, req.node) == (hop, f"nm{hop}", f"node{hop}")
        assert list(d.s.remote_requests.values()) == [req]
    d.answer(d.requests[0], ("spill", "nm9", "node9"))
    assert not d.requests and d.retry_later == [KEY] and not d.s.remote_requests
    assert d.s.keys[KEY].requested == 1  # the slot carries over to the retry
    out: list = []
    d.s.retry_lease(KEY, d.now, True, out)
    d.run(out)
    assert d.requests[0].hops == 0 and d.requests[0].address is None


@pytest.mark.parametrize("error, expected", [
    (ValueError("pinned to a dead node"), exc.TaskUnschedulableError),
    (exc.WorkerStartupError("workers keep exiting"), exc.WorkerStartupError),
])
def test_lease_errors_fail_the_queue(error, expected):
    d = Driver()
    tasks = [d.task() for _ in range(3)]
    d.enqueue(*tasks)
    d.answer(d.requests[0], error, ok=False)
    assert [t for t, _ in d.failed] == tasks
    assert all(isinstance(e, expected) for _, e in d.failed)
    assert not d.s.keys[KEY].queue


def test_lost_node_manager_asks_again_later():
    d = Driver()
    d.enqueue(d.task())
    d.answer(d.requests[0], ConnectionError("gone"), ok=False)
    assert d.retry_later == [KEY] and d.s.keys[KEY].requested == 1 and not d.failed
    d.enqueue(d.task())  # the slot waiting for its timer counts: one more, not two
    assert len(d.requests) == 1 and d.s.keys[KEY].requested == 2
    out: list = []
    d.s.retry_lease(KEY, d.now, False, out)  # disconnected meanwhile: drop it
    assert not out and d.s.keys[KEY].requested == 1


def test_a_lost_own_node_fails_the_queue_instead_of_asking_forever():
    d = Driver()
    tasks = [d.task() for _ in range(3)]
    d.enqueue(*tasks)
    lost = exc.NodeDiedError("the node manager of this driver's node is gone")
    req = d.requests.pop(0)
    out: list = []
    d.s.answered(req, False, ConnectionError("gone"), None, d.now, True, out, lost)
    d.run(out)
    assert [t for t, _ in d.failed] == tasks and all(e is lost for _, e in d.failed)
    assert not d.retry_later and not d.s.keys[KEY].queue
    d.s.validate()

    late = Driver()  # a retry timer that fires after the node was lost
    late.enqueue(late.task())
    late.answer(late.requests[0], ConnectionError("gone"), ok=False)
    out = []
    late.s.retry_lease(KEY, late.now, True, out, lost)
    late.run(out)
    assert [e for _, e in late.failed] == [lost] and late.s.keys[KEY].requested == 0
    late.s.validate()

    everything = Driver()  # the shell fails what waits, all keys at once
    everything.enqueue(everything.task(), everything.task())
    out = []
    everything.s.fail_queued(lost, out)
    everything.run(out)
    assert len(everything.failed) == 2


def test_connection_lost_retries_then_crashes():
    d = Driver()
    t = d.task(max_retries=2)
    d.enqueue(t)
    d.grant()
    for attempt in range(3):
        assert d.reply(value=ConnectionError("lost"), ok=False) == sm.FAILED
        verdict = tr.settle(t, False, ConnectionError("lost"))
        if attempt < 2:
            assert verdict == tr.RETRY
            t.attempt += 1
            d.enqueue(t)
            d.grant()  # the lost worker was dropped: a new lease
        else:
            assert verdict == tr.CRASHED
    assert isinstance(tr.crash_error(t, "n", False, "lost"), exc.WorkerCrashedError)
    assert isinstance(tr.crash_error(t, "n", True, "lost"), exc.NodeDiedError)
    forever = d.task(max_retries=-1, attempt=1000)
    assert tr.settle(forever, False, None) == tr.RETRY
    forever.cancelled = True
    assert tr.settle(forever, False, None) == tr.CANCELLED


def test_retry_exceptions():
    meta, bufs = serialization.dumps(KeyError("k"))
    raised = ok_reply(app_error=True, returns=[("i", serialization.KIND_ERROR, meta, bufs)])
    d = Driver()
    assert tr.settle(d.task(), True, raised) == tr.COMPLETE  # not asked for
    assert tr.settle(d.task(retry_exceptions=True), True, raised) == tr.RETRY
    assert tr.settle(d.task(retry_exceptions=[KeyError]), True, raised) == tr.RETRY
    assert tr.settle(d.task(retry_exceptions=[ValueError]), True, raised) == tr.COMPLETE
    assert tr.settle(d.task(retry_exceptions=True, attempt=3), True, raised) == tr.COMPLETE


def test_exiting_worker_dropped_and_returned_with_kill():
    d = Driver()
    d.enqueue(d.task(), d.task())
    d.grant()
    assert d.reply(value=ok_reply(exiting=True)) == sm.DONE
    assert d.returned == [("raylet-local", 1, True)]
    assert not d.s.keys[KEY].workers and not d.pushes and "w1" not in d.s.fn_sent
    assert len(d.requests) == 1  # the second task's request is still on its way


def test_idle_lease_returned_after_idle_lease_s_not_before():
    d = Driver()
    d.enqueue(d.task())
    d.grant()
    d.reply()
    d.now += sm.IDLE_LEASE_S / 2
    assert d.tick() and not d.returned
    d.now += sm.IDLE_LEASE_S / 2
    assert not d.tick() and d.returned == [("raylet-local", 1, False)]


def test_grant_with_nothing_queued_or_unreachable_is_returned():
    d = Driver()
    t = d.task()
    d.enqueue(t)
    d.s.cancel(t)
    d.answer(d.requests[0], (7, "w7", "addr7", [], "local"))
    assert d.returned == [("raylet-local", 7, False)] and not d.s.keys[KEY].workers
    d.enqueue(d.task())
    d.answer(d.requests[0], (8, "w8", "addr8", [], "local"), conn=None)
    assert d.returned[-1] == ("raylet-local", 8, True)
    assert len(d.requests) == 1  # asked again at once


def test_abandoned_request_gives_its_grant_back():
    d = Driver()
    d.enqueue(d.task())
    d.answer(d.requests[0], ("spill", "nm1", "node1"))
    req = d.requests[0]
    d.now += sm.STALE_REQUEST_S + 1
    assert d.s.stale_requests(d.now) == [req]
    out: list = []
    d.s.abandon(req, out)
    d.run(out)
    assert d.retry_later == [KEY] and not d.s.remote_requests
    d.answer(req, (3, "w3", "addr3", [], "node1"))
    assert d.returned == [("nm1", 3, False)] and d.s.keys[KEY].requested == 1


def test_cancel_takes_a_queued_task_off_the_queue():
    d = Driver()
    a, b = d.task(), d.task()
    d.enqueue(a, b)
    d.grant()
    assert d.s.cancel(b) is None and not d.s.keys[KEY].queue
    assert d.s.cancel(a) is d.s.keys[KEY].workers[0]  # running: the shell tells the worker


def spread_driver(nodes):
    """A SPREAD key with a lease on each of ``nodes``, idle, its tasks known to be short."""
    d = Driver()
    d.enqueue(*[d.task(SPREAD_KEY) for _ in nodes])
    for node in nodes:
        d.grant(node=node)
    while d.requests:  # asked for while tasks were held back for balance
        d.answer(d.requests[0], None)
    while d.pushes:
        d.reply()
    assert not d.s.keys[SPREAD_KEY].sent  # idle: the next burst is balanced afresh
    d.make_short(SPREAD_KEY)
    return d


def pushed_per_node(d):
    counts: dict = {}
    for _, w, _ in d.pushes:
        counts[w.node_id] = counts.get(w.node_id, 0) + 1
    return counts


def test_spread_deals_fewest_first_across_nodes():
    d = spread_driver(["a", "a", "b", "c"])
    # node a has two workers, b and c one each: the burst is dealt by node, not by worker
    d.enqueue(*[d.task(SPREAD_KEY) for _ in range(6)])
    assert pushed_per_node(d) == {"a": 2, "b": 2, "c": 2}
    assert d.s.keys[SPREAD_KEY].sent == {"a": 2, "b": 2, "c": 2}
    assert sorted(w.inflight for w in d.s.keys[SPREAD_KEY].workers) == [1, 1, 2, 2]


def test_spread_slack_against_a_lease_on_its_way():
    d = Driver()
    d.enqueue(*[d.task(SPREAD_KEY) for _ in range(3)])
    d.make_short(SPREAD_KEY)
    r1, r2, r3 = d.requests
    d.answer(r2, ("spill", "nm-b", "b"))
    d.answer(r3, ("spill", "nm-c", "c"))
    d.grant(r1, node="a")
    # a could take all three (depth 4), but runs only SPREAD_SLACK ahead of b and c, whose
    # leases are on their way
    assert pushed_per_node(d) == {"a": sm.SPREAD_SLACK}
    d.grant(node="b")
    assert pushed_per_node(d) == {"a": 1, "b": 1}
    d.now += sm.SPREAD_WAIT_S / 2
    d.tick()
    assert pushed_per_node(d) == {"a": 1, "b": 1}  # c's lease may still come
    d.now = 100.0 + sm.SPREAD_WAIT_S  # on its way that long: it holds nobody back
    d.tick()
    assert pushed_per_node(d) == {"a": 2, "b": 1} and not d.s.keys[SPREAD_KEY].queue


def test_spread_silent_node_holds_nobody_back():
    d = spread_driver(["local", "b"])
    d.enqueue(*[d.task(SPREAD_KEY) for _ in range(20)])
    depth = sm.PIPELINE_DEPTH
    assert pushed_per_node(d) == {"local": depth, "b": depth}
    # b is busy; local keeps answering and may run two pipelines ahead of b, no more
    while any(p[1].node_id == "local" for p in d.pushes):
        d.reply(next(p for p in d.pushes if p[1].node_id == "local"),
                value=ok_reply(run_s=0.0001))
    sent = d.s.keys[SPREAD_KEY].sent
    assert sent == {"local": depth + 2 * depth, "b": depth}
    assert len(d.s.keys[SPREAD_KEY].queue) == 20 - 4 * depth
    d.now += sm.SPREAD_WAIT_S  # b silent that long: it no longer holds local back
    d.tick()
    assert pushed_per_node(d) == {"local": depth, "b": depth}
    assert not d.s.keys[SPREAD_KEY].queue


def test_validate_catches_a_broken_invariant():
    d = Driver()
    t = d.task()
    d.enqueue(t)
    d.grant()
    d.s.validate([t])
    d.s.keys[KEY].queue.append(t)  # in flight and queued at once
    with pytest.raises(AssertionError):
        d.s.validate([t])
    d.s.keys[KEY].queue.clear()
    d.s.keys[KEY].requested = sm.MAX_LEASE_REQUESTS_PER_KEY + 1
    with pytest.raises(AssertionError):
        d.s.validate()
